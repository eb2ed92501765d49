// RedisConnection: one hiredis connection to one Redis node that (re)connects on demand, with
// connect and command timeouts, and sends commands in pipelined round trips. The building block
// of RedisRouter (util/redis_cluster.h), which is what the backing store and the fleet registry
// use.
//
// Thread-compatible: not thread-safe; each user holds its own or guards it with a mutex.
#ifndef SESSIONSERVER_UTIL_REDIS_CONNECTION_H_
#define SESSIONSERVER_UTIL_REDIS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/host_port.h"
#include "util/status.h"

struct redisContext;
struct redisReply;

namespace sessionserver {

struct RedisReplyDeleter {
  void operator()(redisReply* r) const;
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;
using RedisCommand = std::vector<std::string>;  // binary-safe arguments

// A reply's text: its string (status, error or bulk), else "reply type N".
std::string RedisReplyText(const redisReply& r);

class RedisConnection {
 public:
  RedisConnection(HostPort endpoint, int64_t connect_timeout_us, int64_t command_timeout_us);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects unless connected. Unavailable if the node cannot be reached in time.
  Status Ensure();

  // Sends the commands in one round trip and returns their replies, one per command, error
  // replies included. A connection that was open but turns out broken (Redis restarted, idle
  // connection closed) is replaced and the commands sent once more, so REQUIRES: every command
  // is idempotent. A non-OK Status (Unavailable) means the outcome of every command is unknown.
  Status Pipeline(const std::vector<RedisCommand>& commands, std::vector<RedisReply>* replies);
  // The same for commands held elsewhere (not owned; a router sends parts of a batch this way).
  Status Pipeline(const std::vector<const RedisCommand*>& commands,
                  std::vector<RedisReply>* replies);

  // Pipeline in two halves, so a router can keep several nodes busy at once: Write sends the
  // commands (connecting if needed), Read collects their replies. REQUIRES: each successful
  // Write of n commands is followed by Read(n) before the next Write. Neither retries; a failure
  // closes the connection.
  Status Write(const std::vector<const RedisCommand*>& commands);
  Status Read(size_t count, std::vector<RedisReply>* replies);

  bool connected() const { return ctx_ != nullptr; }
  const HostPort& endpoint() const { return endpoint_; }
  uint64_t connects() const { return connects_; }  // successful connects so far

 private:
  Status Broken(const char* what);
  void Reset();

  const HostPort endpoint_;
  const int64_t connect_timeout_us_;
  const int64_t command_timeout_us_;
  redisContext* ctx_ = nullptr;
  uint64_t connects_ = 0;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_REDIS_CONNECTION_H_
