#include "tests/blackbox/server_process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace sessionserver {

using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::transport::TFramedTransport;
using apache::thrift::transport::TSocket;

std::string SanitizerReports(const std::string& log_path, size_t max_lines) {
  std::ifstream in(log_path);
  std::string line, out;
  bool inside = false;
  size_t lines = 0;
  while (std::getline(in, line) && lines < max_lines) {
    const bool starts = line.find("WARNING: ThreadSanitizer") != std::string::npos ||
                        line.find("ERROR: AddressSanitizer") != std::string::npos ||
                        line.find("ERROR: LeakSanitizer") != std::string::npos ||
                        line.find(": runtime error: ") != std::string::npos;
    if (!inside && !starts) continue;
    inside = line.rfind("SUMMARY: ", 0) != 0;  // a report ends with its SUMMARY line
    out += line + "\n";
    ++lines;
  }
  return out;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL);
  // A sanitizer report in the child fails the test that started it, whatever else happened,
  // and is shown whole (a report is longer than the log's tail, and the cause of what failed).
  const std::string reports = log_path_.empty() ? "" : SanitizerReports(log_path_);
  if (!reports.empty()) {
    ADD_FAILURE() << "sanitizer report in " << log_path_ << ":\n" << reports;
  } else if (::testing::Test::HasFailure() && !log_path_.empty()) {
    std::fprintf(stderr, "---- last lines of the server's log (%s) ----\n", log_path_.c_str());
    std::system(("tail -n 60 '" + log_path_ + "' >&2").c_str());
  }
}

bool ServerProcess::Start(const std::vector<std::string>& flags) {
  if (dir_.path().empty()) return false;
  const std::string port_file = dir_.path() + "/port";
  log_path_ = dir_.path() + "/server.log";
  const std::string binary = binary_.empty() ? SESSION_SERVER_BINARY : binary_;
  const std::string name = binary.substr(binary.rfind('/') + 1);
  std::remove(port_file.c_str());  // a restart must wait for the new process's file
  std::vector<std::string> args = {binary, "--port=0", "--port_file=" + port_file};
  args.insert(args.end(), flags.begin(), flags.end());

  pid_ = fork();
  if (pid_ == 0) {
    // The server must not outlive a crashed test, nor hold the test's stdout open (ctest waits
    // for it to close).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::freopen(log_path_.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Wait for the port file: the server writes it (atomically) once it listens.
  for (int i = 0; i < 2000; ++i) {
    std::ifstream in(port_file);
    if (in >> port_ && port_ > 0) return !binary_.empty() || Warm();
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      std::fprintf(stderr, "%s exited during start-up; log: %s\n", name.c_str(), log_path_.c_str());
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::fprintf(stderr, "%s did not listen within 20 s\n", name.c_str());
  return false;
}

bool ServerProcess::Warm() {
  // The port file is written once the server serves (ThriftServer::Start waits for its event
  // loop): the first connection is answered. Retried anyway, so that a server that does not
  // answer is reported as such rather than as the first test's failure.
  int answered = 0;
  for (int i = 0; i < 500 && answered < 1; ++i) {
    try {
      TestClient c(port_, 2000);
      thrift::ServerInfo info;
      c->info(info);
      ++answered;
    } catch (const std::exception&) {
      answered = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (answered < 1) std::fprintf(stderr, "session_server did not answer info() within 5 s\n");
  return answered >= 1;
}

int ServerProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

TestClient::TestClient(int port, int timeout_ms) {
  auto socket = std::make_shared<TSocket>("127.0.0.1", port);
  socket->setConnTimeout(timeout_ms);
  socket->setRecvTimeout(timeout_ms);
  socket->setSendTimeout(timeout_ms);
  transport_ = std::make_shared<TFramedTransport>(socket);
  client_ =
      std::make_unique<thrift::SessionServiceClient>(std::make_shared<TBinaryProtocol>(transport_));
  transport_->open();
}

TestClient::~TestClient() {
  try {
    transport_->close();
  } catch (...) {
  }
}

bool TestClient::IsOpen() const { return transport_->isOpen(); }

bool ServerClosesAfter(int port, const std::string& bytes, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return false;
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close while we are still sending
    sent += static_cast<size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    closed = (n <= 0);
  }
  close(fd);
  return closed;
}

std::string CommandOutput(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  pclose(p);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t ServerCounter(int port, const std::string& name) {
  TestClient c(port);
  thrift::ServerInfo info;
  c->info(info);
  return info.counters[name];
}

}  // namespace sessionserver
