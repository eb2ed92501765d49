// Request limits of the session protocol and the checks that enforce them. Every store
// operation runs these checks first, so a bad request is rejected with a message naming what
// was wrong and never touches stored state.
#ifndef SESSIONSERVER_STORAGE_LIMITS_H_
#define SESSIONSERVER_STORAGE_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "util/status.h"

namespace sessionserver {

// Timeouts are whole minutes, 1..525,600 (one year), as in the ASP.NET State Server.
inline constexpr int32_t kMinTimeoutMinutes = 1;
inline constexpr int32_t kMaxTimeoutMinutes = 525'600;
inline constexpr int32_t kDefaultTimeoutMinutes = 20;

// Session ids are 1..kMaxSessionIdBytes bytes of printable ASCII (0x21..0x7E): they appear in
// logs, RocksDB keys and Redis keys. Generated ids (base64url of >= 128 bits) are 22+ bytes;
// ASP.NET-style "app path + id" keys fit too.
inline constexpr size_t kMaxSessionIdBytes = 256;

// Default and ceiling for --max_value_bytes.
inline constexpr size_t kDefaultMaxValueBytes = 1 << 20;
inline constexpr size_t kMaxValueBytesCeiling = 32 << 20;

// The largest Thrift frame that carries values of up to `max_value_bytes`: twice the value limit
// plus 64 KiB, so a value somewhat over the limit still arrives whole and gets InvalidRequest
// instead of a closed connection. A server refuses bigger frames (server/thrift_server.h); a
// client, which does not know the server's --max_value_bytes, accepts FrameLimit of the ceiling.
constexpr size_t FrameLimit(size_t max_value_bytes) { return 2 * max_value_bytes + (64 << 10); }
// Frames at the ceiling must stay below Thrift's 100 MiB maximum message size, or values between
// the two would close connections instead of getting InvalidRequest.
static_assert(FrameLimit(kMaxValueBytesCeiling) < 100 * 1024 * 1024,
              "frames at the ceiling must fit Thrift's default maximum message size");

Status CheckSessionId(std::string_view id);
Status CheckTimeoutMinutes(int32_t minutes);
Status CheckValueSize(size_t bytes, size_t max_value_bytes);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_LIMITS_H_
