// The example web app's handlers (examples/webapp/app.h) without sockets: a fake SessionClient
// records the calls each request makes (shared or exclusive load, Regenerate before the user is
// set, Commit, Destroy) and fails any one step on demand; plus the text helpers (escaping, UTF-8
// validation, the items encoding) and the key file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "examples/webapp/app.h"
#include "tests/temp_dir.h"

namespace sessionserver::webapp {
namespace {

using client::Session;
using Attrs = std::map<std::string, std::string, std::less<>>;

// Sessions are keyed by their cookie value ("c1", "c2", ...); the fake keeps no locks.
class FakeClient : public client::SessionClient {
 public:
  std::map<std::string, Attrs> store;
  std::vector<std::string> calls;
  std::string fail;  // the call ("load", "commit", "regenerate", "destroy") that fails

  Status Load(std::string_view cookie, bool exclusive, std::unique_ptr<Session>* out) override {
    calls.push_back(exclusive ? "load_exclusive" : "load_shared");
    if (fail == "load") return Status::Unavailable("fake");
    std::string key(cookie);
    if (store.count(key) == 0) {
      key = Fresh();
      store[key] = {};
    }
    auto s = std::make_unique<Session>();
    for (const auto& [name, value] : store[key]) s->Set(name, value);
    keys_[s.get()] = key;
    *out = std::move(s);
    return Status::OK();
  }
  Status Commit(Session* s, std::string* cookie) override {
    calls.push_back("commit");
    if (fail == "commit") return Status::Unavailable("fake");
    store[keys_[s]] = s->attributes();
    *cookie = keys_[s];
    return Status::OK();
  }
  Status Abandon(Session*) override {
    calls.push_back("abandon");
    return Status::OK();
  }
  Status Regenerate(Session* s) override {
    calls.push_back("regenerate(user=" + s->Get("user").value_or("") + ")");
    if (fail == "regenerate") return Status::Unavailable("fake");
    const std::string fresh = Fresh();
    store[fresh] = store[keys_[s]];
    store.erase(keys_[s]);
    keys_[s] = fresh;
    return Status::OK();
  }
  Status Destroy(Session* s, std::string* cookie) override {
    calls.push_back("destroy");
    if (fail == "destroy") return Status::Unavailable("fake");
    store.erase(keys_[s]);
    cookie->clear();
    return Status::OK();
  }
  std::string SetCookieHeader(std::string_view cookie) const override {
    return "ss=" + std::string(cookie);
  }
  std::string CookieFromHeader(std::string_view header) const override {
    return header.rfind("ss=", 0) == 0 ? std::string(header.substr(3)) : "";
  }
  client::ClientStats GetStats() const override { return {}; }

 private:
  std::string Fresh() { return "c" + std::to_string(++ids_); }
  std::map<const Session*, std::string> keys_;
  int ids_ = 0;
};

class WebAppTest : public ::testing::Test {
 protected:
  Response Call(const std::string& method, const std::string& path, const std::string& cookie = "",
                std::map<std::string, std::string, std::less<>> form = {}) {
    fake_.calls.clear();
    Request r{method, path, cookie.empty() ? "" : "ss=" + cookie, std::move(form)};
    return app_.Handle(r);
  }
  std::vector<std::string> Calls(std::initializer_list<std::string> c) { return c; }

  FakeClient fake_;
  WebApp app_{&fake_};
};

TEST_F(WebAppTest, ReadsLoadSharedAndCommitForTheCookie) {
  Response r = Call("GET", "/api/cart");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"user\":\"\",\"items\":[]}\n");
  EXPECT_EQ(r.Header("Set-Cookie"), "ss=c1");
  EXPECT_EQ(r.Header("Cache-Control"), "no-store");
  EXPECT_EQ(fake_.calls, Calls({"load_shared", "commit"}));
  for (const char* path : {"/", "/cart"}) {
    r = Call("GET", path, "c1");
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(fake_.calls, Calls({"load_shared", "commit"})) << path;
  }
  EXPECT_EQ(Call("HEAD", "/cart", "c1").status, 200);
}

TEST_F(WebAppTest, SignInRegeneratesBeforeSettingTheUser) {
  fake_.store["c7"] = {{"items", "tea"}, {"user", "mallory"}};
  Response r = Call("POST", "/api/login", "c7", {{"user", "alice"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"user\":\"alice\"}\n");
  EXPECT_EQ(fake_.calls, Calls({"load_exclusive", "regenerate(user=mallory)", "commit"}));
  EXPECT_EQ(fake_.store.count("c7"), 0u);
  EXPECT_EQ(r.Header("Set-Cookie"), "ss=c1");
  EXPECT_EQ(fake_.store["c1"],
            (Attrs{{"items", "tea"}, {"user", "alice"}}));  // the cart came along

  r = Call("POST", "/login", "c1", {{"user", "bob"}});
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.Header("Location"), "/");
  EXPECT_FALSE(r.Header("Set-Cookie").empty());
}

TEST_F(WebAppTest, AddItemAppendsInOrder) {
  Response r = Call("POST", "/api/cart/add", "", {{"item", "a \"b\""}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"items\":[\"a \\\"b\\\"\"]}\n");
  EXPECT_EQ(fake_.calls, Calls({"load_exclusive", "commit"}));
  r = Call("POST", "/cart/add", "c1", {{"item", "c"}});
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.Header("Location"), "/cart");
  EXPECT_EQ(fake_.store["c1"]["items"], "a \"b\"\nc");
  r = Call("GET", "/api/cart", "c1");
  EXPECT_EQ(r.body, "{\"user\":\"\",\"items\":[\"a \\\"b\\\"\",\"c\"]}\n");
}

TEST_F(WebAppTest, CartHoldsAtMostMaxItems) {
  std::vector<std::string> items(kMaxItems, "x");
  fake_.store["c9"] = {{"items", EncodeItems(items)}};
  Response r = Call("POST", "/api/cart/add", "c9", {{"item", "y"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(fake_.calls, Calls({"load_exclusive"}));  // no commit (a held lock would be released)
  EXPECT_EQ(DecodeItems(fake_.store["c9"]["items"]).size(), kMaxItems);
}

TEST_F(WebAppTest, SignOutDestroysAndClearsTheCookie) {
  fake_.store["c5"] = {{"user", "alice"}};
  Response r = Call("POST", "/api/logout", "c5");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"ok\":true}\n");
  EXPECT_EQ(r.Header("Set-Cookie"), "ss=");
  EXPECT_EQ(fake_.calls, Calls({"load_exclusive", "destroy"}));
  EXPECT_EQ(fake_.store.count("c5"), 0u);
  r = Call("POST", "/logout", "");
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.Header("Location"), "/");
}

TEST_F(WebAppTest, BadInputTouchesNoSession) {
  const std::map<std::string, std::string, std::less<>> none;
  for (const auto& [path, form] :
       std::vector<std::pair<std::string, std::map<std::string, std::string, std::less<>>>>{
           {"/api/login", none},
           {"/api/login", {{"user", std::string(kMaxUserChars + 1, 'u')}}},
           {"/login", {{"user", "tab\there"}}},
           {"/api/cart/add", {{"item", ""}}},
           {"/cart/add", {{"item", std::string(kMaxItemChars + 1, 'i')}}}}) {
    Response r = Call("POST", path, "", form);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.content_type,
              path.rfind("/api/", 0) == 0 ? "application/json" : "text/html; charset=utf-8");
    EXPECT_TRUE(fake_.calls.empty()) << path;
  }
}

TEST_F(WebAppTest, StoreErrorsGive503) {
  fake_.store["c3"] = {{"user", "alice"}};
  const struct {
    std::string fail, method, path;
    std::map<std::string, std::string, std::less<>> form;
  } cases[] = {
      {"load", "GET", "/api/cart", {}},
      {"commit", "GET", "/api/cart", {}},
      {"load", "GET", "/", {}},
      {"commit", "GET", "/cart", {}},
      {"load", "POST", "/api/login", {{"user", "u"}}},
      {"regenerate", "POST", "/api/login", {{"user", "u"}}},
      {"commit", "POST", "/login", {{"user", "u"}}},
      {"commit", "POST", "/api/cart/add", {{"item", "i"}}},
      {"destroy", "POST", "/api/logout", {}},
  };
  for (const auto& c : cases) {
    fake_.fail = c.fail;
    Response r = Call(c.method, c.path, "c3", c.form);
    EXPECT_EQ(r.status, 503) << c.fail << " " << c.path;
    EXPECT_EQ(r.Header("Retry-After"), "1");
    EXPECT_TRUE(r.Header("Set-Cookie").empty()) << c.path;
    if (c.path.rfind("/api/", 0) == 0) {
      EXPECT_EQ(r.content_type, "application/json");
      EXPECT_EQ(r.body.rfind("{\"error\":", 0), 0u) << r.body;
    } else {
      EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    }
  }
}

TEST_F(WebAppTest, UnknownPathsAndMethods) {
  EXPECT_EQ(Call("GET", "/nope").status, 404);
  EXPECT_EQ(Call("GET", "/api/nope").content_type, "application/json");
  Response r = Call("GET", "/api/login");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "POST");
  r = Call("DELETE", "/cart");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "GET, HEAD");
  EXPECT_TRUE(fake_.calls.empty());
}

TEST(WebAppTextTest, HtmlEscape) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(WebAppTextTest, JsonString) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString(std::string("\n\t\r\x01\x1f", 5)), "\"\\n\\t\\r\\u0001\\u001f\"");
  EXPECT_EQ(JsonString("</script> \xe2\x98\x95"), "\"</script> \xe2\x98\x95\"");
}

TEST(WebAppTextTest, ValidText) {
  EXPECT_TRUE(ValidText("a", 1));
  EXPECT_FALSE(ValidText("", 5));
  EXPECT_FALSE(ValidText("ab", 1));
  EXPECT_TRUE(ValidText("\xc3\xa9\xc3\xa9", 2));       // two code points, four bytes
  EXPECT_TRUE(ValidText("\xf0\x9f\x98\x80", 1));       // U+1F600
  EXPECT_FALSE(ValidText("\xc0\xaf", 5));              // overlong '/'
  EXPECT_FALSE(ValidText("\xed\xa0\x80", 5));          // a surrogate
  EXPECT_FALSE(ValidText("\xf4\x90\x80\x80", 5));      // above U+10FFFF
  EXPECT_FALSE(ValidText("\xe2\x98", 5));              // truncated
  EXPECT_FALSE(ValidText("\x80", 5));                  // a lone continuation byte
  EXPECT_FALSE(ValidText("a\nb", 5));                  // C0
  EXPECT_FALSE(ValidText("a\x7f", 5));                 // DEL
  EXPECT_FALSE(ValidText("a\xc2\x85", 5));             // C1 (NEL)
  EXPECT_FALSE(ValidText(std::string("a\0b", 3), 5));  // NUL
  EXPECT_TRUE(ValidText("a b\xc2\xa0", 5));            // spaces are text
}

TEST(WebAppTextTest, ItemsRoundTrip) {
  const std::vector<std::string> items = {"one", "two words", "caf\xc3\xa9"};
  EXPECT_EQ(EncodeItems(items), "one\ntwo words\ncaf\xc3\xa9");
  EXPECT_EQ(DecodeItems(EncodeItems(items)), items);
  EXPECT_TRUE(DecodeItems("").empty());
  EXPECT_TRUE(EncodeItems({}).empty());
  EXPECT_EQ(DecodeItems("a\n\nb\n"), (std::vector<std::string>{"a", "b"}));  // tolerant
}

TEST(WebAppKeyFileTest, CreatedOnceWithMode0600ThenRead) {
  TempDir dir("ss-webapp-keys");
  const std::string path = dir.path() + "/keys";
  client::CookieKeySet first, second;
  ASSERT_TRUE(LoadOrCreateKeyFile(path, &first).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(LoadOrCreateKeyFile(path, &second).ok());
  EXPECT_EQ(first.Serialize(), second.Serialize());
  // Nothing left behind but the file itself.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    entries += !e.is_directory();
  EXPECT_EQ(entries, 1);
}

// Instances started at once on a missing file: one key set wins and every one of them reads it.
TEST(WebAppKeyFileTest, ConcurrentCreatorsAgree) {
  TempDir dir("ss-webapp-keys");
  const std::string path = dir.path() + "/keys";
  constexpr int kThreads = 8;
  std::vector<client::CookieKeySet> keys(kThreads);
  std::vector<Status> status(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { status[i] = LoadOrCreateKeyFile(path, &keys[i]); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(status[i].ok()) << status[i].ToString();
    EXPECT_EQ(keys[i].Serialize(), keys[0].Serialize()) << i;
  }
}

TEST(WebAppKeyFileTest, RefusesAFileThatDoesNotParse) {
  TempDir dir("ss-webapp-keys");
  const std::string path = dir.path() + "/keys";
  std::ofstream(path) << "not a key\n";
  client::CookieKeySet keys;
  Status s = LoadOrCreateKeyFile(path, &keys);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_FALSE(LoadOrCreateKeyFile(dir.path() + "/missing-dir/keys", &keys).ok());
}

}  // namespace
}  // namespace sessionserver::webapp
