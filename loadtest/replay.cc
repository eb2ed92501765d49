// Replay of a trace against a target (contract in replay.h).
#include "loadtest/replay.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "session_client/client.h"

namespace sessionserver::loadtest {
namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// What the replayer knows of one trace session: its cookie (fleet) and its incarnation.
struct SessionState {
  std::mutex mu;
  std::string cookie;
  uint32_t incarnation = 0;
};

// One request against a target. Returns an error kind ("" if OK).
class Target {
 public:
  virtual ~Target() = default;
  virtual std::string Do(const TraceOp& op, int64_t start_us, SessionState* s,
                         ConsistencyChecker* checker) = 0;
};

std::string Kind(const Status& s) {
  switch (s.code()) {
    case Status::Code::kUnavailable:
      return "unavailable";
    case Status::Code::kInvalidArgument:
      return "invalid_argument";
    case Status::Code::kNotFound:
      return "not_found";
    default:
      return "internal";
  }
}

// The fleet, through session_client: writes lock (Load exclusive + Commit), reads do not.
class FleetTarget : public Target {
 public:
  explicit FleetTarget(std::unique_ptr<client::SessionClient> c) : client_(std::move(c)) {}

  std::string Do(const TraceOp& op, int64_t start_us, SessionState* s,
                 ConsistencyChecker* checker) override {
    std::string cookie;
    uint32_t inc;
    {
      std::lock_guard<std::mutex> l(s->mu);
      cookie = s->cookie;
      inc = s->incarnation;
    }
    const bool exclusive = op.kind != TraceOp::Kind::kRead;
    std::unique_ptr<client::Session> session;
    Status st = client_->Load(cookie, exclusive, &session);
    if (!st.ok()) return Kind(st);
    Stamp seen;
    const bool found = DecodeStamp(session->raw(), &seen);
    if (op.kind != TraceOp::Kind::kSignOut) {
      checker->OnRead(op.session, start_us, found, seen, exclusive);
    }
    std::string next;
    if (op.kind == TraceOp::Kind::kSignOut) {
      st = client_->Destroy(session.get(), &next);
      if (!st.ok()) return Kind(st);
      checker->OnSignOutAcked(op.session, inc, NowUs());
      std::lock_guard<std::mutex> l(s->mu);
      s->cookie.clear();
      ++s->incarnation;
      return "";
    }
    Stamp written{inc, (found && seen.incarnation == inc ? seen.counter : 0) + 1};
    if (op.kind == TraceOp::Kind::kWrite) {
      session->SetRaw(EncodeValue(written, op.value_bytes));
    }
    st = client_->Commit(session.get(), &next);
    if (!st.ok()) return Kind(st);
    if (op.kind == TraceOp::Kind::kWrite) checker->OnWriteAcked(op.session, NowUs(), written);
    // As a browser would, but without its race: only a response to a request that carried the
    // current cookie replaces it (two first requests of a session must not leave the cookie of
    // the one that started an empty session).
    // A read that found no session started an empty one that exists nowhere: its cookie is not
    // kept (an app sends no cookie for a session it never stored).
    if (op.kind == TraceOp::Kind::kRead && !found) return "";
    std::lock_guard<std::mutex> l(s->mu);
    if (s->incarnation == inc && s->cookie == cookie) s->cookie = next;
    return "";
  }

 private:
  std::unique_ptr<client::SessionClient> client_;
};

// Plain Redis as a web app uses it for sessions: GETEX (sliding expiry) to read, GET then SET EX
// to write (no locking: concurrent writes of one session can lose updates, and the checker
// counts them), DEL to sign out. One connection per worker thread.
class RedisTarget : public Target {
 public:
  RedisTarget(std::string host, int port, int32_t timeout_minutes)
      : host_(std::move(host)), port_(port), ttl_s_(std::to_string(timeout_minutes * 60)) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "lt:%d:%lld:", static_cast<int>(getpid()),
                  static_cast<long long>(NowUs()));
    prefix_ = buf;
  }

  std::string Do(const TraceOp& op, int64_t start_us, SessionState* s,
                 ConsistencyChecker* checker) override {
    redisContext* c = Connection();
    if (c == nullptr) return "unavailable";
    uint32_t inc;
    {
      std::lock_guard<std::mutex> l(s->mu);
      inc = s->incarnation;
    }
    const std::string key = prefix_ + std::to_string(op.session) + ":" + std::to_string(inc);
    if (op.kind == TraceOp::Kind::kSignOut) {
      if (!Command(c, {"DEL", key}, nullptr)) return "unavailable";
      checker->OnSignOutAcked(op.session, inc, NowUs());
      std::lock_guard<std::mutex> l(s->mu);
      ++s->incarnation;
      return "";
    }
    std::string value;
    bool found = false;
    const bool write = op.kind == TraceOp::Kind::kWrite;
    if (!Command(c, {write ? "GET" : "GETEX", key, "EX", ttl_s_}, &value, &found, write ? 2 : 4)) {
      return "unavailable";
    }
    Stamp seen;
    found = found && DecodeStamp(value, &seen);
    checker->OnRead(op.session, start_us, found, seen, write);
    if (!write) return "";
    Stamp written{inc, (found && seen.incarnation == inc ? seen.counter : 0) + 1};
    if (!Command(c, {"SET", key, EncodeValue(written, op.value_bytes), "EX", ttl_s_}, nullptr)) {
      return "unavailable";
    }
    checker->OnWriteAcked(op.session, NowUs(), written);
    return "";
  }

 private:
  redisContext* Connection() {
    thread_local std::unique_ptr<redisContext, void (*)(redisContext*)> conn(nullptr, redisFree);
    thread_local const RedisTarget* owner = nullptr;
    if (conn == nullptr || conn->err || owner != this) {
      timeval tv{2, 0};
      conn.reset(redisConnectWithTimeout(host_.c_str(), port_, tv));
      owner = this;
      if (conn == nullptr || conn->err) return nullptr;
      redisSetTimeout(conn.get(), tv);
    }
    return conn.get();
  }

  // Runs one command; fills *out with a string reply (*found = whether it was one).
  static bool Command(redisContext* c, const std::vector<std::string>& args, std::string* out,
                      bool* found = nullptr, size_t argc = 0) {
    if (argc == 0) argc = args.size();
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (size_t i = 0; i < argc; ++i) {
      argv.push_back(args[i].data());
      lens.push_back(args[i].size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argc), argv.data(), lens.data()));
    if (r == nullptr) {
      c->err = c->err ? c->err : REDIS_ERR_OTHER;  // force a reconnect
      return false;
    }
    const bool ok = r->type != REDIS_REPLY_ERROR;
    if (found != nullptr) *found = r->type == REDIS_REPLY_STRING;
    if (out != nullptr && r->type == REDIS_REPLY_STRING) out->assign(r->str, r->len);
    freeReplyObject(r);
    return ok;
  }

  const std::string host_;
  const int port_;
  const std::string ttl_s_;
  std::string prefix_;
};

Status MakeTarget(const ReplayOptions& o, std::unique_ptr<Target>* out) {
  const std::string fleet = "sessionserver://", redis = "redis://";
  if (o.target.rfind(fleet, 0) == 0) {
    client::ClientOptions co;
    Status s = client::ParseServerList(o.target.substr(fleet.size()), &co.servers);
    if (!s.ok()) return s;
    co.keys = client::CookieKeySet::Generate();
    co.session_timeout_minutes = o.session_timeout_minutes;
    co.lock_wait_ms = 10'000;
    auto c = client::SessionClient::Create(co, &s);
    if (!s.ok()) return s;
    *out = std::make_unique<FleetTarget>(std::move(c));
    return Status::OK();
  }
  if (o.target.rfind(redis, 0) == 0) {
    std::vector<client::ServerAddress> addr;
    Status s = client::ParseServerList(o.target.substr(redis.size()), &addr);
    if (!s.ok() || addr.size() != 1) return Status::InvalidArgument("redis://host:port");
    *out = std::make_unique<RedisTarget>(addr[0].host, addr[0].port, o.session_timeout_minutes);
    return Status::OK();
  }
  return Status::InvalidArgument(
      "target must be sessionserver://host:port,... or redis://host:port");
}

// Per-worker measurements, merged at the end.
struct WorkerStats {
  LatencyHistogram latency;
  std::vector<LatencyHistogram> per_second;
  std::vector<uint64_t> errors_per_second;
  std::map<std::string, uint64_t> errors;
  uint64_t ops = 0;
};

}  // namespace

Status Replay(const Trace& trace, const ReplayOptions& options, ReplayResults* results) {
  std::unique_ptr<Target> target;
  Status s = MakeTarget(options, &target);
  if (!s.ok()) return s;
  if (options.workers < 1 || options.speed <= 0) {
    return Status::InvalidArgument("workers >= 1, speed > 0");
  }
  std::vector<SessionState> sessions(trace.sessions);
  ConsistencyChecker checker;
  const size_t seconds_slots = static_cast<size_t>(trace.model.duration_s / options.speed) + 2;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<size_t, int64_t>> queue;  // (op index, intended start)
  bool done_issuing = false;
  std::atomic<size_t> next_closed{0};
  const int64_t t0 = NowUs() + 10'000;
  const int64_t stop_at = t0 + static_cast<int64_t>(options.max_seconds * 1e6);
  std::vector<WorkerStats> stats(options.workers);
  for (auto& w : stats) {
    w.per_second.resize(seconds_slots);
    w.errors_per_second.resize(seconds_slots);
  }
  std::atomic<uint64_t> completed{0}, failed{0}, skipped{0};

  auto run_one = [&](WorkerStats& w, size_t index, int64_t start_us) {
    const TraceOp& op = trace.ops[index];
    const std::string error = target->Do(op, start_us, &sessions[op.session], &checker);
    const int64_t latency = NowUs() - start_us;
    const size_t second = std::min(
        seconds_slots - 1, static_cast<size_t>(std::max<int64_t>(0, start_us - t0) / 1'000'000));
    ++w.ops;
    completed.fetch_add(1, std::memory_order_relaxed);
    if (!error.empty()) {
      ++w.errors[error];
      ++w.errors_per_second[second];
      failed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    w.latency.Record(latency);
    w.per_second[second].Record(latency);
  };

  std::vector<std::thread> workers;
  for (int i = 0; i < options.workers; ++i) {
    workers.emplace_back([&, i] {
      WorkerStats& w = stats[i];
      while (true) {
        if (!options.open_loop) {
          const size_t index = next_closed.fetch_add(1);
          if (index >= trace.ops.size()) return;
          const int64_t now = NowUs();
          if (now >= stop_at) {
            skipped.fetch_add(1);
            continue;
          }
          run_one(w, index, now);
          continue;
        }
        std::pair<size_t, int64_t> item;
        {
          std::unique_lock<std::mutex> l(mu);
          cv.wait(l, [&] { return !queue.empty() || done_issuing; });
          if (queue.empty()) return;
          item = queue.front();
          queue.pop_front();
        }
        if (NowUs() >= stop_at) {
          skipped.fetch_add(1);
          continue;
        }
        run_one(w, item.first, item.second);
      }
    });
  }

  std::thread progress;
  std::atomic<bool> finished{false};
  if (options.progress && isatty(2)) {
    progress = std::thread([&] {
      while (!finished) {
        const double frac = static_cast<double>(completed + skipped) /
                            static_cast<double>(std::max<size_t>(1, trace.ops.size()));
        const int bar = static_cast<int>(frac * 40);
        std::fprintf(stderr, "\r[%-40s] %3.0f%%  %llu ops  %llu errors",
                     std::string(bar, '=').c_str(), frac * 100,
                     static_cast<unsigned long long>(completed.load()),
                     static_cast<unsigned long long>(failed.load()));
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      std::fprintf(stderr, "\n");
    });
  }

  if (options.open_loop) {  // the dispatcher: each op at its intended time, whatever happens
    for (size_t i = 0; i < trace.ops.size(); ++i) {
      const int64_t intended =
          t0 + static_cast<int64_t>(static_cast<double>(trace.ops[i].at_us) / options.speed);
      if (intended >= stop_at) {
        skipped.fetch_add(trace.ops.size() - i);
        break;
      }
      const int64_t wait = intended - NowUs();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
      {
        std::lock_guard<std::mutex> l(mu);
        queue.emplace_back(i, intended);
      }
      cv.notify_one();
    }
    {
      std::lock_guard<std::mutex> l(mu);
      done_issuing = true;
    }
    cv.notify_all();
  }
  for (auto& t : workers) t.join();
  const int64_t end = NowUs();
  finished = true;
  if (progress.joinable()) progress.join();

  ReplayResults r;
  r.target = options.target;
  r.open_loop = options.open_loop;
  r.seconds = static_cast<double>(end - t0) / 1e6;
  r.skipped = skipped;
  for (size_t sec = 0; sec < seconds_slots; ++sec) {
    LatencyHistogram h;
    uint64_t errors = 0;
    for (const auto& w : stats) {
      h.Merge(w.per_second[sec]);
      errors += w.errors_per_second[sec];
    }
    if (h.count() == 0 && errors == 0) continue;
    r.per_second.resize(sec + 1);
    r.per_second[sec] =
        SecondStats{h.count() + errors, errors, h.Percentile(0.5), h.Percentile(0.99), h.max()};
  }
  for (const auto& w : stats) {
    r.latency.Merge(w.latency);
    r.ops += w.ops;
    for (const auto& [kind, n] : w.errors) {
      r.errors_by_kind[kind] += n;
      r.errors += n;
    }
  }
  r.checks = checker.Results();
  *results = std::move(r);
  return Status::OK();
}

}  // namespace sessionserver::loadtest
