// Rendezvous (highest random weight) hashing: every client and server ranks the members of a
// fleet for a key the same way, so they agree on which server a session goes to, and adding or
// removing a server moves only the sessions whose top choice it is (or was).
#ifndef SESSIONSERVER_UTIL_RENDEZVOUS_H_
#define SESSIONSERVER_UTIL_RENDEZVOUS_H_

#include <cstdint>
#include <string_view>

namespace sessionserver {

// The weight of `server` (its id, "host:port") for `key`: FNV-1a over both, then the splitmix64
// finaliser so that similar inputs spread. The highest weight ranks first.
inline uint64_t RendezvousScore(std::string_view server, std::string_view key) {
  uint64_t h = 1469598103934665603ull;
  for (std::string_view part : {server, std::string_view("\0", 1), key}) {
    for (unsigned char c : part) h = (h ^ c) * 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_RENDEZVOUS_H_
