// Per-session memory overhead of the memory tier: bytes beyond id + value, both as charged
// against the byte budget and as measured in the process's resident set.
//
//   memory_overhead [sessions=200000] [value_bytes=1024]
// bench/compare_memory_with_redis.sh runs this next to Redis on the same sessions.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "storage/session_store.h"
#include "util/clock.h"

namespace {

long ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * 4096;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sessionserver;
  const long n = argc > 1 ? std::atol(argv[1]) : 200'000;
  const long value_bytes = argc > 2 ? std::atol(argv[2]) : 1024;
  MemoryStoreOptions options;
  options.capacity_bytes = 8ull << 30;  // never evicts in this measurement
  Status s;
  auto store = NewMemoryStore(options, SystemClock(), &s);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const std::string value(value_bytes, 'v');
  const long rss_before = ResidentBytes();
  long payload = 0;
  char id[64];
  for (long i = 0; i < n; ++i) {
    // 22-character ids, the length of a base64url 128-bit session id.
    std::snprintf(id, sizeof(id), "sid%019ld", i * 2654435761L % 1000000000000000000L);
    WriteResult w;
    store->Put(id, value, 20, 0, false, &w);
    payload += 22 + value_bytes;
  }
  const long rss_after = ResidentBytes();
  const StoreStats st = store->GetStats();
  std::printf("sessions=%ld value_bytes=%ld\n", n, value_bytes);
  std::printf("charged_overhead_per_session=%.1f\n", double(st.bytes - payload) / n);
  std::printf("rss_overhead_per_session=%.1f\n", double(rss_after - rss_before - payload) / n);
  return 0;
}
