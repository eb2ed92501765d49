#include "server/heartbeat.h"

#include <glog/logging.h>

#include "util/clock.h"

namespace sessionserver {

Heartbeat::Heartbeat(HeartbeatOptions options, SessionHandler* handler)
    : options_(std::move(options)),
      handler_(handler),
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
  me.items = get("items");
  me.bytes = get("bytes");
  me.requests = get("requests_get") + get("requests_get_exclusive") + get("requests_put") +
                get("requests_remove") + get("requests_release_exclusive") +
                get("requests_reset_timeout");
  bool draining = false;
  const Status s = registry_->Heartbeat(me, 3 * options_.interval_ms, &draining);
  if (s.ok()) {
    handler_->SetState(draining ? "draining" : "active");
  } else {
    LOG_EVERY_N(WARNING, 30) << "heartbeat: " << s.ToString();
  }
}

}  // namespace sessionserver
