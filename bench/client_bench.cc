// session_client against a real local fleet (a redis-server and two session_server processes on
// loopback, started here): the two issue-5 figures, each with its peer in the same run.
//   1. Client overhead per request (Load exclusive + Commit) vs the raw Thrift calls it makes
//      (getExclusive + put) on one connection to the same server.
//   2. Latency of the first request after the session's owner is killed with -9 (failover:
//      connection refused, next server by rendezvous, restore from Redis), vs the same request
//      with the owner alive.
//
//   client_bench SESSION_SERVER_BINARY [requests=20000] [kills=30]
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "SessionService.h"
#include "session_client/client.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver::client {
namespace {

using Clock = std::chrono::steady_clock;

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double Pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

void Die(const std::string& why) {
  std::fprintf(stderr, "client_bench: %s\n", why.c_str());
  std::exit(1);
}

// A session_server child on a fixed port; killed with the bench.
class Server {
 public:
  Server(std::string binary, int port, std::string data_dir, int redis_port)
      : binary_(std::move(binary)), port_(port), dir_(std::move(data_dir)), redis_(redis_port) {}
  ~Server() { Kill(); }
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::freopen("/dev/null", "w", stderr);
      const std::string port = "--port=" + std::to_string(port_);
      const std::string redis = "--redis=127.0.0.1:" + std::to_string(redis_);
      const std::string data = "--data_dir=" + dir_;
      execl(binary_.c_str(), binary_.c_str(), port.c_str(), redis.c_str(), data.c_str(),
            "--write_behind_delay_ms=10", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 2000; ++i) {  // until it answers
      try {
        Info();
        return;
      } catch (...) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    Die("session_server did not start on port " + std::to_string(port_));
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int64_t QueueDepth() { return Info().counters["wb_queue_depth"]; }
  int port() const { return port_; }
  std::string id() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  thrift::ServerInfo Info() {
    auto socket = std::make_shared<apache::thrift::transport::TSocket>("127.0.0.1", port_);
    socket->setConnTimeout(200);
    auto transport = std::make_shared<apache::thrift::transport::TFramedTransport>(socket);
    thrift::SessionServiceClient rpc(
        std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport));
    transport->open();
    thrift::ServerInfo info;
    rpc.info(info);
    return info;
  }

  const std::string binary_;
  const int port_;
  const std::string dir_;
  const int redis_;
  pid_t pid_ = -1;
};

int Main(int argc, char** argv) {
  if (argc < 2) Die("usage: client_bench SESSION_SERVER_BINARY [requests] [kills]");
  const int requests = argc > 2 ? std::atoi(argv[2]) : 20'000;
  const int kills = argc > 3 ? std::atoi(argv[3]) : 30;
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});  // refused connects: expected
  RedisServer redis;
  if (!redis.Start()) Die("redis-server did not start");
  TempDir dir("ss-client-bench");
  std::vector<std::unique_ptr<Server>> servers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(std::make_unique<Server>(
        argv[1], RedisServer::FreePort(), dir.path() + "/s" + std::to_string(i), redis.port()));
    servers.back()->Start();
  }
  ClientOptions options;
  for (const auto& s : servers) options.servers.push_back({"127.0.0.1", s->port()});
  options.keys = CookieKeySet::Generate();
  options.breaker_open_ms = 60'000;  // a killed owner stays skipped (as after a real crash)
  Status st;
  auto client = SessionClient::Create(options, &st);
  if (!st.ok()) Die(st.ToString());
  const std::string value(2048, 'v');

  // 1. Overhead per request.
  std::unique_ptr<Session> s;
  std::string cookie;
  if (!client->Load("", true, &s).ok()) Die("load");
  s->SetRaw(value);
  if (!client->Commit(s.get(), &cookie).ok()) Die("commit");
  const std::string sid = s->id();
  Server* owner = nullptr;
  for (auto& sv : servers) {
    if (sv->id() == s->server_id()) owner = sv.get();
  }
  std::vector<double> via_client, raw;
  {
    // Interleaved, so both see the same machine (it is shared and noisy).
    auto socket = std::make_shared<apache::thrift::transport::TSocket>("127.0.0.1", owner->port());
    auto transport = std::make_shared<apache::thrift::transport::TFramedTransport>(socket);
    thrift::SessionServiceClient rpc(
        std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport));
    transport->open();
    for (int i = 0; i < requests; ++i) {
      auto t0 = Clock::now();
      std::unique_ptr<Session> r;
      if (!client->Load(cookie, true, &r).ok()) Die("load");
      r->SetRaw(value);
      if (!client->Commit(r.get(), &cookie).ok()) Die("commit");
      via_client.push_back(Us(Clock::now() - t0));
      t0 = Clock::now();
      thrift::GetResult g;
      rpc.getExclusive(g, sid);
      rpc.put(sid, value, 20, g.lockCookie, false);
      raw.push_back(Us(Clock::now() - t0));
    }
  }
  std::printf("1. exclusive request cycle, 2 KiB session, one thread, %d requests (us)\n",
              requests);
  std::printf("   raw Thrift getExclusive+put   p50 %7.1f  p99 %7.1f\n", Pct(raw, 0.5),
              Pct(raw, 0.99));
  std::printf("   session_client Load+Commit    p50 %7.1f  p99 %7.1f  (%.2fx p50)\n",
              Pct(via_client, 0.5), Pct(via_client, 0.99), Pct(via_client, 0.5) / Pct(raw, 0.5));

  // 2. First request after the owner dies, vs with the owner alive.
  std::vector<double> failover, alive;
  for (int k = 0; k < kills; ++k) {
    auto fresh = SessionClient::Create(options, &st);  // breakers closed, pools warm below
    std::unique_ptr<Session> n;
    std::string c;
    if (!fresh->Load("", true, &n).ok()) Die("load");
    n->SetRaw(value);
    if (!fresh->Commit(n.get(), &c).ok()) Die("commit");
    Server* own = nullptr;
    for (auto& sv : servers) {
      if (sv->id() == n->server_id()) own = sv.get();
    }
    {
      const auto t0 = Clock::now();
      std::unique_ptr<Session> r;
      if (!fresh->Load(c, true, &r).ok() || !fresh->Commit(r.get(), &c).ok()) Die("alive");
      alive.push_back(Us(Clock::now() - t0));
    }
    for (int i = 0; i < 400 && own->QueueDepth() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    own->Kill();
    const auto t0 = Clock::now();
    std::unique_ptr<Session> r;
    if (!fresh->Load(c, true, &r).ok()) Die("failover load");
    if (r->raw() != value) Die("failover served other data");
    if (!fresh->Commit(r.get(), &c).ok()) Die("failover commit");
    failover.push_back(Us(Clock::now() - t0));
    own->Start();
  }
  std::printf(
      "2. first request (Load exclusive + Commit) after kill -9 of the owner, %d kills (us)\n",
      kills);
  std::printf("   owner alive (peer)            p50 %7.1f  p99 %7.1f\n", Pct(alive, 0.5),
              Pct(alive, 0.99));
  std::printf("   owner killed: failover        p50 %7.1f  p99 %7.1f  (%.1fx p50)\n",
              Pct(failover, 0.5), Pct(failover, 0.99), Pct(failover, 0.5) / Pct(alive, 0.5));
  return 0;
}

}  // namespace
}  // namespace sessionserver::client

int main(int argc, char** argv) { return sessionserver::client::Main(argc, argv); }
