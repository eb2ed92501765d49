// WebApp: a small shop that keeps its sessions in a SessionServer fleet through session_client.
// Pages for people (a sign-in form, a cart) and a JSON API for scripts:
//
//   GET  /                 signed-in user or a sign-in form         (HTML)
//   POST /login            field `user`: sign in, 303 to /          (HTML form)
//   GET  /cart             the cart and an add-item form            (HTML)
//   POST /cart/add         field `item`: 303 to /cart               (HTML form)
//   POST /logout           sign out, 303 to /                       (HTML form)
//   POST /api/login        field `user` -> {"user":"..."}
//   POST /api/cart/add     field `item` -> {"items":[...]}
//   GET  /api/cart         -> {"user":"...","items":[...]}          (user "" when signed out)
//   POST /api/logout       -> {"ok":true}
//
// Every session request: SessionClient::Load (exclusive for POST, shared for GET), then Commit
// (or Destroy on sign-out), and the response carries SetCookieHeader's Set-Cookie. Sign-in calls
// Regenerate before it sets "user" (a session id planted before sign-in is worthless after it).
// A cart may be filled before sign-in; Regenerate carries it over.
//
// Session attributes: "user" (the signed-in name; absent when signed out) and "items" (the cart:
// the items joined with '\n'; absent or empty for an empty cart). Input never contains a control
// character (ValidText), so '\n' cannot occur inside an item.
//
// Answers: 400 for input outside the limits below (the session is not touched, or its lock is
// released unchanged), 404/405 for unknown paths and methods, 503 when the session store fails
// (a Status error from the client: the page or JSON says "try again", the log says why).
// Responses depend on the session, so all of them say Cache-Control: no-store.
//
// Thread-safe: Handle may run on many request threads at once (the SessionClient is).
#ifndef SESSIONSERVER_EXAMPLES_WEBAPP_APP_H_
#define SESSIONSERVER_EXAMPLES_WEBAPP_APP_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "session_client/client.h"
#include "session_client/cookie.h"
#include "util/status.h"
#include "util/text.h"

namespace httplib {
class Server;
}

namespace sessionserver::webapp {

// Limits on input, in Unicode code points of UTF-8 text.
inline constexpr size_t kMaxUserChars = 64;
inline constexpr size_t kMaxItemChars = 200;
inline constexpr size_t kMaxItems = 100;
// Largest request body the HTTP server reads.
inline constexpr size_t kMaxBodyBytes = 64 * 1024;

// A request as the handlers see it, independent of the HTTP library.
struct Request {
  std::string method;         // "GET", "HEAD", "POST", ...
  std::string path;           // without the query string
  std::string cookie_header;  // the Cookie header; empty if none
  // Form fields (urlencoded body and query string); the first value of each name.
  std::map<std::string, std::string, std::less<>> form;
};

struct Response {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Location, Set-Cookie

  // The value of header `name` (exact case), or empty.
  std::string Header(std::string_view name) const;
};

class WebApp {
 public:
  // `client` is not owned and must outlive the WebApp.
  explicit WebApp(client::SessionClient* client);

  Response Handle(const Request& request) const;

  // Routes every GET, HEAD and POST of `server` to Handle and sets the server's body limit.
  void Install(httplib::Server* server) const;

 private:
  struct View;  // what a page shows of a session

  // A shared load of the request's session, then Commit for the cookie to send back.
  Status Read(const Request& r, View* view, std::string* cookie) const;
  Response Home(const Request& r) const;
  Response Cart(const Request& r, bool api) const;
  Response Login(const Request& r, bool api) const;
  Response AddItem(const Request& r, bool api) const;
  Response Logout(const Request& r, bool api) const;

  client::SessionClient* const client_;
};

using sessionserver::HtmlEscape;  // util/text.h
using sessionserver::JsonString;

// Whether `text` is valid UTF-8 of 1..max_chars code points without control characters (C0,
// DEL, C1).
bool ValidText(std::string_view text, size_t max_chars);

// The "items" attribute: items joined with '\n' (empty list: empty string).
std::string EncodeItems(const std::vector<std::string>& items);
std::vector<std::string> DecodeItems(std::string_view encoded);

// Reads the cookie key set from `path` (CookieKeySet text form). If there is no file, creates
// one with CookieKeySet::Generate(), mode 0600, atomically: written to a temporary file, then
// hard-linked into place, so of several instances started at once on the same path exactly one
// key set wins and all of them read it. IOError or InvalidArgument (naming the path) otherwise.
Status LoadOrCreateKeyFile(const std::string& path, client::CookieKeySet* keys);

}  // namespace sessionserver::webapp

#endif  // SESSIONSERVER_EXAMPLES_WEBAPP_APP_H_
