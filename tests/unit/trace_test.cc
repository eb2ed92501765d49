// Tests for loadtest/trace.{h,cc}: the generator (determinism, the model's distributions) and the
// file format of docs/TRACE_FORMAT.md (round trip, layout, corruption detection).
#include "loadtest/trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "util/crc32c.h"

namespace sessionserver::loadtest {
namespace {

using Kind = TraceOp::Kind;

constexpr size_t kHeaderLenOffset = 8;
constexpr size_t kVersionOffset = 12;
constexpr size_t kSessionsOffset = 140;
constexpr size_t kOpCountOffset = 144;
constexpr size_t kOpsOffset = 152;

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "trace_test_" + std::to_string(::getpid()) + "_" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  std::string bytes(static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0)), '\0');
  in.seekg(0, std::ios::beg);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

bool SameOp(const TraceOp& a, const TraceOp& b) {
  return a.at_us == b.at_us && a.session == b.session && a.kind == b.kind &&
         a.value_bytes == b.value_bytes;
}

bool SameOps(const Trace& a, const Trace& b) {
  return a.sessions == b.sessions && a.ops.size() == b.ops.size() &&
         std::equal(a.ops.begin(), a.ops.end(), b.ops.begin(), SameOp);
}

bool SameModel(const TraceModel& a, const TraceModel& b) {
  return a.scale == b.scale && a.full_session_arrivals_per_s == b.full_session_arrivals_per_s &&
         a.duration_s == b.duration_s && a.requests_per_session == b.requests_per_session &&
         a.think_time_s == b.think_time_s && a.ajax_per_page == b.ajax_per_page &&
         a.ajax_gap_ms == b.ajax_gap_ms && a.write_share == b.write_share &&
         a.signout_share == b.signout_share && a.value_median_bytes == b.value_median_bytes &&
         a.value_sigma == b.value_sigma && a.large_share == b.large_share &&
         a.value_max_bytes == b.value_max_bytes && a.hot_share == b.hot_share &&
         a.hot_sessions == b.hot_sessions && a.seed == b.seed;
}

bool IsCorruption(const Status& s) { return s.code() == Status::Code::kCorruption; }

uint64_t Fingerprint(const Trace& trace) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a over the ops' fields
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001B3ull;
    }
  };
  mix(trace.sessions);
  for (const TraceOp& op : trace.ops) {
    mix(op.at_us);
    mix(op.session);
    mix(static_cast<uint64_t>(op.kind));
    mix(op.value_bytes);
  }
  return h;
}

// Short sessions (2 s think time) in a long trace (600 s): almost no session is cut at the end,
// so per-session figures can be compared with the model. About 3,000 sessions, 90,000 ops.
TraceModel ShortSessionModel() {
  TraceModel m;
  m.scale = 0.00001;  // 5 sessions/s
  m.duration_s = 600;
  m.think_time_s = 2;
  m.hot_share = 0;  // redirection would move requests between sessions
  m.seed = 7;
  return m;
}

// A small trace (a few hundred bytes) for the exhaustive corruption tests.
Trace SmallTrace() {
  TraceModel m;
  m.scale = 0.00001;
  m.duration_s = 3;
  m.seed = 3;
  m.hot_sessions = 2;
  return GenerateTrace(m);
}

// ---- Generator ----

TEST(TraceGenerator, SameModelSameTrace) {
  TraceModel m;
  const Trace a = GenerateTrace(m);
  const Trace b = GenerateTrace(m);
  ASSERT_GT(a.ops.size(), 1000u);
  EXPECT_TRUE(SameOps(a, b));
  EXPECT_TRUE(SameModel(a.model, m));
}

TEST(TraceGenerator, DifferentSeedDifferentTrace) {
  TraceModel m;
  const Trace a = GenerateTrace(m);
  m.seed = 2;
  const Trace b = GenerateTrace(m);
  EXPECT_FALSE(SameOps(a, b));
  EXPECT_NE(Fingerprint(a), Fingerprint(b));
}

// Pins the generator's output for one model: a change of algorithm, of random engine, or a
// standard library whose engine or arithmetic differs shows up here. The generator uses only
// std::mt19937_64 (fixed by the standard) and its own distributions.
TEST(TraceGenerator, OutputIsPinned) {
  TraceModel m;
  m.duration_s = 10;
  const Trace t = GenerateTrace(m);
  std::cout << "pinned trace: " << t.sessions << " sessions, " << t.ops.size()
            << " ops, fingerprint 0x" << std::hex << Fingerprint(t) << std::dec << "\n";
  EXPECT_EQ(t.sessions, 548u);
  EXPECT_EQ(t.ops.size(), 2964u);
  EXPECT_EQ(Fingerprint(t), 9988968157337724059ull);
}

TEST(TraceGenerator, OpsSortedInWindowAndWellFormed) {
  TraceModel m;
  const Trace t = GenerateTrace(m);
  ASSERT_FALSE(t.ops.empty());
  const uint64_t duration_us = static_cast<uint64_t>(m.duration_s * 1e6);
  for (size_t i = 0; i < t.ops.size(); ++i) {
    const TraceOp& op = t.ops[i];
    if (i > 0) {
      ASSERT_LE(t.ops[i - 1].at_us, op.at_us) << "op " << i;
    }
    ASSERT_LT(op.at_us, duration_us);
    ASSERT_LT(op.session, t.sessions);
    if (op.kind != Kind::kWrite) {
      ASSERT_EQ(op.value_bytes, 0u);
    }
  }
}

// Every session exists in the trace, and its first op is the write that creates it; hot sessions
// included, so no request (redirected or not) reaches a session before it was created.
TEST(TraceGenerator, EverySessionStartsWithAWrite) {
  TraceModel m;
  const Trace t = GenerateTrace(m);
  std::vector<bool> seen(t.sessions, false);
  for (const TraceOp& op : t.ops) {
    if (!seen[op.session]) {
      ASSERT_EQ(op.kind, Kind::kWrite) << "session " << op.session << " at " << op.at_us;
      seen[op.session] = true;
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), static_cast<long>(t.sessions));
}

TEST(TraceGenerator, SignOutIsEachSessionsLastOp) {
  for (const TraceModel& m : {TraceModel(), ShortSessionModel()}) {
    const Trace t = GenerateTrace(m);
    std::vector<bool> signed_out(t.sessions, false);
    size_t signouts = 0;
    for (const TraceOp& op : t.ops) {
      ASSERT_FALSE(signed_out[op.session]) << "op after the sign-out of session " << op.session;
      if (op.kind == Kind::kSignOut) {
        signed_out[op.session] = true;
        ++signouts;
        ASSERT_GE(op.session, std::min(m.hot_sessions, t.sessions)) << "a hot session signed out";
      }
    }
    EXPECT_GT(signouts, 0u);
  }
}

TEST(TraceGenerator, SessionArrivalsFollowTheRate) {
  TraceModel m;
  const Trace full = GenerateTrace(m);
  const double expected = m.scale * m.full_session_arrivals_per_s * m.duration_s;  // 3,000
  m.scale /= 2;
  const Trace half = GenerateTrace(m);
  const double ratio = static_cast<double>(half.sessions) / full.sessions;
  std::cout << "sessions: " << full.sessions << " (expected " << expected << "), at half scale "
            << half.sessions << " (ratio " << ratio << ")\n";
  EXPECT_NEAR(full.sessions, expected, 0.05 * expected);
  EXPECT_NEAR(ratio, 0.5, 0.05);
}

TEST(TraceGenerator, WriteShareMatchesModel) {
  for (const TraceModel& m : {TraceModel(), ShortSessionModel()}) {
    const Trace t = GenerateTrace(m);
    size_t writes = 0, requests = 0;
    for (const TraceOp& op : t.ops) {
      if (op.kind == Kind::kSignOut) continue;
      ++requests;
      writes += op.kind == Kind::kWrite;
    }
    ASSERT_GE(requests, 20000u);
    const double share = static_cast<double>(writes) / requests;
    std::cout << "write share: " << share << " of " << requests << " requests (model "
              << m.write_share << ", " << t.sessions << " sessions)\n";
    EXPECT_NEAR(share, m.write_share, 0.02);
  }
}

// Mean requests per session (pages + Ajax calls), and the sign-out share, over the sessions that
// start in the first 80% of a trace of short sessions (those are not cut by the trace's end).
TEST(TraceGenerator, RequestsPerSessionAndSignOutShareMatchModel) {
  const TraceModel m = ShortSessionModel();
  const Trace t = GenerateTrace(m);
  const uint64_t cutoff_us = static_cast<uint64_t>(0.8 * m.duration_s * 1e6);
  std::map<uint32_t, size_t> requests;  // sessions starting before the cutoff
  std::map<uint32_t, bool> signed_out;
  for (const TraceOp& op : t.ops) {
    if (!requests.count(op.session) && op.at_us >= cutoff_us) continue;
    if (op.kind == Kind::kSignOut) {
      signed_out[op.session] = true;
    } else {
      ++requests[op.session];
    }
  }
  ASSERT_GE(requests.size(), 1000u);
  size_t total = 0;
  for (const auto& [session, n] : requests) total += n;
  ASSERT_GE(total, 20000u);
  const double mean = static_cast<double>(total) / requests.size();
  const double signout_share = static_cast<double>(signed_out.size()) / requests.size();
  std::cout << "requests per session: " << mean << " over " << requests.size()
            << " sessions (model " << m.requests_per_session << "); sign-out share "
            << signout_share << " (model " << m.signout_share << ")\n";
  EXPECT_NEAR(mean, m.requests_per_session, 0.1 * m.requests_per_session);
  EXPECT_NEAR(signout_share, m.signout_share, 0.025);
}

TEST(TraceGenerator, ValueSizesFollowModel) {
  TraceModel m = ShortSessionModel();
  m.large_share = 0.02;
  m.value_max_bytes = 512 * 1024;
  const Trace t = GenerateTrace(m);
  std::vector<uint32_t> sizes;
  for (const TraceOp& op : t.ops) {
    if (op.kind == Kind::kWrite) sizes.push_back(op.value_bytes);
  }
  ASSERT_GE(sizes.size(), 10000u);
  std::sort(sizes.begin(), sizes.end());
  const double median = sizes[sizes.size() / 2];
  const size_t large =
      static_cast<size_t>(sizes.end() - std::lower_bound(sizes.begin(), sizes.end(), 64u * 1024));
  const double large_share = static_cast<double>(large) / sizes.size();
  std::cout << "value sizes: " << sizes.size() << " writes, median " << median << " (model "
            << m.value_median_bytes << "), min " << sizes.front() << ", max " << sizes.back()
            << ", share >= 64 KiB " << large_share << " (model " << m.large_share << ")\n";
  EXPECT_NEAR(median, m.value_median_bytes, 0.15 * m.value_median_bytes);
  EXPECT_GE(sizes.front(), 64u);
  EXPECT_LE(sizes.back(), m.value_max_bytes);
  EXPECT_GT(large, 0u);
  EXPECT_NEAR(large_share, m.large_share, 0.5 * m.large_share);
  // The heavy tail reaches well beyond 64 KiB (Pareto, alpha 1.2): some values above 256 KiB.
  EXPECT_GT(sizes.back(), 256u * 1024);

  // The log-normal spread: with sigma 0.6, the 84th percentile is about median * e^0.6.
  const double p84 = sizes[static_cast<size_t>(0.8413 * sizes.size())];
  EXPECT_NEAR(p84 / median, std::exp(m.value_sigma), 0.15 * std::exp(m.value_sigma));
}

TEST(TraceGenerator, NoLargeValuesWithoutLargeShare) {
  TraceModel m = ShortSessionModel();
  m.large_share = 0;
  const Trace t = GenerateTrace(m);
  for (const TraceOp& op : t.ops) ASSERT_LT(op.value_bytes, 64u * 1024);
}

TEST(TraceGenerator, HotSessionsReceiveHotShare) {
  TraceModel m;
  m.hot_share = 0.1;
  const Trace t = GenerateTrace(m);
  size_t hot = 0, requests = 0;
  std::vector<size_t> per_hot(m.hot_sessions, 0);
  for (const TraceOp& op : t.ops) {
    if (op.kind == Kind::kSignOut) continue;
    ++requests;
    if (op.session < m.hot_sessions) {
      ++hot;
      ++per_hot[op.session];
    }
  }
  ASSERT_GE(requests, 20000u);
  const double share = static_cast<double>(hot) / requests;
  std::cout << "hot share: " << share << " of " << requests << " requests to " << m.hot_sessions
            << " sessions (model " << m.hot_share << ")\n";
  EXPECT_NEAR(share, m.hot_share, 0.02);
  // Every hot session gets a real part of it, not just its own traffic.
  for (size_t h = 0; h < per_hot.size(); ++h) EXPECT_GT(per_hot[h], requests / 1000) << h;

  m.hot_share = 0;
  const Trace cold = GenerateTrace(m);
  size_t cold_hot = 0;
  for (const TraceOp& op : cold.ops) cold_hot += op.session < m.hot_sessions;
  EXPECT_LT(static_cast<double>(cold_hot) / cold.ops.size(), 0.03);
}

TEST(TraceGenerator, DegenerateModelsDoNotCrash) {
  TraceModel m;
  m.scale = 0;
  EXPECT_EQ(GenerateTrace(m).ops.size(), 0u);
  m = TraceModel();
  m.duration_s = -1;
  EXPECT_EQ(GenerateTrace(m).sessions, 0u);
  m = TraceModel();
  m.duration_s = 2;
  m.hot_sessions = 1'000'000;  // more than there are sessions
  m.requests_per_session = 0;  // one page each
  m.ajax_per_page = 100;       // large Poisson mean
  m.value_max_bytes = 1e12;    // capped at the format's 64 MiB
  m.large_share = 1;
  const Trace t = GenerateTrace(m);
  ASSERT_GT(t.sessions, 0u);
  for (const TraceOp& op : t.ops) {
    ASSERT_LT(op.session, t.sessions);
    ASSERT_LE(op.value_bytes, 64u << 20);
  }
  const std::string path = TempPath("degenerate");
  ASSERT_TRUE(WriteTrace(path, t).ok());
  Trace back;
  ASSERT_TRUE(ReadTrace(path, &back).ok());
  EXPECT_TRUE(SameOps(t, back));
  std::remove(path.c_str());
}

// ---- File format ----

TEST(TraceFile, RoundTrip) {
  const Trace t = GenerateTrace(TraceModel());
  const std::string path = TempPath("roundtrip");
  ASSERT_TRUE(WriteTrace(path, t).ok());
  Trace back;
  const Status s = ReadTrace(path, &back);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(SameModel(back.model, t.model));
  EXPECT_TRUE(SameOps(back, t));
  const auto bytes = std::filesystem::file_size(path);
  std::cout << "file: " << t.ops.size() << " ops in " << bytes << " bytes ("
            << static_cast<double>(bytes) / t.ops.size() << " bytes/op)\n";
  EXPECT_LT(bytes, 200 + 8 * t.ops.size());  // compact

  // Atomic write: no temporary file is left next to the trace, and rewriting replaces it.
  for (const auto& entry : std::filesystem::directory_iterator(::testing::TempDir())) {
    EXPECT_EQ(entry.path().string().find(path + ".tmp"), std::string::npos) << entry.path();
  }
  const Trace small = SmallTrace();
  ASSERT_TRUE(WriteTrace(path, small).ok());
  ASSERT_TRUE(ReadTrace(path, &back).ok());
  EXPECT_TRUE(SameOps(back, small));
  std::remove(path.c_str());
}

// The layout of docs/TRACE_FORMAT.md, byte for byte.
TEST(TraceFile, V1LayoutIsPinned) {
  Trace t;
  t.model.scale = 0.5;
  t.model.hot_sessions = 7;
  t.model.seed = 0x0102030405060708ull;
  t.sessions = 2;
  t.ops = {{5, 0, Kind::kWrite, 300}, {5, 1, Kind::kRead, 0}, {200, 1, Kind::kSignOut, 0}};
  const std::string path = TempPath("layout");
  ASSERT_TRUE(WriteTrace(path, t).ok());
  const std::string f = ReadFile(path);
  std::remove(path.c_str());
  ASSERT_EQ(f.size(), 152u + 5 + 3 + 4 + 4);
  EXPECT_EQ(f.substr(0, 8), "SSTRACE1");
  auto u32 = [&f](size_t at) {
    uint32_t v;
    std::memcpy(&v, f.data() + at, 4);  // the tests run on little-endian hosts
    return v;
  };
  auto u64 = [&f](size_t at) {
    uint64_t v;
    std::memcpy(&v, f.data() + at, 8);
    return v;
  };
  EXPECT_EQ(u32(kHeaderLenOffset), 128u);
  EXPECT_EQ(u32(kVersionOffset), 1u);
  double scale;
  std::memcpy(&scale, f.data() + 16, 8);
  EXPECT_EQ(scale, 0.5);
  double hot_share;
  std::memcpy(&hot_share, f.data() + 16 + 13 * 8, 8);
  EXPECT_EQ(hot_share, t.model.hot_share);
  EXPECT_EQ(u32(128), 7u);                     // hot_sessions
  EXPECT_EQ(u64(132), 0x0102030405060708ull);  // seed
  EXPECT_EQ(u32(kSessionsOffset), 2u);
  EXPECT_EQ(u64(kOpCountOffset), 3u);
  const std::string ops = f.substr(kOpsOffset, 12);
  const std::string expected_ops(
      "\x05\x00\x01\xAC\x02"  // +5 us, session 0, write, 300 bytes
      "\x00\x01\x00"          // +0 us, session 1, read
      "\xC3\x01\x01\x02",     // +195 us, session 1, sign-out
      12);
  EXPECT_EQ(ops, expected_ops);
  EXPECT_EQ(u32(f.size() - 4), Crc32c(0, f.data(), f.size() - 4));
}

TEST(TraceFile, WriterRejectsMalformedTraces) {
  const std::string path = TempPath("rejects");
  Trace good;
  good.sessions = 1;
  good.ops = {{1, 0, Kind::kWrite, 10}};
  ASSERT_TRUE(WriteTrace(path, good).ok());
  const std::string before = ReadFile(path);

  Trace unsorted = good;
  unsorted.ops.push_back({0, 0, Kind::kRead, 0});
  Trace bad_session = good;
  bad_session.ops.push_back({2, 1, Kind::kRead, 0});
  Trace bad_kind = good;
  bad_kind.ops.push_back({2, 0, static_cast<Kind>(3), 0});
  Trace big_value = good;
  big_value.ops.push_back({2, 0, Kind::kWrite, (64u << 20) + 1});
  for (const Trace* t : {&unsorted, &bad_session, &bad_kind, &big_value}) {
    const Status s = WriteTrace(path, *t);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  }
  EXPECT_EQ(ReadFile(path), before);  // the previous file is untouched
  std::remove(path.c_str());
}

TEST(TraceFile, MissingFileIsAnError) {
  Trace t;
  const Status s = ReadTrace(TempPath("does_not_exist"), &t);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIOError);
}

TEST(TraceFile, EveryTruncationIsCorruption) {
  const Trace t = SmallTrace();
  ASSERT_GE(t.ops.size(), 20u);
  const std::string path = TempPath("truncate");
  ASSERT_TRUE(WriteTrace(path, t).ok());
  const std::string full = ReadFile(path);
  Trace out;
  out.sessions = 12345;
  for (size_t len = 0; len < full.size(); ++len) {
    WriteFile(path, full.substr(0, len));
    const Status s = ReadTrace(path, &out);
    ASSERT_TRUE(IsCorruption(s)) << "length " << len << ": " << s.ToString();
  }
  EXPECT_EQ(out.sessions, 12345u);  // untouched on failure
  WriteFile(path, full + "x");
  EXPECT_TRUE(IsCorruption(ReadTrace(path, &out)));
  std::remove(path.c_str());
}

TEST(TraceFile, EveryByteFlipIsCorruption) {
  const Trace t = SmallTrace();
  const std::string path = TempPath("flip");
  ASSERT_TRUE(WriteTrace(path, t).ok());
  const std::string full = ReadFile(path);
  for (size_t i = 0; i < full.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xFF}) {
      std::string bad = full;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      WriteFile(path, bad);
      Trace out;
      const Status s = ReadTrace(path, &out);
      ASSERT_TRUE(IsCorruption(s)) << "byte " << i << " ^ " << int{mask} << ": " << s.ToString();
    }
  }
  std::remove(path.c_str());
}

// Structural checks on their own: files with a valid checksum but bad contents.
class TraceFileChecks : public ::testing::Test {
 protected:
  // A valid file of `sessions` sessions whose op section is `ops` (count `count`), resealed.
  std::string Build(uint32_t sessions, uint64_t count, const std::string& ops) {
    Trace empty;
    EXPECT_TRUE(WriteTrace(path_, empty).ok());
    std::string f = ReadFile(path_);
    f.resize(f.size() - 4);  // drop the checksum
    std::memcpy(&f[kSessionsOffset], &sessions, 4);
    std::memcpy(&f[kOpCountOffset], &count, 8);
    return Reseal(f + ops, /*has_crc=*/false);
  }
  static std::string Reseal(std::string f, bool has_crc = true) {
    if (has_crc) f.resize(f.size() - 4);
    const uint32_t crc = Crc32c(0, f.data(), f.size());
    f.append(reinterpret_cast<const char*>(&crc), 4);
    return f;
  }
  // Reads `bytes` and expects Corruption whose message contains `what`.
  void ExpectCorruption(const std::string& bytes, const std::string& what) {
    WriteFile(path_, bytes);
    Trace out;
    const Status s = ReadTrace(path_, &out);
    EXPECT_TRUE(IsCorruption(s)) << s.ToString();
    EXPECT_NE(s.message().find(what), std::string::npos) << s.ToString() << " lacks " << what;
  }
  void TearDown() override { std::remove(path_.c_str()); }

  const std::string path_ = TempPath("checks");
};

TEST_F(TraceFileChecks, ValidBuildReads) {
  WriteFile(path_, Build(2, 2, std::string("\x01\x00\x01\x40\x02\x01\x00", 7)));
  Trace out;
  const Status s = ReadTrace(path_, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.ops.size(), 2u);
  EXPECT_EQ(out.ops[0].value_bytes, 64u);
  EXPECT_EQ(out.ops[1].at_us, 3u);
}

TEST_F(TraceFileChecks, HeaderChecks) {
  std::string f = Build(1, 0, "");
  std::string bad = f;
  bad[0] = 'X';
  ExpectCorruption(Reseal(bad), "magic");
  bad = f;
  bad[kVersionOffset] = 2;
  ExpectCorruption(Reseal(bad), "version 2");
  bad = f;
  bad[kHeaderLenOffset] = static_cast<char>(129);
  ExpectCorruption(Reseal(bad), "header length");
  bad = f;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::memcpy(&bad[16 + 2 * 8], &nan, 8);
  ExpectCorruption(Reseal(bad), "duration_s is not finite");
  bad = f;
  bad[f.size() - 1] ^= 1;
  ExpectCorruption(bad, "checksum mismatch");
  ExpectCorruption("SSTRACE1", "too short");
}

TEST_F(TraceFileChecks, OpCountChecks) {
  const std::string op("\x01\x00\x00", 3);  // +1 us, session 0, read
  ExpectCorruption(Build(1, 1'000'000'001, op), "op count");
  ExpectCorruption(Build(1, 2, op), "op count");  // 3 bytes cannot hold 2 ops
  ExpectCorruption(Build(1, 2, op + std::string("\x01\x00\x01", 3)), "truncated");
  ExpectCorruption(Build(1, 1, op + op), "unexpected bytes");
}

TEST_F(TraceFileChecks, OpChecks) {
  ExpectCorruption(Build(1, 1, std::string("\x01\x01\x00", 3)), "session 1 >= session count 1");
  ExpectCorruption(Build(0, 1, std::string("\x01\x00\x00", 3)), "session 0 >= session count 0");
  ExpectCorruption(Build(1, 1, std::string("\x01\x00\x03", 3)), "unknown kind 3");
  // 64 MiB + 1 = 0x4000001: varint 81 80 80 20.
  ExpectCorruption(Build(1, 1, std::string("\x01\x00\x01\x81\x80\x80\x20", 7)), "above 64 MiB");
  ExpectCorruption(Build(1, 1, std::string("\x81\x00\x00\x00", 4)), "non-canonical");
  ExpectCorruption(Build(1, 1, std::string(10, '\xFF') + std::string("\x01\x00\x00", 3)),
                   "varint overflow");
  ExpectCorruption(Build(1, 1, std::string(11, '\x80') + std::string("\x00\x00", 2)),
                   "varint overflow");
  // Two deltas of 2^63 overflow the 64-bit time.
  const std::string big_delta = std::string(9, '\x80') + "\x01";
  const std::string op = big_delta + std::string("\x00\x00", 2);
  ExpectCorruption(Build(1, 2, op + op), "time overflows");
}

}  // namespace
}  // namespace sessionserver::loadtest
