#include "tools/locate.h"

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include <cstdio>
#include <memory>

#include "SessionService.h"
#include "storage/backing_store.h"
#include "util/host_port.h"

namespace sessionserver::fleet {
namespace {

constexpr int kTimeoutMs = 2000;

// Where the session is on the server at `address` (host:port), as one line of text.
std::string AskServer(const std::string& address, const std::string& id, bool* ok) {
  HostPort server;
  const Status s = ParseHostPort(address, &server);
  if (!s.ok()) {
    *ok = false;
    return s.message();
  }
  try {
    auto socket = std::make_shared<apache::thrift::transport::TSocket>(server.host, server.port);
    socket->setConnTimeout(kTimeoutMs);
    socket->setRecvTimeout(kTimeoutMs);
    socket->setSendTimeout(kTimeoutMs);
    auto transport = std::make_shared<apache::thrift::transport::TFramedTransport>(socket);
    thrift::SessionServiceClient client(
        std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport));
    transport->open();
    thrift::Location l;
    client.locate(l, id);
    transport->close();
    std::string out;
    auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
    if (l.inMemory) add("memory v" + std::to_string(l.memoryVersion) + (l.locked ? " locked" : ""));
    if (l.staged) {
      add(std::string(l.stagedRemoval ? "staged removal" : "staged for disk") + " v" +
          std::to_string(l.memoryVersion));
    }
    if (l.onDisk) add("disk v" + std::to_string(l.diskVersion));
    if (l.queued) add("queued " + l.queuedKind + " v" + std::to_string(l.queuedVersion));
    return out.empty() ? "-" : out;
  } catch (const thrift::InvalidRequest& e) {
    *ok = false;
    return "refused: " + e.message;
  } catch (const std::exception& e) {
    *ok = false;
    return std::string("unreachable: ") + e.what();
  }
}

}  // namespace

int Locate(const std::vector<HostPort>& redis, bool cluster, const std::vector<Member>& members,
           const std::string& session_id) {
  bool all_ok = true;
  for (const Member& m : members) {
    bool ok = true;
    const std::string where = AskServer(m.address, session_id, &ok);
    all_ok = all_ok && ok;
    std::printf("%-24s %-9s %s\n", m.id.c_str(), ToString(m.state), where.c_str());
  }
  RedisOptions ro;
  if (cluster) {
    ro.cluster_seeds = redis;
  } else {
    ro.host = redis.front().host;
    ro.port = redis.front().port;
  }
  Status s;
  std::unique_ptr<BackingStore> store = NewRedisBackingStore(ro, SystemClock(), &s);
  ItemRecord item;
  bool found = false;
  if (s.ok()) s = store->Get(session_id, &item, &found);
  if (!s.ok()) {
    std::printf("%-24s %-9s unreadable: %s\n", "redis", "", s.ToString().c_str());
    return 1;
  }
  if (found) {
    const int64_t left_s = (item.expires_at_us - SystemClock()->NowMicros()) / 1'000'000;
    std::printf("%-24s %-9s v%llu, %zu bytes, expires in %lld s\n", "redis", "",
                static_cast<unsigned long long>(item.version), item.data.size(),
                static_cast<long long>(left_s));
  } else if (item.version != 0) {
    std::printf("%-24s %-9s removed (tombstone v%llu)\n", "redis", "",
                static_cast<unsigned long long>(item.version));
  } else {
    std::printf("%-24s %-9s -\n", "redis", "");
  }
  return all_ok ? 0 : 1;
}

}  // namespace sessionserver::fleet
