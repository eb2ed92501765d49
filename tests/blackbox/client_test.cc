// session_client against a real fleet: two session_server processes over one real Redis.
// Sessions across requests, failover after kill -9 of the owner, concurrent exclusive updates,
// sign-out winning over a save in flight, and tampered cookies that never lead the client to a
// server outside its view.
#include "session_client/client.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fleet/registry.h"
#include "session_client/base64url.h"
#include "session_client/session_id.h"
#include "tests/blackbox/client_test_util.h"
#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_cluster.h"
#include "tests/unit/redis_server.h"

namespace sessionserver::client {
namespace {

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start());
    for (int i = 0; i < 2; ++i) {
      servers_.push_back(std::make_unique<ServerProcess>());
      ASSERT_TRUE(servers_.back()->Start(Flags(i)));
    }
    keys_ = CookieKeySet::Generate();
  }
  std::vector<std::string> Flags(int i) {
    return {"--redis=127.0.0.1:" + std::to_string(redis_.port()),
            "--data_dir=" + dir_.path() + "/s" + std::to_string(i), "--write_behind_delay_ms=10",
            "--heartbeat_ms=200"};
  }
  // Starts server `i` again (after a Stop) on its address and data dir: a warm restart.
  bool StartAgain(int i, int port) {
    std::vector<std::string> flags = Flags(i);
    flags.push_back("--port=" + std::to_string(port));
    return servers_[i]->Start(flags) && servers_[i]->port() == port;
  }
  // A new session (cart "a;") that rendezvous placed on server `i`; *owner says where the last
  // try landed (the caller asserts it is server `i`). Returns its cookie.
  std::string NewSessionOn(SessionClient* app, int i, std::string* owner) {
    std::string cookie;
    for (int n = 0; n < 100 && *owner != Id(i); ++n) cookie = AddItem(app, "", "a", owner);
    return cookie;
  }
  std::string Id(int i) const { return "127.0.0.1:" + std::to_string(servers_[i]->port()); }
  std::string State(int i) {
    TestClient c(servers_[i]->port());
    thrift::ServerInfo info;
    c->info(info);
    return info.state;
  }
  int64_t Counter(int i, const std::string& name) {
    TestClient c(servers_[i]->port());
    thrift::ServerInfo info;
    c->info(info);
    return info.counters[name];
  }

  std::unique_ptr<SessionClient> NewClient(ClientOptions options = {}) {
    for (const auto& s : servers_) options.servers.push_back({"127.0.0.1", s->port()});
    return NewTestClient(std::move(options), keys_);
  }
  ServerProcess* ServerById(const std::string& id) {
    for (const auto& s : servers_) {
      if ("127.0.0.1:" + std::to_string(s->port()) == id) return s.get();
    }
    return nullptr;
  }
  // Until `server` has written every change to Redis (bounded).
  bool Drained(ServerProcess* server) {
    for (int i = 0; i < 1000; ++i) {
      TestClient c(server->port());
      thrift::ServerInfo info;
      c->info(info);
      if (info.counters["wb_queue_depth"] == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  RedisServer redis_;
  TempDir dir_{"ss-client"};
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  CookieKeySet keys_;
};

TEST_F(ClientTest, SessionCarriesAttributesAcrossRequestsAndInstances) {
  auto app1 = NewClient();
  auto app2 = NewClient();  // another web app instance with the same key set
  std::string cookie = AddItem(app1.get(), "", "book");
  cookie = AddItem(app2.get(), cookie, "pen");
  auto s = Read(app1.get(), cookie);
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->is_new());
  EXPECT_EQ(s->Get("cart").value_or(""), "book;pen;");
  EXPECT_EQ(app1->GetStats().new_sessions, 1u);
}

TEST_F(ClientTest, KillNineOfTheOwnerFailsOverWithTheLatestCommittedData) {
  auto app = NewClient();
  std::string cookie = AddItem(app.get(), "", "a");
  cookie = AddItem(app.get(), cookie, "b");
  auto before = Read(app.get(), cookie);
  ASSERT_NE(before, nullptr);
  ServerProcess* owner = ServerById(before->server_id());
  ASSERT_NE(owner, nullptr);
  ASSERT_TRUE(Drained(owner)) << "committed changes reach Redis within the flush window";
  owner->Stop(SIGKILL);
  std::unique_ptr<Session> s;
  ASSERT_TRUE(app->Load(cookie, /*exclusive=*/true, &s).ok());
  EXPECT_FALSE(s->is_new());
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;");
  EXPECT_NE(s->server_id(), before->server_id());
  s->Set("cart", "a;b;c;");
  std::string moved;
  ASSERT_TRUE(app->Commit(s.get(), &moved).ok());
  EXPECT_EQ(app->GetStats().failovers, 1u);
  auto after = Read(app.get(), moved);  // the cookie names the new owner: no failover now
  EXPECT_EQ(after->server_id(), s->server_id());
  EXPECT_EQ(after->Get("cart").value_or(""), "a;b;c;");
  EXPECT_EQ(app->GetStats().failovers, 1u);
}

// A request whose cookie already names its session and the server that served it gets that
// cookie back unchanged (no new AES-GCM seal, no random nonce spent); anything that changes what
// the cookie must say, or a cookie sealed under a previous key, gets a new one.
TEST_F(ClientTest, AnUnchangedCookieIsNotSealedAgain) {
  auto app = NewClient();
  const std::string first = AddItem(app.get(), "", "a");  // a new session: sealed
  EXPECT_EQ(AddItem(app.get(), first, "b"), first);
  auto read = Read(app.get(), first);
  ASSERT_NE(read, nullptr);
  std::string after_read;
  ASSERT_TRUE(app->Commit(read.get(), &after_read).ok());
  EXPECT_EQ(after_read, first);

  // Another instance whose current key is newer seals the old-key cookie again, then keeps it.
  CookieKeySet rotated = keys_;
  rotated.Rotate();
  ClientOptions options;
  for (const auto& server : servers_) options.servers.push_back({"127.0.0.1", server->port()});
  auto rotated_app = NewTestClient(options, rotated);
  const std::string resealed = AddItem(rotated_app.get(), first, "c");
  EXPECT_NE(resealed, first);
  EXPECT_EQ(AddItem(rotated_app.get(), resealed, "d"), resealed);
  EXPECT_EQ(Read(rotated_app.get(), resealed)->Get("cart").value_or(""), "a;b;c;d;");

  // A new id: a new cookie, which names the new id.
  std::unique_ptr<Session> s;
  ASSERT_TRUE(rotated_app->Load(resealed, /*exclusive=*/true, &s).ok());
  ASSERT_TRUE(rotated_app->Regenerate(s.get()).ok());
  std::string regenerated;
  ASSERT_TRUE(rotated_app->Commit(s.get(), &regenerated).ok());
  EXPECT_NE(regenerated, resealed);
  CookieContents contents;
  ASSERT_TRUE(CookieSealer(rotated).Open(regenerated, &contents).ok());
  EXPECT_EQ(contents.session_id, s->id());
}

// The breaker (session_client/breaker.h, unit-tested in tests/unit/breaker_test.cc) as the
// client uses it: once a dead server has failed breaker_failures times, new sessions no longer
// try it (no connection attempt, no rpc error) until breaker_open_ms passes.
TEST_F(ClientTest, AnOpenBreakerKeepsNewSessionsOffADeadServer) {
  servers_[1]->Stop(SIGKILL);  // its port now refuses connections
  ClientOptions options;
  options.breaker_failures = 2;
  options.breaker_open_ms = 600'000;  // stays open for the whole test
  auto app = NewClient(options);
  for (int i = 0; i < 30; ++i) {  // rendezvous ranks the dead server first for about half
    std::string served_by;
    AddItem(app.get(), "", "a", &served_by);
    EXPECT_EQ(served_by, Id(0));
  }
  EXPECT_EQ(app->GetStats().rpc_errors, 2u) << "tried until the breaker opened, then skipped";
}

TEST_F(ClientTest, ConcurrentExclusiveUpdatesLoseNothing) {
  auto app = NewClient();
  std::string owner;
  const std::string cookie = AddItem(app.get(), "", "start", &owner);
  const int owner_index = owner == Id(0) ? 0 : 1;
  // Held while the threads start, so that they really contend: each waits for the lock.
  std::unique_ptr<Session> held;
  ASSERT_TRUE(app->Load(cookie, /*exclusive=*/true, &held).ok());
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { AddItem(app.get(), cookie, "t" + std::to_string(t)); });
  }
  EXPECT_TRUE(Eventually([&] { return Counter(owner_index, "requests_parked") == kThreads; }));
  EXPECT_TRUE(app->Abandon(held.get()).ok());  // releases the lock, changes nothing
  for (auto& th : threads) th.join();
  const std::string cart = Read(app.get(), cookie)->Get("cart").value_or("");
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_NE(cart.find("t" + std::to_string(t) + ";"), std::string::npos) << cart;
  }
  EXPECT_GT(app->GetStats().lock_waits, 0u) << "the requests really contended";
}

// The server waits out the lock (getWaiting) and answers the moment the holder commits: the
// waiting load finishes long before a poll of lock_poll_ms could have asked again.
TEST_F(ClientTest, AWaitingLoadIsAnsweredWhenTheHolderCommits) {
  ClientOptions patient;
  patient.lock_poll_ms = 20'000;  // a poll would take this long to ask again
  patient.lock_wait_ms = 60'000;
  patient.call_timeout_ms = 2'000;  // the server waits up to 1 s per call
  auto app = NewClient(patient);
  const std::string cookie = AddItem(app.get(), "", "first");
  std::unique_ptr<Session> held;
  ASSERT_TRUE(app->Load(cookie, /*exclusive=*/true, &held).ok());
  auto waiter = std::async(std::launch::async, [&] {
    std::unique_ptr<Session> s;
    const Status st = app->Load(cookie, /*exclusive=*/true, &s);
    return st.ok() ? s->Get("cart").value_or("") : st.ToString();
  });
  // One server-side wait ran out (LOCKED after 1 s) and the next is under way.
  ASSERT_TRUE(Eventually([&] { return app->GetStats().lock_waits >= 1; }));
  held->Set("cart", "first;second;");
  std::string ignored;
  const auto committed = std::chrono::steady_clock::now();
  ASSERT_TRUE(app->Commit(held.get(), &ignored).ok());
  EXPECT_EQ(waiter.get(), "first;second;");
  EXPECT_LT(std::chrono::steady_clock::now() - committed, std::chrono::seconds(10))
      << "answered on release, not by a poll";
}

// A restarted server closed the client's pooled connections; the next request on one is made
// again on a new connection (pooled connections are not polled before use), not failed over.
TEST_F(ClientTest, APooledConnectionToARestartedServerIsReplaced) {
  auto app = NewClient();
  std::string owner;
  const std::string cookie = NewSessionOn(app.get(), 0, &owner);
  ASSERT_EQ(owner, Id(0));
  const int port = servers_[0]->port();
  servers_[0]->Stop(SIGTERM);
  ASSERT_TRUE(StartAgain(0, port));
  const ClientStats before = app->GetStats();
  std::string served_by;
  EXPECT_EQ(AddItem(app.get(), cookie, "b", &served_by).empty(), false);
  EXPECT_EQ(served_by, Id(0));
  const ClientStats after = app->GetStats();
  EXPECT_GE(after.stale_connections, before.stale_connections + 1);
  EXPECT_EQ(after.rpc_errors, before.rpc_errors);
  EXPECT_EQ(after.failovers, before.failovers);
  EXPECT_EQ(Read(app.get(), cookie)->Get("cart").value_or(""), "a;b;");
}

TEST_F(ClientTest, SignOutWinsOverASaveInFlight) {
  auto app = NewClient();
  const std::string cookie = AddItem(app.get(), "", "secret");
  std::unique_ptr<Session> slow;  // a request that loaded the session and saves late
  ASSERT_TRUE(app->Load(cookie, /*exclusive=*/true, &slow).ok());
  slow->Set("cart", "secret;more;");
  ClientOptions impatient;
  impatient.request_timeout_ms = 1;  // treats the slow request's lock as abandoned
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto signout_app = NewClient(impatient);
  std::unique_ptr<Session> s;
  ASSERT_TRUE(signout_app->Load(cookie, /*exclusive=*/true, &s).ok());
  EXPECT_EQ(signout_app->GetStats().locks_forced, 1u);
  std::string cleared;
  ASSERT_TRUE(signout_app->Destroy(s.get(), &cleared).ok());
  EXPECT_TRUE(cleared.empty());
  std::string ignored;
  const Status late = app->Commit(slow.get(), &ignored);
  EXPECT_FALSE(late.ok()) << "the save after sign-out must not bring the session back";
  auto after = Read(app.get(), cookie);
  EXPECT_TRUE(after->is_new()) << "the old session stays gone";
  EXPECT_FALSE(after->Get("cart").has_value());
}

TEST_F(ClientTest, TamperedCookiesNeverLeadOutsideTheView) {
  auto app = NewClient();
  const std::string genuine = AddItem(app.get(), "", "x");
  CookieSealer ours(keys_);
  std::mt19937_64 rng(5);
  std::vector<std::string> cookies;
  for (int i = 0; i < 300; ++i) {
    std::string raw;
    ASSERT_TRUE(Base64UrlDecode(genuine.substr(3), &raw));
    raw[rng() % raw.size()] ^= static_cast<char>(1u << (rng() % 8));
    cookies.push_back("v1." + Base64UrlEncode(raw));
  }
  // Authentic cookies naming servers outside the view: still no connection there.
  for (const char* foreign : {"10.0.0.1:7500", "127.0.0.2:7500", "evil.example.com:1", ""}) {
    cookies.push_back(ours.Seal({"AAAAAAAAAAAAAAAAAAAAAA", foreign}));
  }
  cookies.push_back("127.0.0.1:1");
  cookies.push_back(std::string(4096, 'A'));
  for (const std::string& c : cookies) {
    std::unique_ptr<Session> s;
    ASSERT_TRUE(app->Load(c, false, &s).ok());
    EXPECT_TRUE(s->is_new()) << c;
  }
  const ClientStats stats = app->GetStats();
  EXPECT_EQ(stats.cookies_rejected, 302u);
  EXPECT_EQ(stats.cookies_foreign_server, 3u);
  for (const auto& [server, count] : stats.connections_opened) {
    EXPECT_NE(ServerById(server), nullptr) << "connected to " << server << " (" << count << ")";
  }
}

TEST_F(ClientTest, AnOwnerThatAnswersLockedIsNotFailedOver) {
  auto app = NewClient();
  const std::string cookie = AddItem(app.get(), "", "a");
  std::unique_ptr<Session> holder;
  ASSERT_TRUE(app->Load(cookie, true, &holder).ok());
  ClientOptions quick;
  quick.lock_wait_ms = 50;
  auto other = NewClient(quick);
  std::unique_ptr<Session> s;
  const Status st = other->Load(cookie, true, &s);
  EXPECT_FALSE(st.ok()) << "a second lock on another server would break exclusivity";
  EXPECT_EQ(other->GetStats().failovers, 0u);
  ASSERT_TRUE(app->Abandon(holder.get()).ok());
}

TEST_F(ClientTest, SignOutWithoutTheLockIsRefusedNotFaked) {
  auto app = NewClient();
  const std::string cookie = AddItem(app.get(), "", "secret");
  std::unique_ptr<Session> holder;
  ASSERT_TRUE(app->Load(cookie, true, &holder).ok());
  auto other = NewClient();
  ClientOptions quick;
  quick.lock_wait_ms = 50;
  auto impatient = NewClient(quick);
  std::unique_ptr<Session> ro;
  ASSERT_FALSE(impatient->Load(cookie, false, &ro).ok()) << "locked: the read waits, then fails";
  std::string next;
  ASSERT_TRUE(app->Commit(holder.get(), &next).ok());
  ASSERT_TRUE(other->Load(next, false, &ro).ok());
  EXPECT_EQ(ro->Get("cart").value_or(""), "secret;") << "nothing removed it behind the lock";
}

TEST_F(ClientTest, RegenerateAfterASignOutDoesNotBringTheSessionBack) {
  auto app = NewClient();
  const std::string cookie = AddItem(app.get(), "", "secret");
  std::unique_ptr<Session> slow;
  ASSERT_TRUE(app->Load(cookie, true, &slow).ok());
  ClientOptions impatient;
  impatient.request_timeout_ms = 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto signout_app = NewClient(impatient);
  std::unique_ptr<Session> s;
  ASSERT_TRUE(signout_app->Load(cookie, true, &s).ok());
  std::string cleared;
  ASSERT_TRUE(signout_app->Destroy(s.get(), &cleared).ok());
  EXPECT_FALSE(app->Regenerate(slow.get()).ok()) << "signed out meanwhile";
  std::string ignored;
  EXPECT_FALSE(app->Commit(slow.get(), &ignored).ok());
  EXPECT_TRUE(Read(app.get(), cookie)->is_new());
}

TEST_F(ClientTest, RegenerateMovesTheDataAndRemovesTheOldId) {
  auto app = NewClient();
  const std::string cookie = AddItem(app.get(), "", "cart");
  std::unique_ptr<Session> s;
  ASSERT_TRUE(app->Load(cookie, true, &s).ok());
  const std::string old_id = s->id();
  ASSERT_TRUE(app->Regenerate(s.get()).ok());
  EXPECT_NE(s->id(), old_id);
  s->Set("user", "ada");
  std::string fresh;
  ASSERT_TRUE(app->Commit(s.get(), &fresh).ok());
  auto now = Read(app.get(), fresh);
  EXPECT_EQ(now->Get("cart").value_or(""), "cart;");
  EXPECT_EQ(now->Get("user").value_or(""), "ada");
  EXPECT_TRUE(Read(app.get(), cookie)->is_new()) << "the pre-sign-in id is gone";
}

TEST_F(ClientTest, AFailedCommitDoesNotLeaveTheLockBehind) {
  auto app = NewClient();
  const std::string cookie = AddItem(app.get(), "", "a");
  std::unique_ptr<Session> s;
  ASSERT_TRUE(app->Load(cookie, true, &s).ok());
  s->SetRaw(std::string(2 << 20, 'x'));  // over the server's 1 MiB limit
  std::string ignored;
  const Status st = app->Commit(s.get(), &ignored);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  ClientOptions quick;
  quick.lock_wait_ms = 50;
  auto next = NewClient(quick);
  std::unique_ptr<Session> again;
  EXPECT_TRUE(next->Load(cookie, true, &again).ok()) << "the lock was released";
}

TEST_F(ClientTest, ACookieNamingAnAddressOutsideTheViewIsNeverConnected) {
  // A listener on loopback that is not in the view: a cookie names it; nothing may connect.
  const Trap trap;
  auto app = NewClient();
  CookieSealer ours(keys_);
  for (bool exclusive : {false, true}) {
    std::unique_ptr<Session> s;
    ASSERT_TRUE(app->Load(ours.Seal({NewSessionId(), trap.id()}), exclusive, &s).ok());
  }
  EXPECT_FALSE(trap.Connected()) << "the client connected to " << trap.id();
  EXPECT_EQ(app->GetStats().cookies_foreign_server, 2u);
}

TEST_F(ClientTest, TheRegistryViewAddsServersAndSteersNewSessionsAwayFromDraining) {
  ClientOptions options;
  options.servers.push_back({"127.0.0.1", servers_[0]->port()});  // a seed: one server only
  options.keys = keys_;
  options.registry = "127.0.0.1:" + std::to_string(redis_.port());
  options.view_refresh_ms = 20;
  Status st;
  auto app = SessionClient::Create(options, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto eventually = [](auto cond) {
    for (int i = 0; i < 250 && !cond(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return cond();
  };
  ASSERT_TRUE(eventually([&] { return app->GetStats().view_size == 2; }))
      << "the second server is discovered through the registry";
  auto placements = [&](int n) {
    std::map<std::string, int> by_server;
    for (int i = 0; i < n; ++i) {
      std::unique_ptr<Session> s;
      EXPECT_TRUE(app->Load("", true, &s).ok());
      if (s == nullptr) continue;
      ++by_server[s->server_id()];
      EXPECT_TRUE(app->Abandon(s.get()).ok());
    }
    return by_server;
  };
  EXPECT_EQ(placements(40).size(), 2u) << "new sessions land on both servers";

  const std::string drained = "127.0.0.1:" + std::to_string(servers_[1]->port());
  fleet::Registry registry({{"127.0.0.1", redis_.port()}}, /*cluster=*/false);
  ASSERT_TRUE(registry.SetDrain(drained, true).ok());
  ASSERT_TRUE(eventually([&] {
    TestClient c(servers_[1]->port());
    thrift::ServerInfo info;
    c->info(info);
    return info.state != "active";  // the registry says so from the same heartbeat
  }));
  const uint64_t seen = app->GetStats().view_refreshes;  // refreshes from here on see it
  ASSERT_TRUE(eventually([&] { return app->GetStats().view_refreshes > seen + 1; }));
  const auto after = placements(30);
  EXPECT_EQ(after.count(drained), 0u) << "no new session on a draining server";
}

// A drain under traffic: the draining server takes no new sessions, and hands each session off
// (MOVED) only once Redis has its changes, so every request succeeds on the other server with the
// latest data; a request holding a lock there finishes there first.
TEST_F(ClientTest, DrainHandsEverySessionOffWithItsLatestDataAndFailsNoRequest) {
  ClientOptions options;
  options.registry = "127.0.0.1:" + std::to_string(redis_.port());
  options.view_refresh_ms = 50;
  auto app = NewClient(options);
  std::vector<std::string> cookies;  // sessions owned by server 1, each with items "a;b;"
  for (int i = 0; cookies.size() < 6 && i < 200; ++i) {
    std::string c = AddItem(app.get(), "", "a");
    auto s = Read(app.get(), c);
    if (s != nullptr && s->server_id() == Id(1)) cookies.push_back(AddItem(app.get(), c, "b"));
  }
  ASSERT_EQ(cookies.size(), 6u);
  std::unique_ptr<Session> held;  // a request in flight on server 1 when the drain starts
  ASSERT_TRUE(app->Load(cookies[0], /*exclusive=*/true, &held).ok());
  ASSERT_EQ(held->server_id(), Id(1));

  fleet::Registry registry("127.0.0.1", redis_.port());
  ASSERT_TRUE(registry.SetDrain(Id(1), true).ok());
  ASSERT_TRUE(Eventually([&] { return State(1) != "active"; }));
  EXPECT_EQ(State(1), "draining") << "a session is still locked there and may change";

  for (size_t i = 1; i < cookies.size(); ++i) {
    cookies[i] = AddItem(app.get(), cookies[i], "c");
    auto s = Read(app.get(), cookies[i]);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->server_id(), Id(0)) << "handed off";
    EXPECT_EQ(s->Get("cart").value_or(""), "a;b;c;");
  }
  held->Set("cart", held->Get("cart").value_or("") + "held;");
  ASSERT_TRUE(app->Commit(held.get(), &cookies[0]).ok()) << "the lock holder finishes there";
  cookies[0] = AddItem(app.get(), cookies[0], "c");
  auto s0 = Read(app.get(), cookies[0]);
  EXPECT_EQ(s0->server_id(), Id(0));
  EXPECT_EQ(s0->Get("cart").value_or(""), "a;b;held;c;");
  EXPECT_GE(Counter(1, "handoffs"), 6);
  EXPECT_GE(app->GetStats().handoffs_followed, 6u);
  for (int i = 0; i < 10; ++i) {
    auto fresh = Read(app.get(), AddItem(app.get(), "", "new"));
    EXPECT_EQ(fresh->server_id(), Id(0)) << "no new session on a draining server";
  }
  ASSERT_TRUE(Eventually([&] { return State(1) == "drained"; }));
  EXPECT_EQ(Counter(1, "wb_queue_depth"), 0);
  servers_[1]->Stop(SIGKILL);  // drained: nothing is lost even without a graceful stop
  for (size_t i = 0; i < cookies.size(); ++i) {
    EXPECT_EQ(Read(app.get(), cookies[i])->Get("cart").value_or(""),
              i == 0 ? "a;b;held;c;" : "a;b;c;");
  }
}

// The registry is read at once after a server could not be reached, not only every
// view_refresh_ms (a minute here): a dead server leaves the view within the failed request's
// moment.
TEST_F(ClientTest, AServerThatCannotBeReachedMakesTheClientReadTheRegistryAtOnce) {
  ClientOptions options;
  options.registry = "127.0.0.1:" + std::to_string(redis_.port());
  options.view_refresh_ms = 60'000;
  fleet::Registry registry("127.0.0.1", redis_.port());
  ASSERT_TRUE(Eventually([&] {  // both servers have registered (their first heartbeat)
    std::vector<fleet::Member> members;
    return registry.List(&members).ok() && members.size() == 2;
  }));
  auto app = NewClient(options);
  // The first registry read (at start) is done, with both servers in it.
  ASSERT_TRUE(Eventually([&] { return app->GetStats().view_refreshes == 1; }));
  ASSERT_EQ(app->GetStats().view_size, 2u);
  std::string owner;
  const std::string cookie = NewSessionOn(app.get(), 1, &owner);
  ASSERT_EQ(owner, Id(1));
  servers_[1]->Stop(SIGKILL);
  ASSERT_TRUE(Eventually([&] {  // its entry expires (3 heartbeats)
    std::vector<fleet::Member> members;
    return registry.List(&members).ok() && members.size() == 1;
  }));
  const uint64_t refreshes = app->GetStats().view_refreshes;
  std::string served_by;
  AddItem(app.get(), cookie, "b", &served_by);  // server 1 refuses: failover, and a refresh
  EXPECT_EQ(served_by, Id(0));
  EXPECT_TRUE(Eventually([&] { return app->GetStats().view_size == 1; }, 5'000))
      << "not waiting for the next periodic refresh";
  EXPECT_GT(app->GetStats().view_refreshes, refreshes);
}

// After a drain and an undrain, a request with a cookie from before the hand-off (an old tab, a
// lost response) goes to the undrained server again: it must not find the copy it handed off.
TEST_F(ClientTest, AnUndrainedServerNeverServesTheCopyItHandedOff) {
  ClientOptions options;
  options.registry = "127.0.0.1:" + std::to_string(redis_.port());
  options.view_refresh_ms = 50;
  auto app = NewClient(options);
  std::string owner;
  const std::string old_cookie = NewSessionOn(app.get(), 1, &owner);
  ASSERT_EQ(owner, Id(1));
  fleet::Registry registry("127.0.0.1", redis_.port());
  ASSERT_TRUE(registry.SetDrain(Id(1), true).ok());
  ASSERT_TRUE(Eventually([&] { return State(1) != "active"; }));
  std::string served_by;
  AddItem(app.get(), old_cookie, "b", &served_by);  // handed off: continues on server 0
  ASSERT_EQ(served_by, Id(0));
  ASSERT_TRUE(Drained(servers_[0].get()));
  ASSERT_TRUE(registry.SetDrain(Id(1), false).ok());
  ASSERT_TRUE(Eventually([&] { return State(1) == "active"; }));
  auto s = Read(app.get(), old_cookie);  // the cookie names server 1 again
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->server_id(), Id(1));
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;") << "not the copy server 1 handed off";
}

// Rolling upgrade: a session moves to the other server while its own restarts, then back when
// the other one restarts. The restarted server's disk copy is older than what the other server
// wrote meanwhile: it must be brought up to date, not served.
TEST_F(ClientTest, ASessionThatMovesBackIsNotServedFromAStaleCopy) {
  auto app = NewClient();
  std::string cookie = AddItem(app.get(), "", "a");
  const int owner = Read(app.get(), cookie)->server_id() == Id(0) ? 0 : 1;
  const int other = 1 - owner;
  const int owner_port = servers_[owner]->port();
  // SIGTERM: the session goes to the owner's disk tier (and is in Redis).
  servers_[owner]->Stop(SIGTERM);
  cookie = AddItem(app.get(), cookie, "b");  // served by the other server
  EXPECT_EQ(Read(app.get(), cookie)->server_id(), Id(other));
  ASSERT_TRUE(StartAgain(owner, owner_port));  // warm, same address: its disk holds "a;" only
  ASSERT_TRUE(Drained(servers_[other].get()));
  servers_[other]->Stop(SIGKILL);
  cookie = AddItem(app.get(), cookie, "c");  // back to the first server
  auto s = Read(app.get(), cookie);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->server_id(), Id(owner));
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;c;") << "not the restarted server's stale copy";
  EXPECT_GE(Counter(owner, "superseded"), 1);
  EXPECT_GE(app->GetStats().revalidations, 1u);
}

// The pooled connections to a server that restarts are dead: the client must notice before
// using one, not fail the request over to another server (a needless move of the session).
TEST_F(ClientTest, ARestartedOwnerIsUsedAgainWithoutAFailover) {
  auto app = NewClient();
  std::string cookie = AddItem(app.get(), "", "a");
  cookie = AddItem(app.get(), cookie, "b");  // the owner's connection is now pooled
  const std::string owner_id = Read(app.get(), cookie)->server_id();
  const int owner = owner_id == Id(0) ? 0 : 1;
  const int port = servers_[owner]->port();
  servers_[owner]->Stop(SIGTERM);
  ASSERT_TRUE(StartAgain(owner, port));
  cookie = AddItem(app.get(), cookie, "c");
  auto s = Read(app.get(), cookie);
  EXPECT_EQ(s->server_id(), owner_id);
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;c;");
  EXPECT_EQ(app->GetStats().failovers, 0u);
  EXPECT_EQ(app->GetStats().rpc_errors, 0u);
}

// SIGTERM (a rolling upgrade): the server first hands its sessions off, so a request holding a
// lock there finishes there, and the next request finds the latest data on the other server.
TEST_F(ClientTest, SigtermLetsARequestInFlightFinishAndHandsTheSessionOff) {
  auto app = NewClient();
  std::string cookie = AddItem(app.get(), "", "a");
  std::unique_ptr<Session> held;
  ASSERT_TRUE(app->Load(cookie, /*exclusive=*/true, &held).ok());
  const int owner = held->server_id() == Id(0) ? 0 : 1;
  std::thread stopper([&] { servers_[owner]->Stop(SIGTERM); });
  EXPECT_TRUE(Eventually([&] { return State(owner) == "draining"; }));
  held->Set("cart", held->Get("cart").value_or("") + "b;");
  EXPECT_TRUE(app->Commit(held.get(), &cookie).ok()) << "the request in flight finishes";
  stopper.join();
  auto s = Read(app.get(), cookie);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->server_id(), Id(1 - owner));
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;");
}

// A request holding a lock on a server that leaves the view meanwhile (its registry entry lapsed:
// a late heartbeat, or the first one not written yet when the view was read) still saves there
// and leaves no lock behind. It used to fail with "server not in the membership view" and keep
// the lock (ClientTest.DrainHands... failed that way under TSan).
TEST_F(ClientTest, ARequestFinishesOnItsServerAfterTheServerLeftTheView) {
  RedisServer registry_redis;  // a registry this test writes: the servers do not heartbeat here
  ASSERT_TRUE(registry_redis.Start());
  fleet::Registry registry("127.0.0.1", registry_redis.port());
  auto heartbeat = [&](int i, int64_t ttl_ms) {
    fleet::Member me;
    me.id = me.address = Id(i);
    bool draining = false;
    return registry.Heartbeat(me, ttl_ms, &draining).ok();
  };
  ASSERT_TRUE(heartbeat(0, 60'000) && heartbeat(1, 60'000));
  ClientOptions options;
  options.registry = "127.0.0.1:" + std::to_string(registry_redis.port());
  options.view_refresh_ms = 20;
  auto app = NewClient(options);
  std::string owner;
  const std::string cookie = NewSessionOn(app.get(), 1, &owner);
  std::unique_ptr<Session> held;
  ASSERT_TRUE(app->Load(cookie, /*exclusive=*/true, &held).ok());
  ASSERT_EQ(held->server_id(), Id(1));
  ASSERT_TRUE(heartbeat(1, 1));  // server 1's entry lapses at once
  ASSERT_TRUE(Eventually([&] { return app->GetStats().view_size == 1; }));
  held->Set("cart", "a;b;");
  std::string next;
  ASSERT_TRUE(app->Commit(held.get(), &next).ok());
  ClientOptions quick;
  quick.lock_wait_ms = 50;
  auto other = NewClient(quick);  // both servers in its view
  std::unique_ptr<Session> s;
  ASSERT_TRUE(other->Load(next, /*exclusive=*/true, &s).ok()) << "the lock was released";
  EXPECT_EQ(s->server_id(), Id(1));
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;");
  EXPECT_TRUE(other->Abandon(s.get()).ok());
}

// The registry on a Redis Cluster (ClientOptions::registry_is_cluster): the view is read
// from the cluster the servers heartbeat into, and a drain there steers new sessions away.
TEST(ClientClusterTest, TheRegistryViewIsReadFromARedisCluster) {
  RedisCluster cluster;
  ASSERT_TRUE(cluster.Start());
  TempDir dir("ss-client-cluster");
  std::vector<std::unique_ptr<ServerProcess>> servers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(std::make_unique<ServerProcess>());
    ASSERT_TRUE(servers.back()->Start({"--redis_cluster=" + cluster.Seeds(),
                                       "--data_dir=" + dir.path() + "/s" + std::to_string(i),
                                       "--heartbeat_ms=100"}));
  }
  ClientOptions options;
  options.servers.push_back({"127.0.0.1", servers[0]->port()});  // a seed: one server only
  options.keys = CookieKeySet::Generate();
  options.registry = cluster.Seeds();
  options.registry_is_cluster = true;
  options.view_refresh_ms = 20;
  Status st;
  auto app = SessionClient::Create(options, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(RedisCluster::Poll(5000, [&] { return app->GetStats().view_size == 2; }))
      << "the second server is discovered through the registry on the cluster";

  const std::string drained = "127.0.0.1:" + std::to_string(servers[1]->port());
  std::vector<HostPort> seeds;
  ASSERT_TRUE(ParseHostPortList(cluster.Seeds(), &seeds).ok());
  fleet::Registry registry(seeds, /*cluster=*/true);
  ASSERT_TRUE(registry.SetDrain(drained, true).ok());
  std::vector<fleet::Member> members;
  ASSERT_TRUE(RedisCluster::Poll(5000, [&] {
    return registry.List(&members).ok() && members.size() == 2 &&
           (members[0].state == fleet::ServerState::kDraining ||
            members[1].state == fleet::ServerState::kDraining);
  }));
  const uint64_t seen = app->GetStats().view_refreshes;
  ASSERT_TRUE(RedisCluster::Poll(5000, [&] { return app->GetStats().view_refreshes > seen + 1; }));
  for (int i = 0; i < 20; ++i) {
    std::unique_ptr<Session> s;
    ASSERT_TRUE(app->Load("", true, &s).ok());
    EXPECT_NE(s->server_id(), drained) << "no new session on a draining server";
    EXPECT_TRUE(app->Abandon(s.get()).ok());
  }

  options.registry_is_cluster = false;  // a list of nodes is a cluster's seeds, nothing else
  EXPECT_EQ(SessionClient::Create(options, &st), nullptr);
  EXPECT_FALSE(st.ok());
}

TEST(ClientOptionsTest, KeysThatWereNeverLoadedAreRefused) {
  ClientOptions options;
  options.servers.push_back({"127.0.0.1", 7500});
  Status st;
  EXPECT_EQ(SessionClient::Create(options, &st), nullptr);
  EXPECT_FALSE(st.ok());
  options.keys = CookieKeySet::Generate();
  EXPECT_NE(SessionClient::Create(options, &st), nullptr) << st.ToString();
  CookieSealer sealer(options.keys);
  EXPECT_EQ(sealer.Seal({"id", "1.2.3.4:1"}).size(), sealer.Seal({"id", "10.20.30.40:7500"}).size())
      << "the cookie's length must not tell which server owns the session";
}

}  // namespace
}  // namespace sessionserver::client
