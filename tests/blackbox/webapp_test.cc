// The example web app (examples/webapp) as a person or script meets it: a real redis-server, two
// session_server processes on it, two session_webapp processes sharing one cookie key file, all
// on free loopback ports, driven over HTTP with one cookie jar (one browser). A cart filled
// through both instances holds every item in order; sign-in gives a new session id (the old
// cookie is signed out); sign-out ends the session for every cookie that named it; bad input is
// refused with 400, and a session store that is gone gives 503 while the app keeps serving.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver {
namespace {

// One browser: an HTTP client whose cookie jar holds the app's session cookie across requests
// to any instance. Redirects are not followed (tests look at the 303).
class Browser {
 public:
  struct Reply {
    int status = 0;  // 0: no answer (error says why)
    std::string body, content_type, location, set_cookie, error;
  };

  Reply Get(int port, const std::string& path) {
    httplib::Client c = Client(port);
    return Finish(c.Get(path.c_str(), Headers()));
  }
  Reply Post(int port, const std::string& path, const httplib::Params& form = {}) {
    httplib::Client c = Client(port);
    return Finish(c.Post(path.c_str(), Headers(), form));
  }

  const std::string& cookie() const { return cookie_; }  // empty: none
  void set_cookie(std::string value) { cookie_ = std::move(value); }

 private:
  static httplib::Client Client(int port) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(20);
    return c;
  }
  httplib::Headers Headers() const {
    if (cookie_.empty()) return {};
    return {{"Cookie", "ss_session=" + cookie_}};
  }
  Reply Finish(const httplib::Result& r) {
    Reply out;
    if (!r) {
      out.error = httplib::to_string(r.error());
      return out;
    }
    out.status = r->status;
    out.body = r->body;
    out.content_type = r->get_header_value("Content-Type");
    out.location = r->get_header_value("Location");
    out.set_cookie = r->get_header_value("Set-Cookie");
    // "ss_session=<value>; Path=/; ...": a value, or an empty one with Max-Age=0 to forget it.
    const std::string prefix = "ss_session=";
    if (out.set_cookie.rfind(prefix, 0) == 0) {
      const size_t end = out.set_cookie.find(';');
      cookie_ = out.set_cookie.substr(prefix.size(), end - prefix.size());
      if (out.set_cookie.find("Max-Age=0") != std::string::npos) cookie_.clear();
    }
    return out;
  }

  std::string cookie_;
};

std::string CartJson(const std::string& user, const std::vector<std::string>& json_items) {
  std::string out = "{\"user\":\"" + user + "\",\"items\":[";
  for (size_t i = 0; i < json_items.size(); ++i) out += (i ? "," : "") + json_items[i];
  return out + "]}\n";
}

std::string ItemsJson(const std::vector<std::string>& json_items, size_t n) {
  std::string out = "{\"items\":[";
  for (size_t i = 0; i < n; ++i) out += (i ? "," : "") + json_items[i];
  return out + "]}\n";
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class WebappTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start()) << "redis-server did not start";
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(servers_[i].Start({"--redis=127.0.0.1:" + std::to_string(redis_.port()),
                                     "--data_dir=" + dir_.path() + "/server" + std::to_string(i)}));
    }
  }

  // Flags of a web app instance: the fleet, the shared key file, plain-HTTP cookies.
  std::vector<std::string> WebappFlags() const {
    return {"--servers=127.0.0.1:" + std::to_string(servers_[0].port()) +
                ",127.0.0.1:" + std::to_string(servers_[1].port()),
            "--cookie_key_file=" + key_file_, "--insecure_cookies"};
  }

  RedisServer redis_;
  TempDir dir_{"ss-webapp"};
  const std::string key_file_ = dir_.path() + "/cookie.keys";
  ServerProcess servers_[2];
  ServerProcess a_{SESSION_WEBAPP_BINARY};
  ServerProcess b_{SESSION_WEBAPP_BINARY};
};

// Items with characters that need escaping in JSON, and their JSON literals.
const std::vector<std::string> kItems = {
    "apple", "Tea \"Earl Grey\" \\ <hot> & 'fresh'", "caf\xc3\xa9 \xe2\x98\x95", "bread", "milk",
    "eggs"};
const std::vector<std::string> kItemsJson = {"\"apple\"",
                                             "\"Tea \\\"Earl Grey\\\" \\\\ <hot> & 'fresh'\"",
                                             "\"caf\xc3\xa9 \xe2\x98\x95\"",
                                             "\"bread\"",
                                             "\"milk\"",
                                             "\"eggs\""};

TEST_F(WebappTest, CartFollowsTheUserAcrossInstances) {
  // The first instance creates the key file, the second reads it. (Started from this thread:
  // ServerProcess's children die with the thread that forked them.)
  ASSERT_TRUE(a_.Start(WebappFlags()));
  ASSERT_TRUE(b_.Start(WebappFlags()));
  struct stat st {};
  ASSERT_EQ(stat(key_file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const int a = a_.port(), b = b_.port();

  Browser browser;
  Browser::Reply r = browser.Get(a, "/api/cart");
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, CartJson("", {}));
  EXPECT_TRUE(Contains(r.set_cookie, "HttpOnly")) << r.set_cookie;
  EXPECT_TRUE(Contains(r.set_cookie, "SameSite=Lax")) << r.set_cookie;
  EXPECT_FALSE(Contains(r.set_cookie, "Secure")) << "--insecure_cookies: " << r.set_cookie;
  const std::string before_login = browser.cookie();
  ASSERT_FALSE(before_login.empty());

  r = browser.Post(a, "/api/login", {{"user", "alice"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"user\":\"alice\"}\n");
  ASSERT_FALSE(browser.cookie().empty());

  for (size_t i = 0; i < kItems.size(); ++i) {
    const int port = i % 2 == 0 ? a : b;
    r = browser.Post(port, "/api/cart/add", {{"item", kItems[i]}});
    ASSERT_EQ(r.status, 200) << "item " << i << ": " << r.error << r.body;
    EXPECT_EQ(r.body, ItemsJson(kItemsJson, i + 1));
  }
  r = browser.Get(b, "/api/cart");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, CartJson("alice", kItemsJson));
  r = browser.Get(a, "/api/cart");
  EXPECT_EQ(r.body, CartJson("alice", kItemsJson));

  // Sign-in moved the session to a fresh id: the cookie from before it is not signed in.
  Browser planted;
  planted.set_cookie(before_login);
  r = planted.Get(b, "/api/cart");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, CartJson("", {}));

  const std::string signed_in = browser.cookie();
  r = browser.Post(a, "/api/logout");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"ok\":true}\n");
  EXPECT_TRUE(Contains(r.set_cookie, "Max-Age=0")) << r.set_cookie;
  EXPECT_TRUE(browser.cookie().empty());
  r = browser.Get(b, "/api/cart");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, CartJson("", {}));

  // Sign-out is on the servers, not just in this browser: the old cookie is signed out too.
  Browser replay;
  replay.set_cookie(signed_in);
  r = replay.Get(a, "/api/cart");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, CartJson("", {}));
}

TEST_F(WebappTest, PagesEscapeInputAndRedirectAfterPost) {
  ASSERT_TRUE(a_.Start(WebappFlags()));
  const int a = a_.port();
  Browser browser;

  Browser::Reply r = browser.Get(a, "/");
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(Contains(r.body, "action=\"/login\"")) << r.body;

  r = browser.Post(a, "/login", {{"user", "<script>alert(1)</script>"}});
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(r.location, "/");
  r = browser.Get(a, "/");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;")) << r.body;
  EXPECT_FALSE(Contains(r.body, "<script>")) << r.body;
  EXPECT_FALSE(Contains(r.body, "action=\"/login\"")) << "signed in: no sign-in form";

  r = browser.Post(a, "/cart/add", {{"item", "<b>bold</b> & \"q\" 'x'"}});
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(r.location, "/cart");
  r = browser.Get(a, "/cart");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(Contains(r.body, "<li>&lt;b&gt;bold&lt;/b&gt; &amp; &quot;q&quot; &#39;x&#39;</li>"))
      << r.body;
  EXPECT_TRUE(Contains(r.body, "Cart (1)")) << r.body;

  r = browser.Post(a, "/logout");
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(r.location, "/");
  EXPECT_TRUE(browser.cookie().empty());
  r = browser.Get(a, "/");
  EXPECT_TRUE(Contains(r.body, "action=\"/login\"")) << r.body;

  // A bad form field gets an HTML page; unknown paths and methods their codes.
  r = browser.Post(a, "/login", {{"user", ""}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(browser.Get(a, "/nope").status, 404);
  EXPECT_EQ(browser.Get(a, "/logout").status, 405);
  EXPECT_EQ(browser.Post(a, "/cart").status, 405);

  // SIGTERM: a clean exit.
  const int status = a_.Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(WebappTest, RefusesInputOutsideTheLimits) {
  ASSERT_TRUE(a_.Start(WebappFlags()));
  const int a = a_.port();
  Browser browser;
  const std::string e_acute = "\xc3\xa9";

  for (const std::string& bad :
       {std::string(), std::string(65, 'x'), std::string("a\x01z"), std::string("a\nb"),
        std::string("\xff"), std::string("\xc0\xaf")}) {
    Browser::Reply r = browser.Post(a, "/api/login", {{"user", bad}});
    EXPECT_EQ(r.status, 400) << "user \"" << bad << "\": " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
  }
  EXPECT_EQ(browser.Post(a, "/api/login").status, 400) << "no field";
  std::string user;
  for (int i = 0; i < 64; ++i) user += e_acute;  // 64 characters, 128 bytes
  Browser::Reply r = browser.Post(a, "/api/login", {{"user", user}});
  ASSERT_EQ(r.status, 200) << r.body;

  EXPECT_EQ(browser.Post(a, "/api/cart/add", {{"item", ""}}).status, 400);
  EXPECT_EQ(browser.Post(a, "/api/cart/add", {{"item", std::string(201, 'i')}}).status, 400);
  r = browser.Post(a, "/api/cart/add", {{"item", std::string(200, 'i')}});
  ASSERT_EQ(r.status, 200) << r.body;
  for (int i = 1; i < 100; ++i) {
    r = browser.Post(a, "/api/cart/add", {{"item", "item " + std::to_string(i)}});
    ASSERT_EQ(r.status, 200) << "item " << i << ": " << r.body;
  }
  // The 101st is refused, and the refusal let go of the session's lock: the next request is not
  // kept waiting for it (that would end in 503 after the client's lock wait).
  for (int attempt = 0; attempt < 2; ++attempt) {
    r = browser.Post(a, "/api/cart/add", {{"item", "one too many"}});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_TRUE(Contains(r.body, "full")) << r.body;
  }
  r = browser.Get(a, "/api/cart");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(Contains(r.body, "\"item 99\"]}")) << r.body;
  EXPECT_FALSE(Contains(r.body, "one too many"));

  EXPECT_EQ(browser.Get(a, "/api/nope").status, 404);
  r = browser.Get(a, "/api/login");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.content_type, "application/json");
}

TEST_F(WebappTest, SessionStoreGoneGives503AndTheAppKeepsServing) {
  ASSERT_TRUE(a_.Start(WebappFlags()));
  const int a = a_.port();
  Browser browser;
  ASSERT_EQ(browser.Post(a, "/api/login", {{"user", "carol"}}).status, 200);

  servers_[0].Stop(SIGKILL);
  servers_[1].Stop(SIGKILL);
  Browser::Reply r = browser.Get(a, "/api/cart");
  EXPECT_EQ(r.status, 503) << r.error << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(Contains(r.body, "\"error\"")) << r.body;
  r = browser.Post(a, "/api/cart/add", {{"item", "x"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(browser.Post(a, "/api/login", {{"user", "dave"}}).status, 503);
  EXPECT_EQ(browser.Post(a, "/api/logout").status, 503);
  r = browser.Get(a, "/");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  // No cookie and a read-only page: the client starts an anonymous session without touching the
  // fleet (nothing to store yet), so the page still renders.
  r = Browser().Get(a, "/cart");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(a_.Running());
  EXPECT_EQ(Browser().Get(a, "/nope").status, 404) << "still serving";
}

}  // namespace
}  // namespace sessionserver
