#include "session_client/session_id.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

#include "session_client/base64url.h"

namespace sessionserver::client {

std::string NewSessionId() {
  unsigned char raw[kSessionIdRandomBytes];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    std::fprintf(stderr, "session_client: the CSPRNG failed; refusing to issue a session id\n");
    std::abort();
  }
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
}

bool IsWellFormedSessionId(std::string_view id) {
  std::string raw;
  return id.size() == kSessionIdChars && Base64UrlDecode(id, &raw) &&
         raw.size() == kSessionIdRandomBytes;
}

}  // namespace sessionserver::client
