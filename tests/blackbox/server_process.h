// ServerProcess: starts the real session_server binary on a free loopback port for black-box
// tests, and a Thrift client for it. The binary's path comes from the build
// (SESSION_SERVER_BINARY); another binary that takes --port=0 and --port_file the same way (the
// example session_webapp) can be started through the second constructor.
#ifndef SESSIONSERVER_TESTS_BLACKBOX_SERVER_PROCESS_H_
#define SESSIONSERVER_TESTS_BLACKBOX_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "SessionService.h"
#include "tests/temp_dir.h"

namespace sessionserver {

class ServerProcess {
 public:
  ServerProcess() = default;
  explicit ServerProcess(std::string binary) : binary_(std::move(binary)) {}
  ~ServerProcess();  // kill -9 if still running

  // Starts the server with --port=0 and `flags`; waits (up to 20 s) until it listens.
  // Returns false (and says why on stderr) if it did not come up.
  bool Start(const std::vector<std::string>& flags = {});
  // Sends `signal` and waits for the exit; returns the exit status as from waitpid.
  int Stop(int signal);
  bool Running() const { return pid_ > 0; }
  int port() const { return port_; }
  const std::string& log_path() const { return log_path_; }

 private:
  // Until session_server answers info() on fresh connections (see the .cc).
  bool Warm();

  std::string binary_;  // empty: SESSION_SERVER_BINARY
  pid_t pid_ = -1;
  int port_ = 0;
  TempDir dir_{"ss-blackbox"};  // destroyed after ~ServerProcess has printed the log
  std::string log_path_;
};

// The sanitizer reports (ThreadSanitizer, AddressSanitizer, LeakSanitizer, UBSan) in the log at
// `log_path`, each whole, up to `max_lines` lines in all; empty if there are none.
std::string SanitizerReports(const std::string& log_path, size_t max_lines = 400);

// A connected client (framed transport, binary protocol). Closes on destruction.
class TestClient {
 public:
  explicit TestClient(int port, int timeout_ms = 5000);
  ~TestClient();
  thrift::SessionServiceClient* operator->() { return client_.get(); }
  bool IsOpen() const;

 private:
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<thrift::SessionServiceClient> client_;
};

// Polls `cond` every 20 ms until it holds or `timeout_ms` passed; returns its last value. For
// conditions that depend on other processes (heartbeats, flushes, replication).
template <typename Cond>
bool Eventually(Cond cond, int timeout_ms = 10'000) {
  for (int waited = 0; waited < timeout_ms && !cond(); waited += 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// Opens a raw TCP connection to 127.0.0.1:port, sends `bytes`, and reports whether the server
// closed the connection within `timeout_ms` (reading whatever it sent first).
bool ServerClosesAfter(int port, const std::string& bytes, int timeout_ms = 5000);

// The info() counter `name` of the server on 127.0.0.1:port (0 if it does not report it).
int64_t ServerCounter(int port, const std::string& name);

// Runs `command` with /bin/sh and returns what it printed on stdout. Its stderr is not captured
// (it goes to the test's stderr), so usage text and error messages cannot satisfy a check.
std::string CommandOutput(const std::string& command);

// The contents of the file at `path` (empty if it cannot be read).
std::string ReadFile(const std::string& path);

}  // namespace sessionserver

#endif  // SESSIONSERVER_TESTS_BLACKBOX_SERVER_PROCESS_H_
