// The encoding of a session's named attributes in the stored value (docs/SESSION_ENCODING.md).
// Internal to session_client/.
#ifndef SESSIONSERVER_SESSION_CLIENT_ATTRIBUTES_H_
#define SESSIONSERVER_SESSION_CLIENT_ATTRIBUTES_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace sessionserver::client {

using Attributes = std::map<std::string, std::string, std::less<>>;

inline constexpr char kAttributesFormatV1 = 0x01;

// Format v1: the byte 0x01, then per attribute in name order: varint(len name), name,
// varint(len value), value. No attributes: the empty string.
std::string EncodeAttributes(const Attributes& attrs);

// False (and *attrs untouched) unless `bytes` is exactly a v1 encoding (or empty).
bool DecodeAttributes(std::string_view bytes, Attributes* attrs);

}  // namespace sessionserver::client

#endif  // SESSIONSERVER_SESSION_CLIENT_ATTRIBUTES_H_
