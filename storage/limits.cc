#include "storage/limits.h"

#include <cstdio>
#include <string>

namespace sessionserver {

Status CheckSessionId(std::string_view id) {
  if (id.empty()) return Status::InvalidArgument("session id is empty");
  if (id.size() > kMaxSessionIdBytes) {
    return Status::InvalidArgument("session id is " + std::to_string(id.size()) +
                                   " bytes; the limit is " + std::to_string(kMaxSessionIdBytes));
  }
  for (size_t i = 0; i < id.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(id[i]);
    if (c < 0x21 || c > 0x7E) {
      char msg[96];
      std::snprintf(msg, sizeof(msg),
                    "session id has byte 0x%02x at offset %zu; only printable ASCII is allowed", c,
                    i);
      return Status::InvalidArgument(msg);
    }
  }
  return Status::OK();
}

Status CheckTimeoutMinutes(int32_t minutes) {
  if (minutes < kMinTimeoutMinutes || minutes > kMaxTimeoutMinutes) {
    return Status::InvalidArgument("timeoutMinutes " + std::to_string(minutes) +
                                   " is outside 1..525600");
  }
  return Status::OK();
}

Status CheckValueSize(size_t bytes, size_t max_value_bytes) {
  if (bytes > max_value_bytes) {
    return Status::InvalidArgument("value is " + std::to_string(bytes) +
                                   " bytes; the limit (--max_value_bytes) is " +
                                   std::to_string(max_value_bytes));
  }
  return Status::OK();
}

}  // namespace sessionserver
