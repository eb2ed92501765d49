// SessionClient: what a web application links to keep its sessions in a SessionServer fleet.
// Shaped around one web request:
//
//   std::unique_ptr<Session> s;
//   Status st = client.Load(cookie_from_request, /*exclusive=*/writes, &s);  // may start a new one
//   s->Set("cart", "...");                                   // or s->raw() for own serialisation
//   std::string cookie;
//   st = client.Commit(s.get(), &cookie);                    // put + release; or Abandon
//   response.add_header("Set-Cookie", client.SetCookieHeader(cookie));
//
// Routing: the cookie (sealed, cookie.h) names the server that owns the session; requests go
// there. When it is down, times out or its circuit breaker is open, the client picks another
// server by rendezvous hashing on the session id; that server restores the session from Redis,
// and the cookie returned by Commit names the new owner. New sessions are placed by rendezvous
// hashing over the healthy servers. The client only ever connects to servers of its membership
// view: a cookie naming anything else means "no affinity". (A request that started on a server
// finishes there, Commit or Abandon, even if that server left the view meanwhile.)
//
// Two data centres (docs/TWO_SITES.md): the view may also hold the other site's servers
// (`remote_servers`, `remote_registry`). New sessions and failovers stay in this site; a cookie
// naming a server of the other site is affinity (one cross-site call), and when it cannot be
// reached or hands the session off the request fails over to this site. When no server of this
// site answers, the other site's servers are tried next, so a user survives the loss of a site.
//
// Locking follows ../shared/SESSION-PROTOCOL.md: an exclusive load that finds the session locked
// waits until `lock_wait_ms` passes, force-releasing a lock older than `request_timeout_ms`. The
// server does the waiting (getWaiting: the load is answered the moment the lock is released);
// a server older than that method is polled every `lock_poll_ms`.
// A new session is created uninitialized and then loaded exclusively, so concurrent first
// requests of one session are serialised.
//
// Errors come back as Status values (never exceptions, never a hang: every RPC has a deadline):
// Unavailable (no server could answer, or the session stayed locked; retry the request),
// NotFound (Commit: signed out meanwhile), InvalidArgument (bad input, e.g. an oversize value),
// Internal. Only a server that cannot be reached sends a request to another server.
//
// Thread-safe: one SessionClient serves all request threads. A Session belongs to one request.
#ifndef SESSIONSERVER_SESSION_CLIENT_CLIENT_H_
#define SESSIONSERVER_SESSION_CLIENT_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "session_client/cookie.h"
#include "util/host_port.h"
#include "util/status.h"

namespace sessionserver::client {

struct ClientOptions {
  // The membership view; with a registry, the first one. A server's id is its address as text
  // (HostPort::ToString); ParseHostPortList reads "host:port,host:port" (util/host_port.h).
  std::vector<HostPort> servers;
  // With the fleet's registry (the Redis "host:port" the servers register in), the view is
  // refreshed every `view_refresh_ms` from the live members: servers added to the fleet get new
  // sessions within a refresh, dead ones leave, and draining ones get no new sessions.
  std::string registry;
  // The registry is a Redis Cluster: `registry` lists seed nodes, "host:port[,host:port...]".
  bool registry_is_cluster = false;
  int64_t view_refresh_ms = 1000;

  // Two data centres. `dc` names this client's site (informational: reported in ClientStats).
  // The other site's servers join the view as remote members: a static list, and/or (refreshed
  // like `registry`, every `view_refresh_ms`) the "host:port" of the other site's registry Redis.
  // Default: none (one site). Requests go there only when a cookie names one of them, or when no
  // server of this site answers; each costs a cross-site round trip. A server may not be in both.
  std::string dc;
  std::vector<HostPort> remote_servers;
  std::string remote_registry;
  CookieKeySet keys;  // shared by every instance of the web app

  int32_t session_timeout_minutes = 20;
  int64_t connect_timeout_ms = 200;
  int64_t call_timeout_ms = 1000;  // per RPC (send and receive)
  // An exclusive load waits this long at most for another request's lock (on the server; each
  // call waits at most call_timeout_ms / 2 there).
  int64_t lock_wait_ms = 5000;
  int64_t lock_poll_ms = 20;  // how often a server that cannot wait is asked again
  // A lock held longer than this belongs to a request that is gone: force-release it
  // (ASP.NET's executionTimeout). Default 110 s.
  int64_t request_timeout_ms = 110'000;
  size_t max_idle_connections_per_server = 8;
  // Circuit breaker: after this many consecutive failures a server is skipped for breaker_open_ms,
  // then one request probes it.
  int breaker_failures = 3;
  int64_t breaker_open_ms = 2000;

  // Set-Cookie attributes.
  std::string cookie_name = "ss_session";
  std::string cookie_path = "/";
  bool cookie_secure = true;  // false only for plain-HTTP local runs
  std::string cookie_same_site = "Lax";
};

class Session {
 public:
  const std::string& id() const { return id_; }
  bool is_new() const { return is_new_; }
  bool exclusive() const { return lock_cookie_ != 0; }
  // The server that served this request (the cookie names it after Commit).
  const std::string& server_id() const { return server_id_; }

  // Named attributes (encoding: docs/SESSION_ENCODING.md).
  std::optional<std::string> Get(std::string_view name) const;
  void Set(std::string name, std::string value);
  void Erase(std::string_view name);
  const std::map<std::string, std::string, std::less<>>& attributes() const { return attrs_; }

  // The stored bytes, for apps that bring their own serialisation. Setting it replaces the
  // attributes on Commit.
  const std::string& raw() const { return raw_; }
  void SetRaw(std::string bytes);

 private:
  friend class SessionClient;
  friend class ClientImpl;
  std::string id_;
  std::string server_id_;
  int64_t lock_cookie_ = 0;  // non-zero while this request holds the lock
  bool is_new_ = false;
  bool raw_set_ = false;
  bool dirty_ = false;
  bool finished_ = false;
  std::string raw_;
  std::map<std::string, std::string, std::less<>> attrs_;
  // The request's cookie and what it holds, if it opened under the current key: Commit answers
  // with it unchanged while it still names this session and server (no new seal per request).
  std::string cookie_;
  CookieContents cookie_contents_;
};

struct ClientStats {
  uint64_t loads = 0, commits = 0, new_sessions = 0;
  uint64_t cookies_rejected = 0;        // did not open (tampered, retired key, ...)
  uint64_t cookies_foreign_server = 0;  // opened but named a server outside the view
  uint64_t failovers = 0;               // requests served by a server other than the cookie's
  // lock_waits: calls that found the session locked (answered LOCKED, or waited on the server).
  uint64_t lock_waits = 0, locks_forced = 0;
  uint64_t rpc_errors = 0;
  // Pooled connections found closed by the server (it restarted) and replaced for that call.
  uint64_t stale_connections = 0;
  uint64_t view_refreshes = 0;     // successful registry reads
  uint64_t handoffs_followed = 0;  // MOVED answers (a draining server handed a session off)
  uint64_t revalidations = 0;      // failovers that first brought the new server's copy up to date
  size_t view_size = 0;            // members of this site in the view now
  // Two data centres: `dc` as configured; members of the other site in the view now; requests
  // served by a server of the other site; of those, the ones that went there because no server
  // of this site answered (the cookie did not name the server that served them).
  std::string dc;
  size_t remote_view_size = 0;
  uint64_t remote_calls = 0;
  uint64_t site_failovers = 0;
  std::map<std::string, uint64_t> connections_opened;  // by server id
};

class SessionClient {
 public:
  // InvalidArgument if the options are unusable (no servers, bad timeouts).
  static std::unique_ptr<SessionClient> Create(ClientOptions options, Status* status);
  virtual ~SessionClient() = default;

  // Loads the session the cookie value names, or starts a new one (no cookie, a cookie that does
  // not open, or a session that is gone). With `exclusive`, takes the session's lock.
  virtual Status Load(std::string_view cookie_value, bool exclusive,
                      std::unique_ptr<Session>* out) = 0;

  // Saves the session if it changed (and releases the lock if held) and returns the cookie value
  // to send back. NotFound: the session was removed meanwhile (sign-out wins; it stays gone).
  // On any failure where the server answered, the lock is released; if it could not be reached
  // (Unavailable), its lock died with it.
  virtual Status Commit(Session* session, std::string* cookie_value) = 0;

  // Releases the lock without saving. The cookie is unchanged.
  virtual Status Abandon(Session* session) = 0;

  // Moves the data to a fresh id (on sign-in) and removes the old id everywhere. The session
  // stays loaded (and locked if it was) under the new id.
  virtual Status Regenerate(Session* session) = 0;

  // Removes the session (sign-out). A save of the same session still in flight cannot bring it
  // back. Returns the cookie value that clears it.
  virtual Status Destroy(Session* session, std::string* cookie_value) = 0;

  // "Set-Cookie: ..." header value for `cookie_value` (empty: expire the cookie).
  virtual std::string SetCookieHeader(std::string_view cookie_value) const = 0;

  // The cookie value out of a Cookie request header, or empty.
  virtual std::string CookieFromHeader(std::string_view cookie_header) const = 0;

  virtual ClientStats GetStats() const = 0;
};

}  // namespace sessionserver::client

#endif  // SESSIONSERVER_SESSION_CLIENT_CLIENT_H_
