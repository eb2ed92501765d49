// The SessionClient behind SessionClient::Create (contract in include/session_client/client.h).
#include "session_client/client.h"

#include <thrift/TApplicationException.h>
#include <thrift/TConfiguration.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "SessionService.h"
#include "fleet/registry.h"
#include "session_client/attributes.h"
#include "session_client/breaker.h"
#include "session_client/session_id.h"
#include "storage/limits.h"
#include "util/clock.h"
#include "util/mutex.h"
#include "util/periodic_thread.h"
#include "util/rendezvous.h"

namespace sessionserver::client {

std::optional<std::string> Session::Get(std::string_view name) const {
  auto it = attrs_.find(name);
  if (it == attrs_.end()) return std::nullopt;
  return it->second;
}

void Session::Set(std::string name, std::string value) {
  attrs_[std::move(name)] = std::move(value);
  dirty_ = true;
}

void Session::Erase(std::string_view name) {
  auto it = attrs_.find(name);
  if (it == attrs_.end()) return;
  attrs_.erase(it);
  dirty_ = true;
}

void Session::SetRaw(std::string bytes) {
  raw_ = std::move(bytes);
  raw_set_ = true;
  dirty_ = true;
}

namespace {

using apache::thrift::TException;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::transport::TBufferedTransport;
using apache::thrift::transport::TFramedTransport;
using apache::thrift::transport::TSocket;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;
using Rpc = thrift::SessionServiceClient;

// Sessions up to the server's ceiling must fit a reply frame; Thrift's default (16 MB) would
// refuse them after they were saved. The server's own frame limit (storage/limits.h) for the
// largest --max_value_bytes any server may run with.
constexpr int kMaxFrameBytes = static_cast<int>(FrameLimit(kMaxValueBytesCeiling));
// Bytes read ahead from a connection's socket (replies of typical 1-5 KiB sessions fit), and
// the write buffer under the framing (a frame is written whole either way).
constexpr uint32_t kReadBufferBytes = 16 << 10;
constexpr uint32_t kWriteBufferBytes = 512;

struct Connection {
  std::shared_ptr<TSocket> socket;
  std::shared_ptr<TTransport> transport;
  std::unique_ptr<Rpc> rpc;
  ~Connection() {
    try {
      transport->close();
    } catch (...) {
    }
  }
};

// One member of the view: its idle connections and its circuit breaker.
class Server {
 public:
  Server(HostPort address, const ClientOptions& options)
      : address_(std::move(address)),
        id_(address_.ToString()),
        options_(options),
        breaker_(options.breaker_failures, options.breaker_open_ms * 1000) {}

  const std::string& id() const { return id_; }

  // The breaker (session_client/breaker.h), with MonotonicMicros() times.
  bool Available(int64_t now_us) const { return breaker_.Available(now_us); }
  void ClaimProbe(int64_t now_us) { breaker_.ClaimProbe(now_us); }
  void Succeeded() { breaker_.Succeeded(); }
  void Failed(int64_t now_us) { breaker_.Failed(now_us); }

  // The server answered MOVED (it is draining): place nothing new there and send no failover
  // there for a while, even before the registry says so.
  void Moved(int64_t now_us) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    moved_until_us_ = now_us + kMovedHintUs;
  }
  bool RecentlyMoved(int64_t now_us) const EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return now_us < moved_until_us_;
  }

  // Whether the server knows the methods added with the serving edge (getWaiting,
  // startSession); false once it answered that it does not know one (an older server): then the
  // client uses the original ones (and polls for locks).
  bool KnowsNewMethods() const { return new_methods_.load(std::memory_order_relaxed); }
  void UsesOldMethods() { new_methods_.store(false, std::memory_order_relaxed); }

  // An idle connection, or null (then the caller opens one). It is not checked (that would cost
  // a poll per request): one the server closed meanwhile fails its next call, which Call then
  // makes again on a new connection.
  std::unique_ptr<Connection> TakeIdle() EXCLUDES(mu_) {
    MutexLock l(&mu_);
    if (idle_.empty()) return nullptr;
    std::unique_ptr<Connection> c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  void ReturnIdle(std::unique_ptr<Connection> c) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    if (idle_.size() < options_.max_idle_connections_per_server) idle_.push_back(std::move(c));
  }
  void DropIdle() EXCLUDES(mu_) {  // after a failure the others are likely broken too
    std::vector<std::unique_ptr<Connection>> dropped;
    MutexLock l(&mu_);
    dropped.swap(idle_);
  }

  // Opens a new connection (throws TException on failure).
  std::unique_ptr<Connection> Open() const {
    auto config = std::make_shared<apache::thrift::TConfiguration>(kMaxFrameBytes, kMaxFrameBytes);
    auto socket = std::make_shared<TSocket>(address_.host, address_.port, config);
    socket->setConnTimeout(static_cast<int>(options_.connect_timeout_ms));
    socket->setRecvTimeout(static_cast<int>(options_.call_timeout_ms));
    socket->setSendTimeout(static_cast<int>(options_.call_timeout_ms));
    auto c = std::make_unique<Connection>();
    c->socket = socket;
    // Buffered under the framing: a reply's length and body (a typical session's) come in one
    // recv instead of two.
    auto buffered =
        std::make_shared<TBufferedTransport>(socket, kReadBufferBytes, kWriteBufferBytes, config);
    c->transport = std::make_shared<TFramedTransport>(buffered, config);
    c->rpc = std::make_unique<Rpc>(std::make_shared<TBinaryProtocol>(c->transport));
    c->transport->open();
    return c;
  }

 private:
  const HostPort address_;
  const std::string id_;
  const ClientOptions& options_;
  static constexpr int64_t kMovedHintUs = 10'000'000;
  mutable Mutex mu_;
  int64_t moved_until_us_ GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<Connection>> idle_ GUARDED_BY(mu_);
  Breaker breaker_;
  std::atomic<bool> new_methods_{true};
};

}  // namespace

namespace {

// Internally, IOError means "this server could not be reached" (the only error that moves a
// request to another server); it becomes Unavailable at the API.
Status Public(const Status& s) {
  return s.code() == Status::Code::kIOError ? Status::Unavailable(s.message()) : s;
}

bool CookieChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

}  // namespace

class ClientImpl : public SessionClient {
 public:
  explicit ClientImpl(ClientOptions options)
      : options_(std::move(options)), sealer_(options_.keys) {
    auto view = std::make_shared<View>();
    for (const HostPort& a : options_.servers) view->local.members.push_back(Add(a));
    for (const HostPort& a : options_.remote_servers) view->remote.members.push_back(Add(a));
    view_ = std::move(view);
    if (!options_.registry.empty()) {
      local_refresher_ =
          StartRefresher(options_.registry, &View::local, options_.registry_is_cluster);
    }
    if (!options_.remote_registry.empty()) {
      remote_refresher_ = StartRefresher(options_.remote_registry, &View::remote, false);
    }
  }

  ~ClientImpl() override {
    if (local_refresher_) local_refresher_->thread->Stop();
    if (remote_refresher_) remote_refresher_->thread->Stop();
  }

  Status Load(std::string_view cookie_value, bool exclusive,
              std::unique_ptr<Session>* out) override {
    ++loads_;
    std::string sid;
    Server* owner = nullptr;
    CookieContents c;
    bool current_key = false;
    if (!cookie_value.empty()) {
      if (!sealer_.Open(cookie_value, &c, &current_key).ok() ||
          !IsWellFormedSessionId(c.session_id)) {
        ++cookies_rejected_;  // no affinity, and (strict) the id is not adopted
      } else {
        sid = c.session_id;
        owner = Find(c.server_id);
        if (owner == nullptr && !c.server_id.empty()) ++cookies_foreign_server_;
      }
    }
    if (!sid.empty()) {
      auto session = std::make_unique<Session>();
      session->id_ = sid;
      bool found = false;
      Status s = WithFailover(sid, owner, [&](Server* server) {
        // Another server may have changed the session since this one last had it.
        if (server != owner) Revalidate(server, sid);
        return Fetch(server, exclusive, session.get(), &found);
      });
      if (!s.ok()) return Public(s);
      if (found) {
        if (owner != nullptr && session->server_id_ != owner->id()) ++failovers_;
        CountSite(owner, session->server_id_);
        if (current_key) {
          session->cookie_ = std::string(cookie_value);
          session->cookie_contents_ = std::move(c);
        }
        *out = std::move(session);
        return Status::OK();
      }
    }
    return Start(exclusive, out);  // no session, or it is gone: a fresh one under a fresh id
  }

  Status Commit(Session* session, std::string* cookie_value) override {
    if (session->finished_) return Status::InvalidArgument("session already committed");
    if (!session->exclusive() && session->dirty_) {
      return Status::InvalidArgument("a session loaded read-only cannot be saved");
    }
    if (session->exclusive()) {
      Server* server = Served(session->server_id_);
      thrift::Status::type answer = thrift::Status::OK;
      Status s;
      if (session->dirty_ || session->is_new_) {
        const std::string data = Data(*session);
        s = Call(server, [&](Rpc* rpc) {
          answer = rpc->put(session->id_, data, options_.session_timeout_minutes,
                            session->lock_cookie_, false);
        });
      } else {
        s = Call(server, [&](Rpc* rpc) {
          answer = rpc->releaseExclusive(session->id_, session->lock_cookie_);
        });
      }
      if (!s.ok()) {
        // The server answered but refused (e.g. a value over its limit): do not leave the lock
        // for the next request to wait out. (If it could not be reached, its lock dies with it.)
        if (s.code() != Status::Code::kIOError) Release(session);
        return Public(s);
      }
      if (answer == thrift::Status::NOT_FOUND) {
        return Status::NotFound("the session was removed meanwhile (signed out); not saved");
      }
      if (answer == thrift::Status::LOCKED) {
        return Status::Unavailable("this request's lock was taken over; not saved");
      }
      if (answer != thrift::Status::OK) return Unknown(answer);
      session->lock_cookie_ = 0;
      ++commits_;
    }
    session->finished_ = true;
    *cookie_value = CookieFor(*session);
    return Status::OK();
  }

  Status Abandon(Session* session) override {
    session->finished_ = true;
    return Public(Release(session));
  }

  Status Regenerate(Session* session) override {
    if (session->finished_) return Status::InvalidArgument("session already committed");
    if (!session->exclusive()) {
      return Status::InvalidArgument("regenerate needs the session loaded exclusively");
    }
    const std::string old_id = session->id_;
    Server* const old_server = Served(session->server_id_);
    const int64_t old_cookie = session->lock_cookie_;
    const std::string fresh = NewSessionId();
    const std::string data = Data(*session);
    Server* placed = nullptr;
    int64_t fresh_cookie = 0;
    Status s = WithFailover(fresh, nullptr, [&](Server* server) {
      thrift::Status::type answer = thrift::Status::OK;
      Status c = Call(server, [&](Rpc* rpc) {
        answer = rpc->put(fresh, data, options_.session_timeout_minutes, 0, false);
      });
      if (c.ok() && answer != thrift::Status::OK) c = Answer(server, answer);
      thrift::GetResult r;
      if (c.ok()) c = Call(server, [&](Rpc* rpc) { rpc->getExclusive(r, fresh); });
      if (c.ok() && r.status != thrift::Status::OK) {
        c = Status::Unavailable("could not lock the regenerated session");
      }
      if (c.ok()) {
        placed = server;
        fresh_cookie = r.lockCookie;
      }
      return c;
    });
    if (!s.ok()) return Public(s);
    // The old id must go with this request's lock: if it was removed (signed out) or its lock
    // taken over meanwhile, the new copy must not outlive it.
    s = Remove(old_id, old_cookie, old_server, /*gone_is_ok=*/false);
    if (!s.ok()) {
      RemoveQuietly(fresh, fresh_cookie, placed);
      return Public(s);
    }
    session->id_ = fresh;
    session->server_id_ = placed->id();
    session->lock_cookie_ = fresh_cookie;
    session->is_new_ = true;
    return Status::OK();
  }

  Status Destroy(Session* session, std::string* cookie_value) override {
    Status s = Remove(session->id_, session->lock_cookie_, Served(session->server_id_),
                      /*gone_is_ok=*/true);
    if (!s.ok()) return Public(s);
    session->finished_ = true;
    session->lock_cookie_ = 0;
    cookie_value->clear();
    return Status::OK();
  }

  std::string SetCookieHeader(std::string_view cookie_value) const override {
    // Only values Commit produces pass (base64url and '.'); anything else clears the cookie, so
    // no caller mistake can inject a header.
    const bool valid = std::all_of(cookie_value.begin(), cookie_value.end(), CookieChar);
    std::string h = options_.cookie_name + "=" + (valid ? std::string(cookie_value) : "");
    h += "; Path=" + options_.cookie_path + "; HttpOnly; SameSite=" + options_.cookie_same_site;
    if (options_.cookie_secure) h += "; Secure";
    if (cookie_value.empty() || !valid) h += "; Max-Age=0";
    return h;
  }

  std::string CookieFromHeader(std::string_view header) const override {
    // Several cookies of our name can arrive (a stale one with another path, say): the first
    // that opens wins.
    std::string first;
    while (!header.empty()) {
      const size_t semi = header.find(';');
      std::string_view pair = header.substr(0, semi);
      header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
      while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
      while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || pair.substr(0, eq) != options_.cookie_name) continue;
      std::string_view value = pair.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      CookieContents ignored;
      if (sealer_.Open(value, &ignored).ok()) return std::string(value);
      if (first.empty()) first = std::string(value);
    }
    return first;
  }

  ClientStats GetStats() const override {
    ClientStats s;
    s.loads = loads_;
    s.commits = commits_;
    s.new_sessions = new_sessions_;
    s.cookies_rejected = cookies_rejected_;
    s.cookies_foreign_server = cookies_foreign_server_;
    s.failovers = failovers_;
    s.lock_waits = lock_waits_;
    s.locks_forced = locks_forced_;
    s.rpc_errors = rpc_errors_;
    s.stale_connections = stale_connections_;
    s.view_refreshes = view_refreshes_;
    s.handoffs_followed = handoffs_followed_;
    s.revalidations = revalidations_;
    const std::shared_ptr<const View> view = CurrentView();
    s.view_size = view->local.members.size();
    s.dc = options_.dc;
    s.remote_view_size = view->remote.members.size();
    s.remote_calls = remote_calls_;
    s.site_failovers = site_failovers_;
    MutexLock l(&stats_mu_);
    s.connections_opened = connections_opened_;
    return s;
  }

 private:
  // The cookie that names `session` on the server that served it: the request's own cookie when
  // it still says exactly that and was sealed under the current key (sealing anew costs an
  // AES-GCM encryption and spends a random nonce for nothing), else a new seal.
  std::string CookieFor(const Session& session) const {
    if (!session.cookie_.empty() && session.cookie_contents_.session_id == session.id_ &&
        session.cookie_contents_.server_id == session.server_id_) {
      return session.cookie_;
    }
    return sealer_.Seal({session.id_, session.server_id_});
  }

  // One data centre's part of the view: its servers, and which of them are draining (no new
  // sessions are placed there).
  struct Site {
    std::vector<Server*> members;
    std::vector<std::string> draining;
    bool Has(std::string_view id) const {
      return std::any_of(members.begin(), members.end(), [&](Server* s) { return s->id() == id; });
    }
    bool Draining(const std::string& id) const {
      return std::find(draining.begin(), draining.end(), id) != draining.end();
    }
  };
  // The membership view: the servers requests may go to, this site's and the other site's
  // (remote; empty with one site). Replaced whole by Refresh; readers take a snapshot.
  struct View {
    Site local, remote;
    bool Draining(const std::string& id) const { return local.Draining(id) || remote.Draining(id); }
  };

  // A registry (a site's Redis) and the thread that reads it into one Site of the view. The
  // thread is declared last: it stops before the registry goes.
  struct Refresher {
    std::unique_ptr<fleet::Registry> registry;
    std::unique_ptr<PeriodicThread> thread;
  };

  std::shared_ptr<const View> CurrentView() const {
    MutexLock l(&view_mu_);
    return view_;
  }

  // The Server for `address`, created once and kept for the client's life (so pointers held by
  // requests in flight stay valid when the view changes).
  Server* Add(const HostPort& address) EXCLUDES(servers_mu_) {
    MutexLock l(&servers_mu_);
    auto& slot = servers_[address.ToString()];
    if (!slot) slot = std::make_unique<Server>(address, options_);
    return slot.get();
  }

  // A member of the current view (either site) by id, or null: the client only ever connects to
  // members.
  Server* Find(std::string_view id) const {
    const std::shared_ptr<const View> view = CurrentView();
    for (const Site* site : {&view->local, &view->remote}) {
      for (Server* s : site->members) {
        if (s->id() == id) return s;
      }
    }
    return nullptr;
  }

  // The server that served a session (Session::server_id_, which the client sets only from a
  // member it connected to, never from a cookie), even if it has left the view since (its
  // registry entry lapsed, or was not written yet when the view was read): a request holding a
  // lock there must still save or release it there. Null if the client never knew it.
  Server* Served(const std::string& id) const EXCLUDES(servers_mu_) {
    MutexLock l(&servers_mu_);
    auto it = servers_.find(id);
    return it == servers_.end() ? nullptr : it->second.get();
  }

  // Reads the registry at `address` ("host:port") every view_refresh_ms into the view's `site`.
  // `cluster`: `address` lists seed nodes of a Redis Cluster.
  std::unique_ptr<Refresher> StartRefresher(const std::string& address, Site View::*site,
                                            bool cluster) {
    auto r = std::make_unique<Refresher>();
    std::vector<HostPort> nodes;
    ParseHostPortList(address, &nodes).ok();  // checked by SessionClient::Create
    r->registry = std::make_unique<fleet::Registry>(nodes, cluster);
    fleet::Registry* registry = r->registry.get();
    r->thread =
        std::make_unique<PeriodicThread>(options_.view_refresh_ms * 1000, [this, registry, site] {
          Refresh(registry, site);
          return false;
        });
    r->thread->Start();
    return r;
  }

  // Reads `registry`: the view's `site` becomes its live members (with their draining flags). A
  // failed read keeps the current view.
  void Refresh(fleet::Registry* registry, Site View::*site) EXCLUDES(view_mu_) {
    std::vector<fleet::Member> members;
    if (!registry->List(&members).ok() || members.empty()) return;
    Site fresh;
    for (const fleet::Member& m : members) {
      HostPort address;
      if (!ParseHostPort(m.address, &address).ok()) continue;
      Server* server = Add(address);
      fresh.members.push_back(server);
      if (m.state != fleet::ServerState::kActive) fresh.draining.push_back(server->id());
    }
    if (fresh.members.empty()) return;
    ++view_refreshes_;
    MutexLock l(&view_mu_);  // the other site's refresher replaces the view too: copy under it
    auto view = std::make_shared<View>(*view_);
    (*view).*site = std::move(fresh);
    view_ = std::move(view);
  }

  // Counts a request served by `served` when the cookie named `owner` (or nothing) by site: a
  // server of the other site that the cookie did not name was tried only after every server of
  // this site (Candidates), so none of them answered.
  void CountSite(const Server* owner, const std::string& served) {
    if (!CurrentView()->remote.Has(served)) return;
    ++remote_calls_;
    if (owner == nullptr || owner->id() != served) ++site_failovers_;
  }

  static Status Unknown(thrift::Status::type answer) {
    return Status::Internal("the server answered an unknown status " +
                            std::to_string(static_cast<int>(answer)));
  }

  // An answer other than the one expected: MOVED (the server is draining and handed the session
  // off) goes on to the next candidate, like a server that cannot be reached but without
  // counting against its breaker.
  Status Answer(Server* server, thrift::Status::type answer) {
    if (answer != thrift::Status::MOVED) return Unknown(answer);
    server->Moved(MonotonicMicros());
    ++handoffs_followed_;
    return Status::IOError(server->id() + " is draining and handed the session off");
  }

  // A server could not be reached: read the registries now rather than at the next interval
  // (at most every 200 ms), so a server that left is dropped and one that joined is found.
  void RefreshSoon() {
    const int64_t now = MonotonicMicros();
    int64_t last = last_wake_us_.load(std::memory_order_relaxed);
    if (now - last < kRefreshSoonUs ||
        !last_wake_us_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      return;
    }
    if (local_refresher_) local_refresher_->thread->Wake();
    if (remote_refresher_) remote_refresher_->thread->Wake();
  }

  // Asks `server` to bring its copy of `sid` up to the backing store's before a failover reads
  // it there. Best effort: if it fails, the read goes ahead (the copy there is all there is).
  void Revalidate(Server* server, const std::string& sid) {
    thrift::Status::type ignored;
    if (Call(server, [&](Rpc* rpc) { ignored = rpc->revalidate(sid); }).ok()) ++revalidations_;
  }

  // The servers to try for `sid`: the owner first, always (its breaker only orders the others;
  // going elsewhere while the owner lives would serve a copy that lags it; an owner in the other
  // site included), then the others that are not draining and whose breakers allow it: this
  // site's by rendezvous rank, then the other site's by rendezvous rank (so a request goes there
  // only when no server here answers). If there are none, all the others in that order.
  std::vector<Server*> Candidates(std::string_view sid, Server* owner) const {
    const std::shared_ptr<const View> view = CurrentView();
    std::vector<Server*> ranked = Ranked(view->local.members, sid);
    const std::vector<Server*> remote = Ranked(view->remote.members, sid);
    ranked.insert(ranked.end(), remote.begin(), remote.end());
    std::vector<Server*> out;
    const int64_t now = MonotonicMicros();
    if (owner != nullptr) out.push_back(owner);
    for (Server* s : ranked) {
      // New sessions and failovers go to servers that are not draining.
      if (s != owner && s->Available(now) && !view->Draining(s->id()) && !s->RecentlyMoved(now)) {
        out.push_back(s);
      }
    }
    if (out.size() == (owner != nullptr ? 1u : 0u)) {
      // Nothing else: draining servers and open breakers (a server restarted since it failed
      // may well answer) are better than failing the request.
      for (Server* s : ranked) {
        if (s != owner) out.push_back(s);
      }
    }
    return out;
  }

  // `servers` by rendezvous rank for `sid`, highest first.
  static std::vector<Server*> Ranked(std::vector<Server*> servers, std::string_view sid) {
    std::sort(servers.begin(), servers.end(), [&](Server* a, Server* b) {
      return RendezvousScore(a->id(), sid) > RendezvousScore(b->id(), sid);
    });
    return servers;
  }

  // Runs `attempt` on each candidate while the previous one could not be reached (IOError);
  // any answer a server gives (including "locked") ends it.
  template <typename Attempt>
  Status WithFailover(std::string_view sid, Server* owner, Attempt attempt) {
    Status s = Status::IOError("no server of the view could be reached");
    for (Server* server : Candidates(sid, owner)) {
      s = attempt(server);
      if (s.code() != Status::Code::kIOError) return s;
    }
    return s;
  }

  // One RPC on `server` with a pooled connection. Could not reach it: IOError (counts against
  // its breaker, drops its idle connections). It answered InvalidRequest: InvalidArgument. It
  // failed the request (e.g. its Redis is unreadable): Unavailable. It does not know the method
  // (a server older than this client): NotFound. A reply that does not parse: Internal.
  template <typename Fn>
  Status Call(Server* server, Fn fn) {
    if (server == nullptr) return Status::IOError("server not in the membership view");
    server->ClaimProbe(MonotonicMicros());
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> c;
      bool pooled = false;
      try {
        c = server->TakeIdle();
        pooled = c != nullptr;
        if (c == nullptr) {
          c = server->Open();
          MutexLock l(&stats_mu_);
          ++connections_opened_[server->id()];
        }
        fn(c->rpc.get());
        server->ReturnIdle(std::move(c));
        server->Succeeded();
        return Status::OK();
      } catch (const thrift::InvalidRequest& e) {
        server->ReturnIdle(std::move(c));  // a complete reply: the connection is fine
        return Status::InvalidArgument(e.message);
      } catch (const apache::thrift::TApplicationException& e) {
        server->ReturnIdle(std::move(c));
        if (e.getType() == apache::thrift::TApplicationException::UNKNOWN_METHOD) {
          return Status::NotFound(server->id() + ": " + e.what());
        }
        return Status::Unavailable(server->id() + ": " + e.what());
      } catch (const apache::thrift::protocol::TProtocolException& e) {
        ++rpc_errors_;
        return Status::Internal(server->id() + ": " + e.what());
      } catch (const TTransportException& e) {
        // A pooled connection the server closed while it sat idle (the server restarted or
        // stopped): closed, or reset, before any reply. The server that closed it never ran
        // this request; once more on a new connection (which fails at once if it is down).
        if (pooled && attempt == 0 &&
            (e.getType() == TTransportException::END_OF_FILE ||
             e.getType() == TTransportException::NOT_OPEN)) {
          ++stale_connections_;
          server->DropIdle();  // its other idle connections were closed too
          continue;
        }
        return Unreachable(server, e);
      } catch (const TException& e) {
        return Unreachable(server, e);
      } catch (const std::exception& e) {
        ++rpc_errors_;
        server->Failed(MonotonicMicros());
        return Status::IOError(server->id() + ": " + e.what());
      }
    }
  }

  // Call's answer when `server` could not be reached.
  Status Unreachable(Server* server, const TException& e) {
    ++rpc_errors_;
    server->Failed(MonotonicMicros());
    server->DropIdle();
    RefreshSoon();
    return Status::IOError(server->id() + ": " + e.what());
  }

  // get/getExclusive on `server`, waiting out other requests' locks (bounded by lock_wait_ms in
  // all). The server waits for the lock's release itself (getWaiting: answered the moment the
  // holder lets go), each call for at most half the call timeout; a server older than that
  // method is polled every lock_poll_ms instead. *found = false if the session is gone.
  Status Fetch(Server* server, bool exclusive, Session* session, bool* found) {
    const int64_t deadline = MonotonicMicros() + options_.lock_wait_ms * 1000;
    while (true) {
      thrift::GetResult r;
      const int64_t wait_ms =
          std::min<int64_t>((deadline - MonotonicMicros()) / 1000, options_.call_timeout_ms / 2);
      const bool server_waits = server->KnowsNewMethods() && wait_ms > 0;
      const int64_t started_us = MonotonicMicros();
      Status s = Call(server, [&](Rpc* rpc) {
        if (server_waits) {
          rpc->getWaiting(r, session->id_, exclusive, static_cast<int32_t>(wait_ms));
        } else if (exclusive) {
          rpc->getExclusive(r, session->id_);
        } else {
          rpc->get(r, session->id_);
        }
      });
      if (server_waits && s.IsNotFound()) {  // an older server: poll it
        server->UsesOldMethods();
        continue;
      }
      if (!s.ok()) return s;
      if (r.status == thrift::Status::NOT_FOUND) {
        *found = false;
        return Status::OK();
      }
      if (r.waited) ++lock_waits_;  // the server waited out another request's lock
      if (r.status == thrift::Status::OK) {
        *found = true;
        Fill(server, exclusive, r, session);
        return Status::OK();
      }
      if (r.status != thrift::Status::LOCKED) return Answer(server, r.status);
      if (MonotonicMicros() >= deadline) {
        return Status::Unavailable("the session stayed locked by another request for " +
                                   std::to_string(options_.lock_wait_ms) + " ms");
      }
      if (r.lockAgeMs > options_.request_timeout_ms) {  // its request is long gone
        thrift::Status::type ignored;
        if (Call(server, [&](Rpc* rpc) {
              ignored = rpc->releaseExclusive(session->id_, r.lockCookie);
            }).ok()) {
          ++locks_forced_;
          continue;
        }
      }
      if (!r.waited) ++lock_waits_;  // (a wait is counted above)
      // Answered LOCKED before its wait was over: the server could not wait (or another waiter
      // took the lock first); pause as a poll would.
      if (!server_waits || MonotonicMicros() - started_us < wait_ms * 1000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(options_.lock_poll_ms));
      }
    }
  }

  // Takes what an OK get/getExclusive from `server` answered into `session`.
  static void Fill(Server* server, bool exclusive, const thrift::GetResult& r, Session* session) {
    session->server_id_ = server->id();
    session->lock_cookie_ = exclusive ? r.lockCookie : 0;
    session->is_new_ = r.initializeItem;
    session->raw_ = r.data;
    Attributes attrs;
    if (DecodeAttributes(r.data, &attrs)) session->attrs_ = std::move(attrs);
  }

  // Creates the new session `session->id_` uninitialized on `server` and locks it: one
  // startSession call, or (a server older than that method) put(createUninitialized) and an
  // exclusive load. *found = false if it vanished at once.
  Status Create(Server* server, Session* session, bool* found) {
    if (server->KnowsNewMethods()) {
      thrift::GetResult r;
      Status c = Call(server, [&](Rpc* rpc) {
        rpc->startSession(r, session->id_, options_.session_timeout_minutes);
      });
      if (c.IsNotFound()) {
        server->UsesOldMethods();
      } else if (!c.ok()) {
        return c;
      } else if (r.status == thrift::Status::OK) {
        *found = true;
        Fill(server, /*exclusive=*/true, r, session);
        return Status::OK();
      } else if (r.status != thrift::Status::LOCKED) {
        return Answer(server, r.status);
      }  // LOCKED: another request has it already (a retry of ours): wait for it below
    }
    thrift::Status::type answer = thrift::Status::OK;
    Status c = Call(server, [&](Rpc* rpc) {
      answer = rpc->put(session->id_, "", options_.session_timeout_minutes, 0, true);
    });
    if (c.ok() && answer != thrift::Status::OK) c = Answer(server, answer);
    if (!c.ok()) return c;
    return Fetch(server, true, session, found);
  }

  // A new session under a fresh id. An exclusive request creates it uninitialized on the placed
  // server and locks it; a read-only one creates nothing yet (a crawler's requests cost the
  // fleet no writes): its cookie names the placed server, and a later load of an id the server
  // never saw starts afresh again.
  Status Start(bool exclusive, std::unique_ptr<Session>* out) {
    auto session = std::make_unique<Session>();
    session->id_ = NewSessionId();
    session->is_new_ = true;
    if (!exclusive) {
      session->server_id_ = Candidates(session->id_, nullptr).front()->id();
    } else {
      bool found = false;
      Status s = WithFailover(session->id_, nullptr, [&](Server* server) {
        return Create(server, session.get(), &found);
      });
      if (!s.ok()) return Public(s);
      if (!found) return Status::Unavailable("a new session vanished at once (server restarted?)");
      session->is_new_ = true;
      CountSite(nullptr, session->server_id_);
    }
    ++new_sessions_;
    *out = std::move(session);
    return Status::OK();
  }

  Status Release(Session* session) {
    if (!session->exclusive()) return Status::OK();
    thrift::Status::type answer;
    Status s = Call(Served(session->server_id_), [&](Rpc* rpc) {
      answer = rpc->releaseExclusive(session->id_, session->lock_cookie_);
    });
    session->lock_cookie_ = 0;
    return s;
  }

  // Removes `sid`: the owner must confirm it with `lock_cookie` (NOT_FOUND, already gone, is
  // fine if `gone_is_ok`; else an error: e.g. a sign-out won); LOCKED (another request holds the
  // lock) is an error. If the owner cannot be reached, the
  // next servers do it (they read the session from Redis; no lock there). Then every other server
  // of both sites drops any copy it may hold, best effort.
  Status Remove(const std::string& sid, int64_t lock_cookie, Server* owner, bool gone_is_ok) {
    Server* confirmed_by = nullptr;
    Status s = WithFailover(sid, owner, [&](Server* server) {
      thrift::Status::type answer = thrift::Status::OK;
      const int64_t cookie = server == owner ? lock_cookie : 0;
      Status c = Call(server, [&](Rpc* rpc) { answer = rpc->remove(sid, cookie); });
      if (!c.ok()) return c;
      if (answer == thrift::Status::LOCKED) {
        return Status::Unavailable("the session is locked by another request; retry");
      }
      if (answer == thrift::Status::NOT_FOUND && !gone_is_ok) {
        return Status::Unavailable("the session was removed meanwhile (signed out)");
      }
      if (answer != thrift::Status::OK && answer != thrift::Status::NOT_FOUND) {
        return Unknown(answer);
      }
      confirmed_by = server;
      return Status::OK();
    });
    if (!s.ok()) return s;
    const std::shared_ptr<const View> view = CurrentView();
    for (const Site* site : {&view->local, &view->remote}) {
      for (Server* other : site->members) {
        if (other != confirmed_by) RemoveQuietly(sid, 0, other);
      }
    }
    return Status::OK();
  }

  void RemoveQuietly(const std::string& sid, int64_t lock_cookie, Server* server) {
    if (server == nullptr || !server->Available(MonotonicMicros())) return;
    thrift::Status::type ignored;
    Call(server, [&](Rpc* rpc) { ignored = rpc->remove(sid, lock_cookie); });
  }

  std::string Data(const Session& s) const {
    return s.raw_set_ ? s.raw_ : EncodeAttributes(s.attrs_);
  }

  const ClientOptions options_;
  const CookieSealer sealer_;
  mutable Mutex servers_mu_;
  std::map<std::string, std::unique_ptr<Server>> servers_ GUARDED_BY(servers_mu_);
  mutable Mutex view_mu_;
  std::shared_ptr<const View> view_ GUARDED_BY(view_mu_);
  static constexpr int64_t kRefreshSoonUs = 200'000;
  std::atomic<int64_t> last_wake_us_{0};
  std::atomic<uint64_t> view_refreshes_{0}, handoffs_followed_{0}, revalidations_{0};
  std::atomic<uint64_t> remote_calls_{0}, site_failovers_{0};
  std::atomic<uint64_t> loads_{0}, commits_{0}, new_sessions_{0}, cookies_rejected_{0},
      cookies_foreign_server_{0}, failovers_{0}, lock_waits_{0}, locks_forced_{0}, rpc_errors_{0},
      stale_connections_{0};
  mutable Mutex stats_mu_;
  std::map<std::string, uint64_t> connections_opened_ GUARDED_BY(stats_mu_);
  // Declared last (they use the rest); the destructor stops them first anyway.
  std::unique_ptr<Refresher> local_refresher_, remote_refresher_;
};

namespace {

bool Token(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), CookieChar);
}

Status CheckKeys(const CookieKeySet& keys) {
  std::vector<const CookieKey*> all{&keys.current};
  for (const CookieKey& k : keys.previous) all.push_back(&k);
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i]->id == 0) return Status::InvalidArgument("cookie key id 0 (keys not loaded?)");
    if (std::all_of(all[i]->bytes.begin(), all[i]->bytes.end(), [](uint8_t b) { return b == 0; })) {
      return Status::InvalidArgument("cookie key is all zeros (keys not loaded?)");
    }
    for (size_t j = 0; j < i; ++j) {
      if (all[i]->id == all[j]->id) return Status::InvalidArgument("duplicate cookie key id");
    }
  }
  return Status::OK();
}

}  // namespace

std::unique_ptr<SessionClient> SessionClient::Create(ClientOptions options, Status* status) {
  *status = CheckKeys(options.keys);
  if (options.servers.empty()) *status = Status::InvalidArgument("no servers in the view");
  for (const auto* list : {&options.servers, &options.remote_servers}) {
    for (const HostPort& a : *list) {
      if (a.ToString().size() > kMaxServerIdBytes) {
        *status = Status::InvalidArgument("server id longer than 64 bytes: " + a.ToString());
      }
    }
  }
  for (const HostPort& a : options.remote_servers) {
    for (const HostPort& b : options.servers) {
      if (a == b) *status = Status::InvalidArgument("in both sites: " + a.ToString());
    }
  }
  if (options.session_timeout_minutes < 1 || options.session_timeout_minutes > 525600) {
    *status = Status::InvalidArgument("session timeout must be 1..525600 minutes");
  }
  if (options.call_timeout_ms <= 0 || options.connect_timeout_ms <= 0 ||
      options.lock_poll_ms <= 0 || options.lock_wait_ms < 0 || options.request_timeout_ms <= 0) {
    *status = Status::InvalidArgument("timeouts must be positive");
  }
  if (!options.registry.empty()) {
    std::vector<HostPort> nodes;
    const Status s = ParseHostPortList(options.registry, &nodes);
    if (!s.ok()) *status = Status::InvalidArgument("registry: " + s.message());
    if (s.ok() && nodes.size() > 1 && !options.registry_is_cluster) {
      *status = Status::InvalidArgument("registry is one host:port (or set registry_is_cluster)");
    }
    if (options.view_refresh_ms < 10) *status = Status::InvalidArgument("view_refresh_ms < 10");
  }
  HostPort remote_registry;
  if (!options.remote_registry.empty()) {
    const Status s = ParseHostPort(options.remote_registry, &remote_registry);
    if (!s.ok()) *status = Status::InvalidArgument("remote_registry: " + s.message());
  }
  if (!options.remote_registry.empty() && options.remote_registry == options.registry) {
    *status = Status::InvalidArgument("remote_registry is this site's registry");
  }
  if (options.breaker_failures < 1 || options.breaker_open_ms < 0) {
    *status = Status::InvalidArgument("breaker_failures must be >= 1, breaker_open_ms >= 0");
  }
  if (!Token(options.cookie_name) || options.cookie_path.empty() ||
      options.cookie_path.find_first_of(";\r\n") != std::string::npos ||
      (options.cookie_same_site != "Strict" && options.cookie_same_site != "Lax" &&
       options.cookie_same_site != "None")) {
    *status = Status::InvalidArgument("bad cookie name, path or SameSite");
  }
  if (!status->ok()) return nullptr;
  return std::make_unique<ClientImpl>(std::move(options));
}

}  // namespace sessionserver::client
