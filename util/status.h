// Status: the result of an operation that can fail, passed across module boundaries instead of
// exceptions (storage/ never throws). Cheap to copy when OK. Thread-compatible: a const Status
// may be read from many threads.
#ifndef SESSIONSERVER_UTIL_STATUS_H_
#define SESSIONSERVER_UTIL_STATUS_H_

#include <string>
#include <utility>

namespace sessionserver {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,
    kIOError,
    kCorruption,
    kUnavailable,
    kInternal,
    kNotFound,
    kWouldBlock  // the work needs I/O the calling thread may not do (util/blocking.h)
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, msg); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, msg); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status WouldBlock(std::string msg) { return Status(Code::kWouldBlock, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsWouldBlock() const { return code_ == Code::kWouldBlock; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK", or "<code name>: <message>".
  std::string ToString() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_STATUS_H_
