#include "util/status.h"

namespace sessionserver {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk:
      return name;
    case Code::kInvalidArgument:
      name = "Invalid argument";
      break;
    case Code::kIOError:
      name = "IO error";
      break;
    case Code::kCorruption:
      name = "Corruption";
      break;
    case Code::kUnavailable:
      name = "Unavailable";
      break;
    case Code::kInternal:
      name = "Internal error";
      break;
    case Code::kNotFound:
      name = "Not found";
      break;
    case Code::kWouldBlock:
      name = "Would block";
      break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace sessionserver
