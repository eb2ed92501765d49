// Lock hand-off latency on a real session_server (started on a free loopback port): the time from
// the moment the lock holder sends its save (put with its cookie, which releases the lock) to the
// moment a request waiting for that lock has its answer. Two ways to wait:
//   server: getWaiting (the server parks the request and answers it on release);
//   poll:   getExclusive, and on LOCKED sleep 20 ms and ask again (clients before getWaiting).
//
//   lock_handoff_bench [rounds=2000]
// Prints p50/p99/max per way. The poll rounds are fewer (each takes ~10 ms).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/blackbox/server_process.h"

namespace sessionserver {
namespace {

using Clock = std::chrono::steady_clock;
namespace ts = thrift;

// The number of requests parked on locks now.
int64_t Parked(int port) { return ServerCounter(port, "requests_parked"); }

// Hand-off latencies in microseconds, one per round.
std::vector<int64_t> Run(int port, bool server_waits, int rounds) {
  TestClient holder(port), waiter(port);
  const std::string id = server_waits ? "handoff-server" : "handoff-poll";
  holder->put(id, "v", 20, 0, false);
  std::vector<int64_t> latencies;
  for (int round = 0; round < rounds; ++round) {
    ts::GetResult held;
    holder->getExclusive(held, id);
    if (held.status != ts::Status::OK) std::abort();
    std::atomic<bool> asked{false};
    Clock::time_point answered;
    std::thread t([&] {
      ts::GetResult r;
      while (true) {
        if (server_waits) {
          asked = true;
          waiter->getWaiting(r, id, true, 5000);
        } else {
          waiter->getExclusive(r, id);
        }
        if (r.status == ts::Status::OK) break;
        asked = true;
        if (!server_waits) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      answered = Clock::now();
      waiter->releaseExclusive(id, r.lockCookie);
    });
    while (!asked) std::this_thread::yield();
    if (server_waits) {
      while (Parked(port) == 0) std::this_thread::yield();
    }
    const Clock::time_point released = Clock::now();
    holder->put(id, "v", 20, held.lockCookie, false);
    t.join();
    latencies.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(answered - released).count());
  }
  std::sort(latencies.begin(), latencies.end());
  return latencies;
}

void Print(const char* name, const std::vector<int64_t>& v) {
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  std::printf("%-7s rounds %5zu  p50 %7lld us  p99 %7lld us  max %7lld us\n", name, v.size(),
              static_cast<long long>(at(0.5)), static_cast<long long>(at(0.99)),
              static_cast<long long>(v.back()));
}

}  // namespace
}  // namespace sessionserver

int main(int argc, char** argv) {
  using namespace sessionserver;
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 2000;
  ServerProcess server;
  if (!server.Start()) return 1;
  Print("server", Run(server.port(), /*server_waits=*/true, rounds));
  Print("poll", Run(server.port(), /*server_waits=*/false, std::max(1, rounds / 10)));
  return 0;
}
