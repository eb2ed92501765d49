// session_client across two data centres (docs/TWO_SITES.md "Client: swing routing"): two sites
// on loopback, each a real redis-server and two real session_server processes. The servers run
// without replication, so where a test needs "the other site's copy" of a session it writes that
// copy into the site by hand (a put on one of its servers, then waits until its Redis has it).
// The tests check routing: which site, which server, which counters.
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "fleet/registry.h"
#include "session_client/client.h"
#include "session_client/session_id.h"
#include "tests/blackbox/client_test_util.h"
#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver::client {
namespace {

int64_t Counter(int port, const std::string& name) {
  TestClient c(port);
  thrift::ServerInfo info;
  c->info(info);
  return info.counters[name];
}

// One data centre: its Redis (also its registry) and its servers.
struct TestSite {
  RedisServer redis;
  std::vector<std::unique_ptr<ServerProcess>> servers;

  bool Start(const std::string& dir) { return redis.Start() && StartServers(dir, {}); }
  // `extra`: more flags for each server (the replication flags).
  bool StartServers(const std::string& dir, const std::vector<std::string>& extra) {
    for (int i = 0; i < 2; ++i) {
      servers.push_back(std::make_unique<ServerProcess>());
      std::vector<std::string> flags = {"--redis=" + Registry(),
                                        "--data_dir=" + dir + "/s" + std::to_string(i),
                                        "--write_behind_delay_ms=10", "--heartbeat_ms=200"};
      flags.insert(flags.end(), extra.begin(), extra.end());
      if (!servers.back()->Start(flags)) return false;
    }
    return true;
  }
  std::string Registry() const { return "127.0.0.1:" + std::to_string(redis.port()); }
  std::string Id(int i) const { return "127.0.0.1:" + std::to_string(servers[i]->port()); }
  std::vector<HostPort> Addresses() const {
    std::vector<HostPort> out;
    for (const auto& s : servers) out.push_back({"127.0.0.1", s->port()});
    return out;
  }
  bool Has(const std::string& id) const { return id == Id(0) || id == Id(1); }
  void KillAll() {
    for (auto& s : servers) s->Stop(SIGKILL);
  }
  // Writes `data` as session `id` into this site the way the other site's replication would: on
  // server 0, then waits until this site's Redis has it (any server here can then restore it).
  bool PutCopy(const std::string& id, const std::string& data) {
    {
      TestClient c(servers[0]->port());
      if (c->put(id, data, 20, 0, false) != thrift::Status::OK) return false;
    }
    return Eventually([&] { return Counter(servers[0]->port(), "wb_queue_depth") == 0; });
  }
};

class TwoSiteClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.Start(dir_.path() + "/a"));
    ASSERT_TRUE(b_.Start(dir_.path() + "/b"));
    keys_ = CookieKeySet::Generate();
  }

  // A web app of site `local` that also knows site `remote` (or only its own site).
  std::unique_ptr<SessionClient> NewClient(const TestSite& local, const TestSite* remote,
                                           ClientOptions options = {}) {
    options.dc = &local == &a_ ? "a" : "b";
    options.servers = local.Addresses();
    if (remote != nullptr) options.remote_servers = remote->Addresses();
    return NewTestClient(std::move(options), keys_);
  }
  // A session of site A with cart "a;b;", and its copy in site B. Returns its cookie.
  std::string SessionOfSiteAWithACopyInSiteB() {
    auto app_a = NewClient(a_, &b_);
    std::string cookie = AddItem(app_a.get(), AddItem(app_a.get(), "", "a"), "b");
    auto s = Read(app_a.get(), cookie);
    EXPECT_TRUE(a_.Has(s->server_id()));
    EXPECT_TRUE(b_.PutCopy(s->id(), s->raw()));
    return cookie;
  }

  TempDir dir_{"ss-two-site"};
  TestSite a_, b_;
  CookieKeySet keys_;
};

// Swing routing: a user whose cookie names a server of site A arrives in site B; A is reachable,
// so site A serves the request (the owner holds the latest copy; B's lags by the replication).
TEST_F(TwoSiteClientTest, ACookieNamingTheOtherSitesServerIsServedThereWhileItIsReachable) {
  auto app_a = NewClient(a_, &b_);
  std::string owner;
  const std::string cookie = AddItem(app_a.get(), "", "a", &owner);
  ASSERT_TRUE(a_.Has(owner));
  EXPECT_EQ(app_a->GetStats().remote_calls, 0u) << "new sessions stay in their site";

  auto app_b = NewClient(b_, &a_);
  std::string served_by;
  const std::string next = AddItem(app_b.get(), cookie, "b", &served_by);
  EXPECT_EQ(served_by, owner);
  auto s = Read(app_b.get(), next);
  EXPECT_EQ(s->server_id(), owner) << "the cookie still names the site-A server";
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;");
  const ClientStats stats = app_b->GetStats();
  EXPECT_EQ(stats.dc, "b");
  EXPECT_EQ(stats.view_size, 2u);
  EXPECT_EQ(stats.remote_view_size, 2u);
  EXPECT_EQ(stats.remote_calls, 2u);
  EXPECT_EQ(stats.site_failovers, 0u);
  EXPECT_EQ(stats.failovers, 0u);
  EXPECT_EQ(stats.cookies_foreign_server, 0u);
}

// Site A is gone: the same cookie is served by site B from its copy, and the cookie then names
// the site-B server.
TEST_F(TwoSiteClientTest, WhenTheOtherSiteIsGoneItsSessionsAreServedFromThisSitesCopy) {
  const std::string cookie = SessionOfSiteAWithACopyInSiteB();
  a_.KillAll();
  auto app_b = NewClient(b_, &a_);
  std::string served_by;
  const std::string next = AddItem(app_b.get(), cookie, "c", &served_by);
  EXPECT_TRUE(b_.Has(served_by)) << served_by;
  auto s = Read(app_b.get(), next);
  EXPECT_EQ(s->server_id(), served_by) << "the cookie now names the site-B server";
  EXPECT_FALSE(s->is_new());
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;c;");
  const ClientStats stats = app_b->GetStats();
  EXPECT_EQ(stats.failovers, 1u);
  EXPECT_EQ(stats.remote_calls, 0u);
  EXPECT_EQ(stats.site_failovers, 0u) << "served by its own site";
  EXPECT_EQ(stats.new_sessions, 0u);
}

// No server of site A answers: a web app of site A places new sessions in site B, and serves the
// sessions its cookies place in site A from site B's copy.
TEST_F(TwoSiteClientTest, WhenNoServerOfThisSiteAnswersTheOtherSiteServesTheSessions) {
  const std::string cookie = SessionOfSiteAWithACopyInSiteB();
  auto app_a = NewClient(a_, &b_);
  a_.KillAll();
  std::string served_by;
  const std::string fresh = AddItem(app_a.get(), "", "new", &served_by);
  EXPECT_TRUE(b_.Has(served_by)) << served_by;
  EXPECT_EQ(app_a->GetStats().site_failovers, 1u);

  const std::string next = AddItem(app_a.get(), cookie, "c", &served_by);
  EXPECT_TRUE(b_.Has(served_by)) << served_by;
  auto s = Read(app_a.get(), next);
  EXPECT_FALSE(s->is_new());
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;c;");
  EXPECT_EQ(Read(app_a.get(), fresh)->Get("cart").value_or(""), "new;");
  const ClientStats stats = app_a->GetStats();
  EXPECT_EQ(stats.site_failovers, 2u) << "the first request of each session";
  EXPECT_EQ(stats.remote_calls, 4u) << "every request, now that the cookies name site B";
  EXPECT_EQ(stats.new_sessions, 1u);
}

// A draining site-A server hands the session off (MOVED): the request goes to site B (this
// site), not to the other site-A server.
TEST_F(TwoSiteClientTest, AHandOffByTheOtherSitesServerFailsOverToThisSite) {
  const std::string cookie = SessionOfSiteAWithACopyInSiteB();
  auto app_a = NewClient(a_, &b_);
  const int owner = Read(app_a.get(), cookie)->server_id() == a_.Id(0) ? 0 : 1;
  fleet::Registry registry("127.0.0.1", a_.redis.port());
  ASSERT_TRUE(registry.SetDrain(a_.Id(owner), true).ok());
  ASSERT_TRUE(Eventually([&] {
    TestClient c(a_.servers[owner]->port());
    thrift::ServerInfo info;
    c->info(info);
    return info.state != "active";
  }));
  auto app_b = NewClient(b_, &a_);
  std::string served_by;
  AddItem(app_b.get(), cookie, "c", &served_by);
  EXPECT_TRUE(b_.Has(served_by)) << served_by;
  EXPECT_EQ(app_b->GetStats().handoffs_followed, 1u);
  EXPECT_EQ(app_b->GetStats().site_failovers, 0u);
  EXPECT_GE(Counter(a_.servers[owner]->port(), "handoffs"), 1);
}

// The security rule still holds with two sites: both sites' servers are in the view, anything
// else a cookie names is never connected.
TEST_F(TwoSiteClientTest, ACookieNamingAnAddressInNeitherSiteIsNeverConnected) {
  const Trap trap;
  auto app_b = NewClient(b_, &a_);
  CookieSealer ours(keys_);
  for (bool exclusive : {false, true}) {
    std::unique_ptr<Session> s;
    ASSERT_TRUE(app_b->Load(ours.Seal({NewSessionId(), trap.id()}), exclusive, &s).ok());
    EXPECT_TRUE(s->is_new());
    EXPECT_TRUE(b_.Has(s->server_id())) << "placed in this site";
  }
  EXPECT_FALSE(trap.Connected()) << "the client connected to " << trap.id();
  const ClientStats stats = app_b->GetStats();
  EXPECT_EQ(stats.cookies_foreign_server, 2u);
  for (const auto& [server, count] : stats.connections_opened) {
    EXPECT_TRUE(a_.Has(server) || b_.Has(server)) << "connected to " << server;
  }
}

// The other site's servers come from its registry, like this site's from its own.
TEST_F(TwoSiteClientTest, TheOtherSitesRegistryBringsItsServersIntoTheView) {
  ClientOptions options;
  options.registry = b_.Registry();
  options.remote_registry = a_.Registry();
  options.view_refresh_ms = 20;
  auto app_b = NewClient(b_, nullptr, options);
  ASSERT_TRUE(Eventually([&] {
    const ClientStats stats = app_b->GetStats();
    return stats.view_size == 2 && stats.remote_view_size == 2;  // each server's first heartbeat
  }));
  auto app_a = NewClient(a_, nullptr);
  std::string owner;
  const std::string cookie = AddItem(app_a.get(), "", "a", &owner);
  std::string served_by;
  AddItem(app_b.get(), cookie, "b", &served_by);
  EXPECT_EQ(served_by, owner) << "a discovered site-A server is affinity";
  EXPECT_EQ(app_b->GetStats().remote_calls, 1u);
  EXPECT_EQ(app_b->GetStats().cookies_foreign_server, 0u);
}

TEST(TwoSiteClientOptionsTest, AServerInBothSitesOrOneRegistryForBothIsRefused) {
  ClientOptions options;
  options.keys = CookieKeySet::Generate();
  options.servers = {{"127.0.0.1", 7500}, {"127.0.0.1", 7501}};
  options.remote_servers = {{"127.0.0.1", 7501}};
  Status st;
  EXPECT_EQ(SessionClient::Create(options, &st), nullptr);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  options.remote_servers = {{"127.0.0.1", 8500}};
  options.registry = options.remote_registry = "127.0.0.1:6379";
  EXPECT_EQ(SessionClient::Create(options, &st), nullptr);
  options.remote_registry = "127.0.0.1:6380";
  EXPECT_NE(SessionClient::Create(options, &st), nullptr) << st.ToString();
  options.remote_registry = "no-port";
  EXPECT_EQ(SessionClient::Create(options, &st), nullptr);
}

// The whole story with real replication between the sites: a user of site A swings to site B
// (served through site A while it lives), then site A is lost (every process): site B serves the
// session from the copy site A's servers replicated to it, with the latest data.
TEST(ReplicatingSitesTest, SwingThroughSiteAThenServedFromSiteBsReplicaWhenAIsGone) {
  TempDir dir("ss-two-site-repl");
  TestSite a, b;
  ASSERT_TRUE(a.redis.Start() && b.redis.Start());
  ASSERT_TRUE(a.StartServers(dir.path() + "/a", {"--dc=a", "--remote_registry=" + b.Registry(),
                                                 "--replication_delay_ms=10"}));
  ASSERT_TRUE(b.StartServers(dir.path() + "/b", {"--dc=b", "--remote_registry=" + a.Registry(),
                                                 "--replication_delay_ms=10"}));
  const CookieKeySet keys = CookieKeySet::Generate();
  auto client_of = [&keys](const TestSite& local, const TestSite& remote, const char* dc) {
    ClientOptions options;
    options.dc = dc;
    options.servers = local.Addresses();
    options.remote_servers = remote.Addresses();
    return NewTestClient(std::move(options), keys);
  };
  auto app_a = client_of(a, b, "a");
  auto app_b = client_of(b, a, "b");
  std::string owner, served_by;
  std::string cookie = AddItem(app_a.get(), AddItem(app_a.get(), "", "a", &owner), "b");
  ASSERT_TRUE(a.Has(owner));
  cookie = AddItem(app_b.get(), cookie, "c", &served_by);  // the user swings to site B
  EXPECT_EQ(served_by, owner) << "served through site A while it is reachable";
  EXPECT_GE(app_b->GetStats().remote_calls, 1u);
  ASSERT_TRUE(Eventually([&] {
    return Counter(a.servers[0]->port(), "repl_queue_depth") == 0 &&
           Counter(a.servers[1]->port(), "repl_queue_depth") == 0;
  })) << "site A replicated everything (the replication delay)";
  a.KillAll();
  a.redis.Kill();
  auto s = Read(app_b.get(), cookie);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(b.Has(s->server_id())) << s->server_id();
  EXPECT_EQ(s->Get("cart").value_or(""), "a;b;c;") << "site B's replica has the latest data";
  cookie = AddItem(app_b.get(), cookie, "d", &served_by);
  EXPECT_TRUE(b.Has(served_by));
  EXPECT_EQ(Read(app_b.get(), cookie)->Get("cart").value_or(""), "a;b;c;d;");
}

}  // namespace
}  // namespace sessionserver::client
