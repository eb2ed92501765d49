// Session ids: 128 bits from OpenSSL's CSPRNG, base64url without padding (22 characters), so an
// id cannot be guessed and is safe in cookies, URLs and Redis keys.
// Thread-safe.
#ifndef SESSIONSERVER_SESSION_CLIENT_SESSION_ID_H_
#define SESSIONSERVER_SESSION_CLIENT_SESSION_ID_H_

#include <string>
#include <string_view>

namespace sessionserver::client {

inline constexpr size_t kSessionIdRandomBytes = 16;
inline constexpr size_t kSessionIdChars = 22;

// A fresh id. Aborts the process if the CSPRNG fails (never hand out a guessable id).
std::string NewSessionId();

// Whether `id` has the shape NewSessionId produces (22 base64url characters). Says nothing of
// whether the fleet issued it.
bool IsWellFormedSessionId(std::string_view id);

}  // namespace sessionserver::client

#endif  // SESSIONSERVER_SESSION_CLIENT_SESSION_ID_H_
