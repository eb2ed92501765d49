// Helpers shared by the session_client black-box tests (client_test.cc, two_site_client_test.cc):
// one web request that adds to a cart, one read-only request, and a loopback
// listener that no server is on (a cookie naming it must never make the client connect there).
#ifndef SESSIONSERVER_TESTS_BLACKBOX_CLIENT_TEST_UTIL_H_
#define SESSIONSERVER_TESTS_BLACKBOX_CLIENT_TEST_UTIL_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "session_client/client.h"
#include "tests/blackbox/server_process.h"

namespace sessionserver::client {

using sessionserver::Eventually;  // tests/blackbox/server_process.h

// A client for the tests: `options` with `keys` and a 2 s call timeout (loaded machines).
inline std::unique_ptr<SessionClient> NewTestClient(ClientOptions options,
                                                    const CookieKeySet& keys) {
  options.keys = keys;
  options.call_timeout_ms = 2000;
  Status st;
  auto c = SessionClient::Create(options, &st);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return c;
}

// One request that adds `item` to the cart attribute; returns the new cookie, and the server that
// served it in *served_by if given.
inline std::string AddItem(SessionClient* client, const std::string& cookie,
                           const std::string& item, std::string* served_by = nullptr) {
  std::unique_ptr<Session> s;
  Status st = client->Load(cookie, /*exclusive=*/true, &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (!st.ok()) return cookie;
  s->Set("cart", s->Get("cart").value_or("") + item + ";");
  if (served_by != nullptr) *served_by = s->server_id();
  std::string next;
  st = client->Commit(s.get(), &next);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return next;
}

// One read-only request; null if it failed.
inline std::unique_ptr<Session> Read(SessionClient* client, const std::string& cookie) {
  std::unique_ptr<Session> s;
  Status st = client->Load(cookie, /*exclusive=*/false, &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

// A listener on a free loopback port that is in no view: Connected() says whether anything
// connected to it.
class Trap {
 public:
  Trap() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    id_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~Trap() { close(fd_); }
  Trap(const Trap&) = delete;
  Trap& operator=(const Trap&) = delete;

  const std::string& id() const { return id_; }  // as a server id: "127.0.0.1:port"
  bool Connected() const { return accept(fd_, nullptr, nullptr) >= 0; }

 private:
  const int fd_;
  std::string id_;
};

}  // namespace sessionserver::client

#endif  // SESSIONSERVER_TESTS_BLACKBOX_CLIENT_TEST_UTIL_H_
