// base64url without padding (RFC 4648 section 5). Internal to session_client/.
#ifndef SESSIONSERVER_SESSION_CLIENT_BASE64URL_H_
#define SESSIONSERVER_SESSION_CLIENT_BASE64URL_H_

#include <string>
#include <string_view>

namespace sessionserver::client {

std::string Base64UrlEncode(std::string_view bytes);
// False if `text` has a character outside the alphabet, a length of 1 mod 4, or non-zero
// trailing bits (so every byte string has exactly one encoding).
bool Base64UrlDecode(std::string_view text, std::string* bytes);

}  // namespace sessionserver::client

#endif  // SESSIONSERVER_SESSION_CLIENT_BASE64URL_H_
