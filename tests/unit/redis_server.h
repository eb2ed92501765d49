// RedisServer: a real redis-server on a free loopback port for integration tests. It dies with
// the test process (PR_SET_PDEATHSIG), keeps no data on disk, and can be paused (SIGSTOP) and
// killed to test outages.
#ifndef SESSIONSERVER_TESTS_UNIT_REDIS_SERVER_H_
#define SESSIONSERVER_TESTS_UNIT_REDIS_SERVER_H_

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace sessionserver {

class RedisServer {
 public:
  RedisServer() = default;
  // `port` 0: a free one. `extra_args` are added to redis-server's command line.
  RedisServer(int port, std::vector<std::string> extra_args)
      : port_(port), extra_args_(std::move(extra_args)) {}
  ~RedisServer() { Kill(); }

  // Starts redis-server; waits up to 10 s for it to answer PING. Reuses the port on restart.
  bool Start() {
    if (port_ == 0) port_ = FreePort();
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     "/tmp",
                                     "--loglevel",
                                     "warning"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      freopen("/dev/null", "w", stdout);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    for (int i = 0; i < 1000; ++i) {
      if (Ping()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void Pause() { kill(pid_, SIGSTOP); }
  void Resume() { kill(pid_, SIGCONT); }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }

  // Runs one command on a fresh connection; the reply as text ("(nil)", integers in decimal).
  std::string Command(const std::string& cmd) {
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{1, 0});
    if (c == nullptr || c->err) {
      if (c) redisFree(c);
      return "(no connection)";
    }
    auto* r = static_cast<redisReply*>(redisCommand(c, cmd.c_str()));
    std::string out = "(error)";
    if (r != nullptr) {
      if (r->type == REDIS_REPLY_INTEGER)
        out = std::to_string(r->integer);
      else if (r->type == REDIS_REPLY_NIL)
        out = "(nil)";
      else if (r->str != nullptr)
        out.assign(r->str, r->len);
      freeReplyObject(r);
    }
    redisFree(c);
    return out;
  }

  // A loopback port free right now (the kernel's pick; for harnesses that need fixed ports).
  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }

 private:
  bool Ping() { return Command("PING") == "PONG"; }

  pid_t pid_ = -1;
  int port_ = 0;
  std::vector<std::string> extra_args_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_TESTS_UNIT_REDIS_SERVER_H_
