#include "server/heartbeat.h"

#include <glog/logging.h>

#include "util/clock.h"

namespace sessionserver {

using fleet::ServerState;

Heartbeat::Heartbeat(HeartbeatOptions options, SessionHandler* handler, WriteBehind* write_behind,
                     WriteBehind* replicator)
    : options_(std::move(options)),
      handler_(handler),
      write_behind_(write_behind),
      replicator_(replicator),
      registry_(std::make_unique<fleet::Registry>(options_.redis_nodes, options_.redis_cluster)),
      thread_(options_.interval_ms * 1000, [this] {
        Beat();
        return false;
      }) {}

void Heartbeat::Beat() {
  const std::map<std::string, int64_t> c = handler_->Counters();
  auto get = [&c](const char* name) {
    auto it = c.find(name);
    return it == c.end() ? int64_t{0} : it->second;
  };
  fleet::Member me;
  me.id = options_.server_id;
  me.address = options_.address;
  me.heartbeat_ms = SystemClock()->NowMicros() / 1000;
  me.dc = options_.dc;
  me.repl_pending = get("repl_queue_depth");
  me.repl_dropped = get("repl_dropped");
  me.items = get("items");
  me.bytes = get("bytes");
  me.requests = get("requests_get") + get("requests_get_exclusive") + get("requests_put") +
                get("requests_remove") + get("requests_release_exclusive") +
                get("requests_reset_timeout");
  const int64_t now_us = SystemClock()->NowMicros();
  if (last_requests_ >= 0 && now_us > last_beat_us_) {
    me.request_rate = (me.requests - last_requests_) * 1'000'000 / (now_us - last_beat_us_);
  }
  last_requests_ = me.requests;
  last_beat_us_ = now_us;
  me.state = handler_->State();
  bool draining = false;
  const Status s = registry_->Heartbeat(me, 3 * options_.interval_ms, &draining);
  if (!s.ok()) {
    LOG_EVERY_N(WARNING, 30) << "heartbeat: " << s.ToString();
    return;
  }
  if (!draining) {
    if (me.state != ServerState::kActive) LOG(INFO) << "undrained: active again";
    handler_->SetState(ServerState::kActive);
    return;
  }
  if (me.state == ServerState::kActive) {
    LOG(INFO) << "draining: no new sessions; sessions are handed off once Redis has them";
    handler_->SetState(ServerState::kDraining);
    return;  // drained at the earliest next beat: requests that began before this saw kActive
  }
  // Drained: no request holds a lock here (none can still change a session here) and Redis has
  // every change (counters read now, after this state was set a beat ago). The other data
  // centre's queue is written out too, but it is best effort: that site may be unreachable.
  if (replicator_ != nullptr) replicator_->Flush(options_.interval_ms * 250).ok();
  const bool flushed =
      handler_->Counters()["locks_held"] == 0 &&
      (write_behind_ == nullptr || write_behind_->Flush(options_.interval_ms * 250).ok());
  if (flushed && me.state != ServerState::kDrained) LOG(INFO) << "drained: Redis has every change";
  handler_->SetState(flushed ? ServerState::kDrained : ServerState::kDraining);
}

}  // namespace sessionserver
