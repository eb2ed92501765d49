// RemoteSite: the other data centre's fleet seen as a BackingStore, so that the replication
// queue is a WriteBehind (coalescing, batching, ordered retries with backoff, a memory bound)
// whose writes go to the other site's servers (SessionService.replicate) instead of Redis. Each
// change goes to the member that rendezvous hashing on its session id ranks first, which is
// the server the other site's clients go to for that session; if it cannot be reached, to the
// next one. The members come from a static list or from the other site's registry (re-read at
// most every refresh interval). docs/TWO_SITES.md.
//
// Thread-safety: Apply from one thread at a time (the queue's flusher); GetStats from any.
#ifndef SESSIONSERVER_SERVER_REMOTE_SITE_H_
#define SESSIONSERVER_SERVER_REMOTE_SITE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fleet/registry.h"
#include "storage/backing_store.h"
#include "util/clock.h"
#include "util/host_port.h"
#include "util/mutex.h"

namespace sessionserver {

struct RemoteSiteOptions {
  std::string dc;  // this site's name, sent with every batch
  // The other site's servers, each as HostPort::ToString text (the text is the member's id, the
  // key rendezvous hashing ranks), or
  std::vector<std::string> servers;
  std::optional<HostPort> registry;  // the other site's registry (Redis)
  int64_t refresh_ms = 1000;         // registry re-read interval
  int64_t timeout_ms = 2000;         // connect, send and receive, per call
  // Bytes per replicate call (values, ids and 64 per op), well under the receiver's frame limit
  // (FrameLimit of its --max_value_bytes, storage/limits.h): one op alone always fits if both
  // sites use the same --max_value_bytes (docs/TWO_SITES.md).
  size_t max_call_bytes = 1u << 20;
  size_t max_call_ops = 512;  // under the receiver's container limit (1024)
};

class RemoteSite : public BackingStore {
 public:
  explicit RemoteSite(RemoteSiteOptions options);
  ~RemoteSite() override;

  Status Apply(const std::vector<BackingOp>& ops, std::vector<BackingOutcome>* outcomes) override;
  // Not readable: a server never reads the other site's sessions directly.
  Status Get(std::string_view id, ItemRecord* item, bool* found) override;
  BackingStoreStats GetStats() const override;

  // The other site's members as last read.
  std::vector<std::string> Members() const EXCLUDES(mu_);

 private:
  struct Connection;
  void RefreshMembers();  // on the flusher thread
  // Sends ops[idx...] (one call per max_call_bytes) to `server`; fills their outcomes.
  Status Send(const std::string& server, const std::vector<BackingOp>& ops,
              const std::vector<size_t>& idx, std::vector<BackingOutcome>* outcomes);

  const RemoteSiteOptions options_;
  std::unique_ptr<fleet::Registry> registry_;  // null with a static list
  int64_t next_refresh_us_ = 0;
  std::map<std::string, std::unique_ptr<Connection>> connections_;  // flusher thread only
  mutable Mutex mu_;
  std::vector<std::string> members_ GUARDED_BY(mu_);
  std::atomic<uint64_t> applied_{0}, stale_{0}, round_trips_{0}, errors_{0}, reconnects_{0};
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_REMOTE_SITE_H_
