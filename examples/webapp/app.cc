#include "examples/webapp/app.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <utility>

#include "session_client/session_id.h"

namespace sessionserver::webapp {
namespace {

using client::Session;

constexpr char kHtml[] = "text/html; charset=utf-8";
constexpr char kJson[] = "application/json";

// ---- Responses ----

Response MakeResponse(int status, const char* content_type, std::string body) {
  Response r;
  r.status = status;
  r.content_type = content_type;
  r.body = std::move(body);
  r.headers = {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}};
  return r;
}

Response Json(int status, std::string body) {
  return MakeResponse(status, kJson, std::move(body) + "\n");
}

std::string ItemsJson(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += JsonString(items[i]);
  }
  return out + "]";
}

// What the header of every page shows.
struct Nav {
  std::string user;  // empty: signed out
  size_t items = 0;
};

// A whole page; `main_html` is already escaped.
Response Html(int status, std::string_view title, const Nav& nav, std::string_view main_html) {
  std::string b;
  b += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  b += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  b += "<title>" + HtmlEscape(title) + " - SessionServer shop</title><style>";
  b += "body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}";
  b += "header{border-bottom:1px solid #ccc;padding-bottom:.5em;margin-bottom:1em}";
  b += "header form{display:inline}.err{color:#a00}</style></head><body>\n<header>";
  b += "<a href=\"/\">Home</a> | <a href=\"/cart\">Cart (" + std::to_string(nav.items) + ")</a> | ";
  if (nav.user.empty()) {
    b += "not signed in";
  } else {
    b += "signed in as <b>" + HtmlEscape(nav.user) + "</b> ";
    b += "<form method=\"post\" action=\"/logout\"><button>Sign out</button></form>";
  }
  b += "</header>\n<main>\n";
  b += main_html;
  b += "</main>\n</body></html>\n";
  Response r = MakeResponse(status, kHtml, std::move(b));
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                         "base-uri 'none'; frame-ancestors 'none'");
  return r;
}

Response ErrorPage(int status, std::string_view title, std::string_view message) {
  return Html(status, title, Nav{},
              "<h1>" + HtmlEscape(title) + "</h1>\n<p class=\"err\">" + HtmlEscape(message) +
                  "</p>\n<p><a href=\"/\">Back to the shop</a></p>\n");
}

Response Error(bool api, int status, std::string_view title, std::string_view message) {
  if (api) return Json(status, "{\"error\":" + JsonString(message) + "}");
  return ErrorPage(status, title, message);
}

Response BadRequest(bool api, std::string_view message) {
  return Error(api, 400, "Bad request", message);
}

// The session store failed: the person or script should try again; the log says why.
Response Unavailable(bool api, const char* step, const Status& status) {
  std::fprintf(stderr, "session_webapp: %s failed: %s\n", step, status.ToString().c_str());
  Response r =
      Error(api, 503, "Try again", "The session store is unavailable right now; please try again.");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

Response Redirect(std::string location) {
  Response r = MakeResponse(303, kHtml, "");
  r.headers.emplace_back("Location", std::move(location));
  return r;
}

// ---- Requests and sessions ----

std::string Field(const Request& r, std::string_view name) {
  auto it = r.form.find(name);
  return it == r.form.end() ? std::string() : it->second;
}

std::vector<std::string> ItemsOf(const Session& s) {
  return DecodeItems(s.Get("items").value_or(""));
}

// Releases a session's lock, without saving, unless it was committed or destroyed first: every
// path out of a handler that loaded exclusively lets go of the lock.
class LockGuard {
 public:
  LockGuard(client::SessionClient* client, Session* session) : client_(client), s_(session) {}
  ~LockGuard() {
    if (s_ == nullptr || !s_->exclusive()) return;
    Status st = client_->Abandon(s_);
    if (!st.ok())
      std::fprintf(stderr, "session_webapp: abandon failed: %s\n", st.ToString().c_str());
  }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  client::SessionClient* const client_;
  Session* const s_;
};

// The request's route.
enum class Page { kHome, kCart, kLogin, kAdd, kLogout };
struct Route {
  std::string_view path;
  bool post;  // else GET (and HEAD)
  bool api;
  Page page;
};
constexpr Route kRoutes[] = {
    {"/", false, false, Page::kHome},           {"/cart", false, false, Page::kCart},
    {"/login", true, false, Page::kLogin},      {"/cart/add", true, false, Page::kAdd},
    {"/logout", true, false, Page::kLogout},    {"/api/cart", false, true, Page::kCart},
    {"/api/login", true, true, Page::kLogin},   {"/api/cart/add", true, true, Page::kAdd},
    {"/api/logout", true, true, Page::kLogout},
};

// Decodes one UTF-8 code point at text[*i], advancing *i. False on an invalid sequence
// (truncated, overlong, surrogate, above U+10FFFF).
bool NextCodePoint(std::string_view text, size_t* i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(*i);
  size_t len;
  uint32_t min;
  if (b0 < 0x80) {
    *cp = b0;
    *i += 1;
    return true;
  } else if ((b0 & 0xe0) == 0xc0) {
    len = 2, min = 0x80, *cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, min = 0x800, *cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, min = 0x10000, *cp = b0 & 0x07;
  } else {
    return false;
  }
  if (text.size() - *i < len) return false;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(*i + k) & 0xc0) != 0x80) return false;
    *cp = (*cp << 6) | (byte(*i + k) & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return false;
  *i += len;
  return true;
}

}  // namespace

// ---- Text ----

bool ValidText(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    if (!NextCodePoint(text, &i, &cp)) return false;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;
    if (++chars > max_chars) return false;
  }
  return chars > 0;
}

std::string EncodeItems(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += '\n';
    out += items[i];
  }
  return out;
}

std::vector<std::string> DecodeItems(std::string_view encoded) {
  std::vector<std::string> items;
  while (!encoded.empty()) {
    const size_t nl = encoded.find('\n');
    const std::string_view item = encoded.substr(0, nl);
    if (!item.empty()) items.emplace_back(item);
    if (nl == std::string_view::npos) break;
    encoded.remove_prefix(nl + 1);
  }
  return items;
}

std::string Response::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

// ---- Handlers ----

WebApp::WebApp(client::SessionClient* client) : client_(client) {}

Response WebApp::Handle(const Request& r) const {
  const bool get = r.method == "GET" || r.method == "HEAD";
  const bool post = r.method == "POST";
  for (const Route& route : kRoutes) {
    if (route.path != r.path) continue;
    if (route.post ? !post : !get) {
      Response resp = Error(route.api, 405, "Method not allowed", "Method not allowed.");
      resp.headers.emplace_back("Allow", route.post ? "POST" : "GET, HEAD");
      return resp;
    }
    switch (route.page) {
      case Page::kHome:
        return Home(r);
      case Page::kCart:
        return Cart(r, route.api);
      case Page::kLogin:
        return Login(r, route.api);
      case Page::kAdd:
        return AddItem(r, route.api);
      case Page::kLogout:
        return Logout(r, route.api);
    }
  }
  return Error(r.path.rfind("/api/", 0) == 0, 404, "Not found", "No such page.");
}

struct WebApp::View {
  std::string user;  // empty: signed out
  std::vector<std::string> items;
};

Status WebApp::Read(const Request& r, View* view, std::string* cookie) const {
  std::unique_ptr<Session> s;
  Status st = client_->Load(client_->CookieFromHeader(r.cookie_header), /*exclusive=*/false, &s);
  if (!st.ok()) return st;
  view->user = s->Get("user").value_or("");
  view->items = ItemsOf(*s);
  return client_->Commit(s.get(), cookie);  // saves nothing here; returns the cookie
}

Response WebApp::Home(const Request& r) const {
  View view;
  std::string cookie;
  Status st = Read(r, &view, &cookie);
  if (!st.ok()) return Unavailable(/*api=*/false, "read", st);
  std::string m;
  if (view.user.empty()) {
    m += "<h1>Welcome</h1>\n<p>Sign in to keep your cart; anything already in it comes with "
         "you.</p>\n<form method=\"post\" action=\"/login\"><label>Name <input name=\"user\" "
         "required maxlength=\"" +
         std::to_string(kMaxUserChars) + "\" autofocus></label> <button>Sign in</button></form>\n";
  } else {
    m += "<h1>Hello, " + HtmlEscape(view.user) + "</h1>\n<p>Your cart has " +
         std::to_string(view.items.size()) + (view.items.size() == 1 ? " item" : " items") +
         ". <a href=\"/cart\">Go to the cart</a></p>\n";
  }
  Response resp = Html(200, "Home", Nav{view.user, view.items.size()}, m);
  resp.headers.emplace_back("Set-Cookie", client_->SetCookieHeader(cookie));
  return resp;
}

Response WebApp::Cart(const Request& r, bool api) const {
  View view;
  std::string cookie;
  Status st = Read(r, &view, &cookie);
  if (!st.ok()) return Unavailable(api, "read", st);
  Response resp;
  if (api) {
    resp = Json(200,
                "{\"user\":" + JsonString(view.user) + ",\"items\":" + ItemsJson(view.items) + "}");
  } else {
    std::string m = "<h1>Your cart</h1>\n";
    if (view.items.empty()) {
      m += "<p>The cart is empty.</p>\n";
    } else {
      m += "<ol>\n";
      for (const std::string& item : view.items) m += "<li>" + HtmlEscape(item) + "</li>\n";
      m += "</ol>\n";
    }
    if (view.items.size() < kMaxItems) {
      m += "<form method=\"post\" action=\"/cart/add\"><label>Item <input name=\"item\" required "
           "maxlength=\"" +
           std::to_string(kMaxItemChars) +
           "\" autofocus></label> <button>Add to cart</button></form>\n";
    } else {
      m += "<p>The cart is full (" + std::to_string(kMaxItems) + " items).</p>\n";
    }
    resp = Html(200, "Cart", Nav{view.user, view.items.size()}, m);
  }
  resp.headers.emplace_back("Set-Cookie", client_->SetCookieHeader(cookie));
  return resp;
}

Response WebApp::Login(const Request& r, bool api) const {
  const std::string user = Field(r, "user");
  if (!ValidText(user, kMaxUserChars)) {
    return BadRequest(api, "The user name must be 1 to " + std::to_string(kMaxUserChars) +
                               " characters, without control characters.");
  }
  std::unique_ptr<Session> s;
  Status st = client_->Load(client_->CookieFromHeader(r.cookie_header), /*exclusive=*/true, &s);
  if (!st.ok()) return Unavailable(api, "load", st);
  LockGuard guard(client_, s.get());
  // A new id before the session gains a user: whoever knew the old id (it may have been planted
  // in this browser) learns nothing that signs them in.
  st = client_->Regenerate(s.get());
  if (!st.ok()) return Unavailable(api, "regenerate", st);
  s->Set("user", user);
  std::string cookie;
  st = client_->Commit(s.get(), &cookie);
  if (!st.ok()) return Unavailable(api, "commit", st);

  Response resp = api ? Json(200, "{\"user\":" + JsonString(user) + "}") : Redirect("/");
  resp.headers.emplace_back("Set-Cookie", client_->SetCookieHeader(cookie));
  return resp;
}

Response WebApp::AddItem(const Request& r, bool api) const {
  const std::string item = Field(r, "item");
  if (!ValidText(item, kMaxItemChars)) {
    return BadRequest(api, "An item must be 1 to " + std::to_string(kMaxItemChars) +
                               " characters, without control characters.");
  }
  std::unique_ptr<Session> s;
  Status st = client_->Load(client_->CookieFromHeader(r.cookie_header), /*exclusive=*/true, &s);
  if (!st.ok()) return Unavailable(api, "load", st);
  LockGuard guard(client_, s.get());
  std::vector<std::string> items = ItemsOf(*s);
  if (items.size() >= kMaxItems) {
    return BadRequest(api, "The cart is full (" + std::to_string(kMaxItems) + " items).");
  }
  items.push_back(item);
  s->Set("items", EncodeItems(items));
  std::string cookie;
  st = client_->Commit(s.get(), &cookie);
  if (!st.ok()) return Unavailable(api, "commit", st);

  Response resp = api ? Json(200, "{\"items\":" + ItemsJson(items) + "}") : Redirect("/cart");
  resp.headers.emplace_back("Set-Cookie", client_->SetCookieHeader(cookie));
  return resp;
}

Response WebApp::Logout(const Request& r, bool api) const {
  std::unique_ptr<Session> s;
  Status st = client_->Load(client_->CookieFromHeader(r.cookie_header), /*exclusive=*/true, &s);
  if (!st.ok()) return Unavailable(api, "load", st);
  LockGuard guard(client_, s.get());
  std::string cookie;
  st = client_->Destroy(s.get(), &cookie);
  if (!st.ok()) return Unavailable(api, "destroy", st);

  Response resp = api ? Json(200, "{\"ok\":true}") : Redirect("/");
  resp.headers.emplace_back("Set-Cookie", client_->SetCookieHeader(cookie));
  return resp;
}

// ---- HTTP ----

void WebApp::Install(httplib::Server* server) const {
  server->set_payload_max_length(kMaxBodyBytes);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    Request r;
    r.method = req.method;
    r.path = req.path;
    r.cookie_header = req.get_header_value("Cookie");
    for (const auto& [name, value] : req.params) r.form.emplace(name, value);  // keeps the first
    Response out = Handle(r);
    res.status = out.status;
    for (const auto& [name, value] : out.headers) res.set_header(name, value);
    res.set_content(out.body, out.content_type);
  };
  server->Get(".*", handler);
  server->Post(".*", handler);
  server->Put(".*", handler);
  server->Delete(".*", handler);
  server->Patch(".*", handler);
  server->Options(".*", handler);
  server->set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        std::fprintf(stderr, "session_webapp: %s %s threw: %s\n", req.method.c_str(),
                     req.path.c_str(), what.c_str());
        res.status = 500;
        res.set_content("internal error\n", "text/plain");
      });
}

// ---- The key file ----

namespace {

// Reads and parses the key file; *missing if there is none.
Status ReadKeyFile(const std::string& path, client::CookieKeySet* keys, bool* missing) {
  *missing = false;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return Status::OK();
    }
    return Status::IOError(path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
    std::fprintf(stderr, "session_webapp: warning: %s is readable by others (mode %03o)\n",
                 path.c_str(), static_cast<unsigned>(st.st_mode & 0777));
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 && text.size() < (1 << 20)) {
    text.append(buf, static_cast<size_t>(n));
  }
  const int read_errno = errno;
  close(fd);
  if (n < 0) return Status::IOError(path + ": " + std::strerror(read_errno));
  Status s = client::CookieKeySet::Parse(text, keys);
  if (!s.ok()) return Status::InvalidArgument(path + ": " + s.message());
  return Status::OK();
}

Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError(std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

// Writes a fresh key set to a private temporary file and links it to `path`; if another process
// linked first, its file stays (link never replaces) and *created is false.
Status CreateKeyFile(const std::string& path, bool* created) {
  *created = false;
  const std::string tmp = path + ".tmp." + client::NewSessionId();
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError(tmp + ": " + std::strerror(errno));
  Status s = WriteAll(fd, client::CookieKeySet::Generate().Serialize());
  if (s.ok() && fsync(fd) != 0) s = Status::IOError(std::strerror(errno));
  close(fd);
  if (s.ok()) {
    if (link(tmp.c_str(), path.c_str()) == 0) {
      *created = true;
    } else if (errno != EEXIST) {
      s = Status::IOError(std::strerror(errno));
    }
  }
  unlink(tmp.c_str());
  if (!s.ok()) return Status::IOError(path + ": cannot create: " + s.message());
  // Make the new name durable (best effort: the directory may not be ours to open).
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::OK();
}

}  // namespace

Status LoadOrCreateKeyFile(const std::string& path, client::CookieKeySet* keys) {
  bool missing = false;
  Status s = ReadKeyFile(path, keys, &missing);
  if (!s.ok() || !missing) return s;
  bool created = false;
  s = CreateKeyFile(path, &created);
  if (!s.ok()) return s;
  if (created) std::fprintf(stderr, "session_webapp: created cookie key file %s\n", path.c_str());
  s = ReadKeyFile(path, keys, &missing);  // ours, or the one another instance linked first
  if (s.ok() && missing) return Status::IOError(path + ": vanished after creation");
  return s;
}

}  // namespace sessionserver::webapp
