#include "loadtest/trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "util/crc32c.h"

namespace sessionserver::loadtest {
namespace {

// ---- Random numbers: only std::mt19937_64 (whose output the standard fixes) and arithmetic. ----

// SplitMix64 finaliser: derives independent engine seeds from the model's seed, so that the
// arrival/timing stream does not move when, say, the value-size parameters change.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr double kPi = 3.14159265358979323846;

class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : engine_(Mix(seed ^ Mix(stream))) {}

  // Uniform in [0, 1): the top 53 bits of one engine output.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1]: safe to take the logarithm of.
  double UniformPositive() { return 1.0 - Uniform(); }
  bool Bernoulli(double p) { return Uniform() < p; }
  // Exponential with the given mean (inversion).
  double Exponential(double mean) { return -std::log(UniformPositive()) * mean; }
  // Standard normal, Box-Muller (one of the pair; the other is discarded).
  double Normal() {
    const double u1 = UniformPositive();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
  }
  // Geometric on {1, 2, ...} with success probability p (mean 1/p), by inversion.
  uint64_t Geometric(double p) {
    if (p >= 1.0) return 1;
    const double k = std::floor(std::log(UniformPositive()) / std::log1p(-p));
    return 1 + static_cast<uint64_t>(std::min(k, 1e9));
  }
  // Poisson with the given mean: Knuth's product of uniforms, in chunks of mean <= 16 (a sum of
  // independent Poissons is Poisson), so exp(-mean) never underflows.
  uint64_t Poisson(double mean) {
    uint64_t n = 0;
    while (mean > 0) {
      const double chunk = std::min(mean, 16.0);
      mean -= chunk;
      const double limit = std::exp(-chunk);
      double product = Uniform();
      while (product >= limit) {
        ++n;
        product *= Uniform();
      }
    }
    return n;
  }
  // Uniform integer in [0, n), n > 0.
  uint64_t Below(uint64_t n) {
    return std::min<uint64_t>(static_cast<uint64_t>(Uniform() * static_cast<double>(n)), n - 1);
  }

 private:
  std::mt19937_64 engine_;
};

// Independent streams (the `stream` argument of Rng).
constexpr uint64_t kStreamTiming = 1;
constexpr uint64_t kStreamKinds = 2;
constexpr uint64_t kStreamValues = 3;
constexpr uint64_t kStreamHot = 4;

constexpr double kMinValueBytes = 64;
constexpr double kLargeValueMinBytes = 64 * 1024;
constexpr double kParetoAlpha = 1.2;
constexpr uint32_t kMaxValueBytes = 64u << 20;  // the file format's limit

double NonNegative(double x) { return std::isfinite(x) && x > 0 ? x : 0.0; }
double Probability(double x) { return std::isfinite(x) ? std::clamp(x, 0.0, 1.0) : 0.0; }

uint32_t ValueSize(const TraceModel& m, Rng& rng) {
  double max_bytes = std::isfinite(m.value_max_bytes) ? m.value_max_bytes : kMaxValueBytes;
  max_bytes = std::clamp(max_bytes, kMinValueBytes, static_cast<double>(kMaxValueBytes));
  double bytes;
  if (rng.Bernoulli(Probability(m.large_share))) {
    if (max_bytes <= kLargeValueMinBytes) {
      bytes = max_bytes;
    } else {
      // Bounded Pareto on [64 KiB, max] by inversion: no spike of clamped values at the top.
      const double ratio = std::pow(kLargeValueMinBytes / max_bytes, kParetoAlpha);
      const double u = rng.Uniform();
      bytes = kLargeValueMinBytes / std::pow(1.0 - u * (1.0 - ratio), 1.0 / kParetoAlpha);
    }
  } else {
    const double median = std::max(NonNegative(m.value_median_bytes), 1.0);
    bytes = std::exp(std::log(median) + NonNegative(m.value_sigma) * rng.Normal());
  }
  if (!(bytes >= kMinValueBytes)) bytes = kMinValueBytes;  // NaN too
  if (bytes > max_bytes) bytes = max_bytes;
  return static_cast<uint32_t>(bytes);
}

// ---- File format helpers ----

constexpr char kMagic[8] = {'S', 'S', 'T', 'R', 'A', 'C', 'E', '1'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kHeaderV1Bytes = 4 + 14 * 8 + 4 + 8;  // version, 14 f64, u32, u64 = 128
constexpr uint64_t kMaxOps = 1'000'000'000;
constexpr size_t kMinOpBytes = 3;  // varint delta, varint session, kind

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutF64(std::string* out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  PutU64(out, bits);
}
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// The model's fields in their fixed v1 order (docs/TRACE_FORMAT.md).
std::vector<double TraceModel::*> ModelDoubles() {
  return {&TraceModel::scale,           &TraceModel::full_session_arrivals_per_s,
          &TraceModel::duration_s,      &TraceModel::requests_per_session,
          &TraceModel::think_time_s,    &TraceModel::ajax_per_page,
          &TraceModel::ajax_gap_ms,     &TraceModel::write_share,
          &TraceModel::signout_share,   &TraceModel::value_median_bytes,
          &TraceModel::value_sigma,     &TraceModel::large_share,
          &TraceModel::value_max_bytes, &TraceModel::hot_share};
}
const char* const kModelDoubleNames[] = {"scale",           "full_session_arrivals_per_s",
                                         "duration_s",      "requests_per_session",
                                         "think_time_s",    "ajax_per_page",
                                         "ajax_gap_ms",     "write_share",
                                         "signout_share",   "value_median_bytes",
                                         "value_sigma",     "large_share",
                                         "value_max_bytes", "hot_share"};

// Bounds-checked little-endian reader over the file's bytes. Every getter returns false (and
// leaves `error` set) instead of reading past the end.
class Reader {
 public:
  Reader(const std::string& data, size_t end) : data_(data), end_(end) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return end_ - pos_; }
  const std::string& error() const { return error_; }

  bool Bytes(size_t n, const char** p, const char* what) {
    if (remaining() < n) return Fail(std::string("truncated in ") + what);
    *p = data_.data() + pos_;
    pos_ += n;
    return true;
  }
  bool U8(uint8_t* v, const char* what) {
    const char* p;
    if (!Bytes(1, &p, what)) return false;
    *v = static_cast<uint8_t>(*p);
    return true;
  }
  bool U32(uint32_t* v, const char* what) {
    const char* p;
    if (!Bytes(4, &p, what)) return false;
    *v = 0;
    for (int i = 3; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(p[i]);
    return true;
  }
  bool U64(uint64_t* v, const char* what) {
    const char* p;
    if (!Bytes(8, &p, what)) return false;
    *v = 0;
    for (int i = 7; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(p[i]);
    return true;
  }
  bool F64(double* d, const char* what) {
    uint64_t bits;
    if (!U64(&bits, what)) return false;
    std::memcpy(d, &bits, sizeof bits);
    return true;
  }
  // Unsigned LEB128, at most 10 bytes, canonical (no redundant trailing zero groups).
  bool Varint(uint64_t* v, const char* what) {
    uint64_t result = 0;
    for (int i = 0; i < 10; ++i) {
      uint8_t byte;
      if (!U8(&byte, what)) return false;
      if (i == 9 && byte > 1) return Fail(std::string("varint overflow in ") + what);
      result |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
      if ((byte & 0x80) == 0) {
        if (byte == 0 && i > 0) return Fail(std::string("non-canonical varint in ") + what);
        *v = result;
        return true;
      }
    }
    return Fail(std::string("varint longer than 10 bytes in ") + what);
  }
  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

 private:
  const std::string& data_;
  const size_t end_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

Trace GenerateTrace(const TraceModel& model) {
  Trace trace;
  trace.model = model;

  const double duration_us = NonNegative(model.duration_s) * 1e6;
  const double rate_per_us =
      NonNegative(model.scale) * NonNegative(model.full_session_arrivals_per_s) / 1e6;
  const double think_us = NonNegative(model.think_time_s) * 1e6;
  const double ajax_gap_us = NonNegative(model.ajax_gap_ms) * 1e3;
  const double ajax_per_page = NonNegative(model.ajax_per_page);
  // Mean requests per session = mean pages * (1 + ajax_per_page); at least one page.
  const double mean_pages =
      std::max(1.0, NonNegative(model.requests_per_session) / (1.0 + ajax_per_page));
  const double page_p = 1.0 / mean_pages;
  const double signout_share = Probability(model.signout_share);

  // Pass 1: the timeline. Sessions in arrival order, each session's ops in time order; kinds
  // other than the sign-out are decided in pass 2, once the totals are known.
  std::vector<TraceOp>& ops = trace.ops;
  std::vector<uint64_t> session_start_us;  // at_us of each session's first op
  Rng timing(model.seed, kStreamTiming);
  if (rate_per_us > 0 && duration_us > 0) {
    double arrival = timing.Exponential(1.0 / rate_per_us);
    while (arrival < duration_us && session_start_us.size() < UINT32_MAX) {
      const auto session = static_cast<uint32_t>(session_start_us.size());
      session_start_us.push_back(static_cast<uint64_t>(arrival));
      const uint64_t pages = timing.Geometric(page_p);
      const bool signs_out = timing.Bernoulli(signout_share);
      double t = arrival;
      bool cut = false;
      for (uint64_t page = 0; page < pages && !cut; ++page) {
        if (page > 0) t += timing.Exponential(think_us);
        if (!(t < duration_us)) {
          cut = true;
          break;
        }
        ops.push_back({static_cast<uint64_t>(t), session, TraceOp::Kind::kRead, 0});
        const uint64_t ajax = timing.Poisson(ajax_per_page);
        for (uint64_t a = 0; a < ajax; ++a) {
          t += timing.Exponential(ajax_gap_us);
          if (!(t < duration_us)) {
            cut = true;
            break;
          }
          ops.push_back({static_cast<uint64_t>(t), session, TraceOp::Kind::kRead, 0});
        }
      }
      if (!cut && signs_out) {
        t += timing.Exponential(think_us);
        if (t < duration_us) {
          ops.push_back({static_cast<uint64_t>(t), session, TraceOp::Kind::kSignOut, 0});
        }
      }
      arrival += timing.Exponential(1.0 / rate_per_us);
    }
  }
  trace.sessions = static_cast<uint32_t>(session_start_us.size());

  // Pass 2: kinds, value sizes, hot redirection. Every session's first request writes (it
  // creates the session); the other requests write with the probability q that makes the
  // expected share of writes among all requests write_share (q = write_share when sessions are
  // long). Likewise the redirection probability is raised so that about hot_share of all
  // requests are redirected although first requests never are.
  const uint32_t hot = std::min(model.hot_sessions, trace.sessions);
  uint64_t requests = 0;
  for (const TraceOp& op : ops) requests += op.kind != TraceOp::Kind::kSignOut;
  const uint64_t sessions = trace.sessions;
  const uint64_t later_requests = requests - sessions;
  double write_p = Probability(model.write_share);
  double hot_p = hot > 0 ? Probability(model.hot_share) : 0.0;
  if (later_requests > 0) {
    write_p =
        Probability((write_p * static_cast<double>(requests) - static_cast<double>(sessions)) /
                    static_cast<double>(later_requests));
    hot_p =
        Probability(hot_p * static_cast<double>(requests) / static_cast<double>(later_requests));
  }

  Rng kinds(model.seed, kStreamKinds);
  Rng values(model.seed, kStreamValues);
  Rng hot_rng(model.seed, kStreamHot);
  std::vector<TraceOp> kept;
  kept.reserve(ops.size());
  uint32_t previous_session = UINT32_MAX;
  for (TraceOp op : ops) {
    const bool first = op.session != previous_session;
    previous_session = op.session;
    if (op.kind == TraceOp::Kind::kSignOut) {
      // Hot sessions stay signed in: redirected requests keep arriving until the end.
      if (op.session < hot) continue;
      kept.push_back(op);
      continue;
    }
    if (first || kinds.Bernoulli(write_p)) {
      op.kind = TraceOp::Kind::kWrite;
      op.value_bytes = ValueSize(model, values);
    }
    if (!first && hot_rng.Bernoulli(hot_p)) {
      // Redirect to a hot session that already exists: its first op is strictly earlier.
      const auto started = static_cast<uint64_t>(
          std::lower_bound(session_start_us.begin(), session_start_us.begin() + hot, op.at_us) -
          session_start_us.begin());
      if (started > 0) op.session = static_cast<uint32_t>(hot_rng.Below(started));
    }
    kept.push_back(op);
  }
  ops.swap(kept);
  std::stable_sort(ops.begin(), ops.end(),
                   [](const TraceOp& a, const TraceOp& b) { return a.at_us < b.at_us; });
  return trace;
}

Status WriteTrace(const std::string& path, const Trace& trace) {
  std::string out;
  out.reserve(160 + trace.ops.size() * 6);
  out.append(kMagic, sizeof kMagic);
  PutU32(&out, kHeaderV1Bytes);
  PutU32(&out, kFormatVersion);
  for (double TraceModel::*field : ModelDoubles()) PutF64(&out, trace.model.*field);
  PutU32(&out, trace.model.hot_sessions);
  PutU64(&out, trace.model.seed);
  PutU32(&out, trace.sessions);
  PutU64(&out, trace.ops.size());
  if (trace.ops.size() > kMaxOps) return Status::InvalidArgument("more than 1e9 ops");
  uint64_t previous_at = 0;
  for (size_t i = 0; i < trace.ops.size(); ++i) {
    const TraceOp& op = trace.ops[i];
    const std::string where = "op " + std::to_string(i) + ": ";
    if (op.at_us < previous_at) return Status::InvalidArgument(where + "ops not sorted by at_us");
    if (op.session >= trace.sessions) {
      return Status::InvalidArgument(where + "session >= trace.sessions");
    }
    if (op.kind != TraceOp::Kind::kRead && op.kind != TraceOp::Kind::kWrite &&
        op.kind != TraceOp::Kind::kSignOut) {
      return Status::InvalidArgument(where + "unknown kind");
    }
    if (op.kind == TraceOp::Kind::kWrite ? op.value_bytes > kMaxValueBytes : op.value_bytes != 0) {
      return Status::InvalidArgument(where + "value_bytes above 64 MiB or set on a non-write");
    }
    PutVarint(&out, op.at_us - previous_at);
    PutVarint(&out, op.session);
    out.push_back(static_cast<char>(op.kind));
    if (op.kind == TraceOp::Kind::kWrite) PutVarint(&out, op.value_bytes);
    previous_at = op.at_us;
  }
  PutU32(&out, Crc32c(0, out.data(), out.size()));

  // Atomic replacement: write a temporary file next to the target, fsync, rename over it.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("open " + tmp + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < out.size()) {
    const ssize_t n = ::write(fd, out.data() + written, out.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string error = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IOError("write " + tmp + ": " + error);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string error = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::IOError("sync " + tmp + ": " + error);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string error = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::IOError("rename " + tmp + " to " + path + ": " + error);
  }
  return Status::OK();
}

Status ReadTrace(const std::string& path, Trace* trace) {
  std::string data;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::IOError("cannot open " + path);
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) return Status::IOError("cannot size " + path);
    in.seekg(0, std::ios::beg);
    data.resize(static_cast<size_t>(size));
    if (size > 0 && !in.read(data.data(), size)) return Status::IOError("cannot read " + path);
  }
  auto corrupt = [&](const std::string& what) { return Status::Corruption(path + ": " + what); };

  constexpr size_t kCrcBytes = 4;
  if (data.size() < sizeof kMagic + 4 + kCrcBytes) return corrupt("file too short");
  if (std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return corrupt("bad magic (not a SessionServer trace)");
  }
  // Everything but the trailing checksum is parsed by `r`, which never reads past `body_end`.
  const size_t body_end = data.size() - kCrcBytes;
  Reader r(data, body_end);
  const char* skip;
  r.Bytes(sizeof kMagic, &skip, "magic");

  Trace result;
  uint32_t header_bytes = 0, version = 0;
  if (!r.U32(&header_bytes, "header length")) return corrupt(r.error());
  if (!r.U32(&version, "header")) return corrupt(r.error());
  if (version != kFormatVersion) {
    return corrupt("unsupported format version " + std::to_string(version));
  }
  if (header_bytes != kHeaderV1Bytes) {
    return corrupt("header length " + std::to_string(header_bytes) + ", v1 has " +
                   std::to_string(kHeaderV1Bytes));
  }
  const std::vector<double TraceModel::*> fields = ModelDoubles();
  for (size_t i = 0; i < fields.size(); ++i) {
    double value;
    if (!r.F64(&value, "header")) return corrupt(r.error());
    if (!std::isfinite(value)) {
      return corrupt(std::string("model field ") + kModelDoubleNames[i] + " is not finite");
    }
    result.model.*fields[i] = value;
  }
  if (!r.U32(&result.model.hot_sessions, "header")) return corrupt(r.error());
  if (!r.U64(&result.model.seed, "header")) return corrupt(r.error());

  uint64_t op_count = 0;
  if (!r.U32(&result.sessions, "session count")) return corrupt(r.error());
  if (!r.U64(&op_count, "op count")) return corrupt(r.error());
  if (op_count > kMaxOps || op_count > r.remaining() / kMinOpBytes) {
    return corrupt("op count " + std::to_string(op_count) + " impossible for " +
                   std::to_string(r.remaining()) + " bytes of ops");
  }
  result.ops.resize(op_count);
  uint64_t at_us = 0;
  for (uint64_t i = 0; i < op_count; ++i) {
    const std::string where = "op " + std::to_string(i);
    TraceOp& op = result.ops[i];
    uint64_t delta = 0, session = 0, value_bytes = 0;
    uint8_t kind = 0;
    if (!r.Varint(&delta, "op time")) return corrupt(where + ": " + r.error());
    if (delta > UINT64_MAX - at_us) return corrupt(where + ": time overflows");
    at_us += delta;
    if (!r.Varint(&session, "op session")) return corrupt(where + ": " + r.error());
    if (session >= result.sessions) {
      return corrupt(where + ": session " + std::to_string(session) + " >= session count " +
                     std::to_string(result.sessions));
    }
    if (!r.U8(&kind, "op kind")) return corrupt(where + ": " + r.error());
    if (kind > static_cast<uint8_t>(TraceOp::Kind::kSignOut)) {
      return corrupt(where + ": unknown kind " + std::to_string(kind));
    }
    if (kind == static_cast<uint8_t>(TraceOp::Kind::kWrite)) {
      if (!r.Varint(&value_bytes, "op value size")) return corrupt(where + ": " + r.error());
      if (value_bytes > kMaxValueBytes) {
        return corrupt(where + ": value size " + std::to_string(value_bytes) + " above 64 MiB");
      }
    }
    op.at_us = at_us;
    op.session = static_cast<uint32_t>(session);
    op.kind = static_cast<TraceOp::Kind>(kind);
    op.value_bytes = static_cast<uint32_t>(value_bytes);
  }
  if (r.remaining() != 0) {
    return corrupt(std::to_string(r.remaining()) + " unexpected bytes after the last op");
  }
  uint32_t stored_crc = 0;
  for (int i = 3; i >= 0; --i) {
    stored_crc = (stored_crc << 8) | static_cast<uint8_t>(data[body_end + static_cast<size_t>(i)]);
  }
  if (stored_crc != Crc32c(0, data.data(), body_end)) return corrupt("checksum mismatch");
  *trace = std::move(result);
  return Status::OK();
}

}  // namespace sessionserver::loadtest
