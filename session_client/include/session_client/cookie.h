// The routing cookie: the session id and the identity of the server that owns the session,
// sealed with AES-256-GCM under a key set with rotation, so nobody but the web tier can read or
// forge which server a session lives on (docs/COOKIE.md has the format).
//
// A cookie that fails to open (bad encoding, unknown or retired key, failed authentication,
// malformed contents) is an error: the caller treats it as "no affinity" and never connects to
// an address because a cookie named it.
//
// Thread-safe: a CookieSealer is immutable after construction.
#ifndef SESSIONSERVER_SESSION_CLIENT_COOKIE_H_
#define SESSIONSERVER_SESSION_CLIENT_COOKIE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace sessionserver::client {

struct CookieKey {
  uint32_t id = 0;  // names the key inside sealed cookies; unique within a key set
  std::array<uint8_t, 32> bytes{};
};

// The current key (seals new cookies) and previous keys (still open cookies sealed before a
// rotation). A key dropped from the set is retired: its cookies no longer open.
struct CookieKeySet {
  CookieKey current;
  std::vector<CookieKey> previous;

  // A set with one fresh random key (id 1).
  static CookieKeySet Generate();
  // Adds a fresh current key (id = largest + 1); the old current becomes previous. Keeps at most
  // `keep_previous` previous keys, newest first.
  void Rotate(size_t keep_previous = 2);

  // Text form, one key per line: "<id> <64 hex digits>", current first. Parse rejects anything
  // else (InvalidArgument, naming the line).
  std::string Serialize() const;
  static Status Parse(std::string_view text, CookieKeySet* out);
};

// Server ids are padded to this length inside the cookie, so its length reveals nothing.
inline constexpr size_t kMaxServerIdBytes = 64;

struct CookieContents {
  std::string session_id;  // 1..255 bytes
  std::string server_id;   // 0..kMaxServerIdBytes bytes (empty: no affinity)
};

class CookieSealer {
 public:
  explicit CookieSealer(CookieKeySet keys);

  // The cookie value: "v1." then base64url(key id, nonce, ciphertext, tag). REQUIRES the
  // contents' lengths above (else the result does not open).
  std::string Seal(const CookieContents& contents) const;

  // Opens a cookie value. InvalidArgument saying why if it does not open. If `current_key` is
  // not null it is set to whether the cookie was sealed with the current key (a cookie sealed
  // with a previous key should be sealed again, so that the key can be retired).
  Status Open(std::string_view cookie, CookieContents* out, bool* current_key = nullptr) const;

  // Longest cookie value Open looks at; longer ones are refused before any decoding.
  static constexpr size_t kMaxCookieChars = 1024;

 private:
  const CookieKey* Find(uint32_t id) const;

  const CookieKeySet keys_;
};

}  // namespace sessionserver::client

#endif  // SESSIONSERVER_SESSION_CLIENT_COOKIE_H_
