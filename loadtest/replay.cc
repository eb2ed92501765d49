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

#include "loadtest/session_state.h"
#include "session_client/client.h"
#include "util/host_port.h"

namespace sessionserver::loadtest {
namespace {

int64_t NowUs() { return ReplayClock().NowMicros(); }

// One request against a target. Returns an error kind ("" if OK) and sets *done_us to when the
// target's answer arrived (the checker's work after that is not the target's latency). Results
// reach the checker through SessionState's Acknowledge*() only, which publish them to the next
// request before they count as acknowledged (session_state.h).
class Target {
 public:
  virtual ~Target() = default;
  virtual std::string Do(const TraceOp& op, int64_t start_us, SessionState* s,
                         ConsistencyChecker* checker, int64_t* done_us) = 0;
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

  std::string Do(const TraceOp& op, int64_t start_us, SessionState* s, ConsistencyChecker* checker,
                 int64_t* done_us) override {
    Probe(op.session, s, checker);
    const SessionState::View view = s->Read();
    *done_us = 0;
    const bool exclusive = op.kind != TraceOp::Kind::kRead;
    std::unique_ptr<client::Session> session;
    Status st = client_->Load(view.cookie, exclusive, &session);
    if (!st.ok()) return Kind(st);
    Stamp seen;
    const bool found = DecodeStamp(session->raw(), &seen);
    std::string next;
    if (op.kind == TraceOp::Kind::kSignOut) {
      st = client_->Destroy(session.get(), &next);
      *done_us = NowUs();
      if (!st.ok()) return Kind(st);
      s->AcknowledgeSignOut(op.session, view.incarnation, view.cookie,
                            /*probe_without_cookie=*/false, ReplayClock(), checker);
      return "";
    }
    const Stamp written{view.incarnation,
                        (found && seen.incarnation == view.incarnation ? seen.counter : 0) + 1};
    const bool write = op.kind == TraceOp::Kind::kWrite;
    if (write) session->SetRaw(EncodeValue(written, op.value_bytes));
    st = client_->Commit(session.get(), &next);
    *done_us = NowUs();
    checker->OnRead(op.session, start_us, found, seen, exclusive);
    if (!st.ok()) return Kind(st);
    // A read that found no session keeps no cookie (an app sends none for a session it never
    // stored); anything else publishes the answer's cookie, then acknowledges.
    if (write || found) {
      s->AcknowledgeCommit(op.session, view.incarnation, view.cookie, next,
                           write ? &written : nullptr, ReplayClock(), checker);
    }
    return "";
  }

 private:
  // After a sign-out, the next request of the session first reads the old cookie once: a
  // session brought back by a save in flight shows up as a resurrection.
  void Probe(uint32_t session_no, SessionState* s, ConsistencyChecker* checker) {
    uint32_t inc;
    std::string cookie;
    if (!s->TakeProbe(&inc, &cookie)) return;
    const int64_t start = NowUs();
    std::unique_ptr<client::Session> old;
    if (!client_->Load(cookie, false, &old).ok()) return;
    Stamp seen;
    const bool found = DecodeStamp(old->raw(), &seen);
    if (found) checker->OnRead(session_no, start, true, seen, false);
  }

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

  std::string Do(const TraceOp& op, int64_t start_us, SessionState* s, ConsistencyChecker* checker,
                 int64_t* done_us) override {
    *done_us = 0;
    redisContext* c = Connection();
    if (c == nullptr) return "unavailable";
    Probe(c, op.session, s, checker);
    const uint32_t inc = s->Read().incarnation;
    const std::string key = Key(op.session, inc);
    std::string error;
    if (op.kind == TraceOp::Kind::kSignOut) {
      error = Command(c, {"DEL", key}, nullptr);
      *done_us = NowUs();
      if (!error.empty()) return error;
      s->AcknowledgeSignOut(op.session, inc, /*sent=*/"", /*probe_without_cookie=*/true,
                            ReplayClock(), checker);
      return "";
    }
    std::string value;
    bool found = false;
    const bool write = op.kind == TraceOp::Kind::kWrite;
    error = Command(c, {write ? "GET" : "GETEX", key, "EX", ttl_s_}, &value, &found, write ? 2 : 4);
    if (!error.empty()) {
      *done_us = NowUs();
      return error;
    }
    Stamp seen;
    found = found && DecodeStamp(value, &seen);
    const Stamp written{inc, (found && seen.incarnation == inc ? seen.counter : 0) + 1};
    if (write)
      error = Command(c, {"SET", key, EncodeValue(written, op.value_bytes), "EX", ttl_s_}, nullptr);
    *done_us = NowUs();
    checker->OnRead(op.session, start_us, found, seen, write);
    if (!error.empty()) return error;
    // Redis has no cookie: the key is the session's number and incarnation, visible as soon as
    // SET returns.
    if (write) s->AcknowledgeCommit(op.session, inc, "", "", &written, ReplayClock(), checker);
    return "";
  }

 private:
  std::string Key(uint32_t session, uint32_t inc) const {
    return prefix_ + std::to_string(session) + ":" + std::to_string(inc);
  }

  void Probe(redisContext* c, uint32_t session_no, SessionState* s, ConsistencyChecker* checker) {
    uint32_t inc;
    std::string unused;
    if (!s->TakeProbe(&inc, &unused)) return;
    const int64_t start = NowUs();
    std::string value;
    bool found = false;
    if (!Command(c, {"GET", Key(session_no, inc)}, &value, &found).empty()) return;
    Stamp seen;
    if (found && DecodeStamp(value, &seen)) checker->OnRead(session_no, start, true, seen, false);
  }

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

  // Runs one command; fills *out with a string reply (*found = whether it was one). Returns ""
  // or the error kind: "unavailable" (no answer) or "redis_error" (an error reply).
  static std::string Command(redisContext* c, const std::vector<std::string>& args,
                             std::string* out, bool* found = nullptr, size_t argc = 0) {
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
      return "unavailable";
    }
    const bool ok = r->type != REDIS_REPLY_ERROR;
    if (found != nullptr) *found = r->type == REDIS_REPLY_STRING;
    if (out != nullptr && r->type == REDIS_REPLY_STRING) out->assign(r->str, r->len);
    freeReplyObject(r);
    return ok ? "" : "redis_error";
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
    Status s = ParseHostPortList(o.target.substr(fleet.size()), &co.servers);
    if (!s.ok()) return s;
    co.keys = client::CookieKeySet::Generate();
    co.session_timeout_minutes = o.session_timeout_minutes;
    co.lock_wait_ms = 10'000;
    co.registry = o.registry;
    co.view_refresh_ms = 500;
    if (!o.remote_target.empty()) {
      if (o.remote_target.rfind(fleet, 0) != 0) {
        return Status::InvalidArgument("remote target must be sessionserver://host:port,...");
      }
      s = ParseHostPortList(o.remote_target.substr(fleet.size()), &co.remote_servers);
      if (!s.ok()) return s;
    }
    co.remote_registry = o.remote_registry;
    auto c = client::SessionClient::Create(co, &s);
    if (!s.ok()) return s;
    *out = std::make_unique<FleetTarget>(std::move(c));
    return Status::OK();
  }
  if (o.target.rfind(redis, 0) == 0) {
    HostPort addr;
    Status s = ParseHostPort(o.target.substr(redis.size()), &addr);
    if (!s.ok()) return Status::InvalidArgument("redis://host:port: " + s.message());
    *out = std::make_unique<RedisTarget>(addr.host, addr.port, o.session_timeout_minutes);
    return Status::OK();
  }
  return Status::InvalidArgument(
      "target must be sessionserver://host:port,... or redis://host:port");
}

// Per-worker measurements, merged at the end.
struct WorkerStats {
  LatencyHistogram latency;
  std::map<std::string, uint64_t> errors;
  uint64_t ops = 0, ok = 0;
};

// Per-second measurements (by intended start), shared by the workers: one histogram per second,
// each under its own mutex (a request records into one second once).
struct Seconds {
  explicit Seconds(size_t n) : latency(n), errors(n), mu(n) {}
  std::vector<LatencyHistogram> latency;
  std::vector<uint64_t> errors;
  std::vector<std::mutex> mu;
};

}  // namespace

Status Replay(const Trace& trace, const ReplayOptions& options, ReplayResults* results) {
  if (options.workers < 1 || options.workers > 4096 || !(options.speed > 0) ||
      !(options.max_seconds > 0) || options.max_seconds > 86400 || !(trace.model.duration_s >= 0) ||
      trace.model.duration_s > 86400 * 30) {
    return Status::InvalidArgument(
        "workers 1..4096, speed > 0, max_seconds in (0, 86400], trace duration sane");
  }
  std::unique_ptr<Target> target;
  Status s = MakeTarget(options, &target);
  if (!s.ok()) return s;
  std::vector<SessionState> sessions(trace.sessions);
  ConsistencyChecker checker;
  // Requests start within the trace's (sped-up) length or max_seconds, whichever is shorter in
  // open loop; in closed loop within max_seconds.
  const double issue_s = options.open_loop
                             ? std::min(trace.model.duration_s / options.speed, options.max_seconds)
                             : options.max_seconds;
  const size_t slots = static_cast<size_t>(issue_s) + 2;
  Seconds seconds(slots);
  std::vector<WorkerStats> stats(options.workers);

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<size_t, int64_t>> queue;  // (op index, intended start)
  bool done_issuing = false;
  std::atomic<size_t> next_closed{0};
  std::atomic<int64_t> t0{0};  // set once every worker is up (allocation is not measured)
  std::atomic<int64_t> stop_at{0};
  std::atomic<uint64_t> completed{0}, failed{0}, skipped{0};

  auto run_one = [&](WorkerStats& w, size_t index, int64_t start_us) {
    const TraceOp& op = trace.ops[index];
    int64_t done = 0;
    const std::string error = target->Do(op, start_us, &sessions[op.session], &checker, &done);
    if (done == 0) done = NowUs();
    const int64_t latency = done - start_us;
    const size_t second = std::min(
        slots - 1, static_cast<size_t>(std::max<int64_t>(0, start_us - t0.load()) / 1'000'000));
    ++w.ops;
    completed.fetch_add(1, std::memory_order_relaxed);
    w.latency.Record(latency);  // failed requests too: a slow failure is part of the tail
    std::lock_guard<std::mutex> l(seconds.mu[second]);
    seconds.latency[second].Record(latency);
    if (!error.empty()) {
      ++w.errors[error];
      ++seconds.errors[second];
      failed.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++w.ok;
    }
  };

  std::atomic<int> ready{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < options.workers; ++i) {
    workers.emplace_back([&, i] {
      WorkerStats& w = stats[i];
      ready.fetch_add(1);
      while (true) {
        if (!options.open_loop) {
          while (t0.load() == 0) std::this_thread::yield();
          const size_t index = next_closed.fetch_add(1);
          if (index >= trace.ops.size()) return;
          const int64_t now = NowUs();
          if (now >= stop_at.load()) {
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
        // Requests still queued when the run ends were delayed by the target: they count as
        // errors ("not_started") with the delay as their latency, not as silently skipped.
        if (NowUs() >= stop_at.load()) {
          const int64_t late = NowUs() - item.second;
          w.latency.Record(late);
          ++w.ops;
          ++w.errors["not_started"];
          failed.fetch_add(1);
          completed.fetch_add(1);
          continue;
        }
        run_one(w, item.first, item.second);
      }
    });
  }
  while (ready.load() < options.workers) std::this_thread::yield();
  stop_at = NowUs() + 10'000 + static_cast<int64_t>(options.max_seconds * 1e6);
  t0 = NowUs() + 10'000;

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
  }
  {
    std::lock_guard<std::mutex> l(mu);
    done_issuing = true;
  }
  cv.notify_all();
  for (auto& t : workers) t.join();
  const int64_t end = NowUs();
  finished = true;
  if (progress.joinable()) progress.join();

  ReplayResults r;
  r.target = options.target;
  r.open_loop = options.open_loop;
  r.seconds = static_cast<double>(end - t0) / 1e6;
  r.skipped = skipped;
  for (size_t sec = 0; sec < slots; ++sec) {
    const LatencyHistogram& h = seconds.latency[sec];
    if (h.count() == 0) continue;
    r.per_second.resize(sec + 1);
    r.per_second[sec] =
        SecondStats{h.count(), seconds.errors[sec], h.Percentile(0.5), h.Percentile(0.99), h.max()};
  }
  for (const auto& w : stats) {
    r.latency.Merge(w.latency);
    r.ops += w.ops;
    r.ok += w.ok;
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
