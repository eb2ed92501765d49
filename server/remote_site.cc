#include "server/remote_site.h"

#include <glog/logging.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include <algorithm>

#include "SessionService.h"
#include "util/rendezvous.h"

namespace sessionserver {

using apache::thrift::TException;

namespace {

thrift::ReplicaKind::type ToThrift(BackingOp::Kind kind) {
  switch (kind) {
    case BackingOp::Kind::kPut:
      return thrift::ReplicaKind::PUT;
    case BackingOp::Kind::kRemove:
      return thrift::ReplicaKind::REMOVE;
    case BackingOp::Kind::kTouch:
      return thrift::ReplicaKind::TOUCH;
  }
  return thrift::ReplicaKind::TOUCH;
}

// A result this sender does not know (a newer receiver's) counts as rejected: not retried.
BackingOutcome FromThrift(int32_t result) {
  switch (result) {
    case thrift::ReplicaResult::APPLIED:
      return BackingOutcome::kApplied;
    case thrift::ReplicaResult::STALE:
      return BackingOutcome::kStale;
    case thrift::ReplicaResult::IGNORED:
      return BackingOutcome::kIgnored;
    case thrift::ReplicaResult::REJECTED:
      return BackingOutcome::kRejected;
  }
  return BackingOutcome::kRejected;
}

}  // namespace

struct RemoteSite::Connection {
  std::shared_ptr<apache::thrift::transport::TTransport> transport;
  std::unique_ptr<thrift::SessionServiceClient> client;
};

RemoteSite::RemoteSite(RemoteSiteOptions options) : options_(std::move(options)) {
  if (options_.registry.has_value()) {
    registry_ = std::make_unique<fleet::Registry>(options_.registry->host, options_.registry->port,
                                                  options_.timeout_ms);
  }
  MutexLock l(&mu_);
  members_ = options_.servers;
}

RemoteSite::~RemoteSite() = default;

std::vector<std::string> RemoteSite::Members() const {
  MutexLock l(&mu_);
  return members_;
}

void RemoteSite::RefreshMembers() {
  if (registry_ == nullptr) return;
  const int64_t now = SystemClock()->NowMicros();
  if (now < next_refresh_us_) return;
  next_refresh_us_ = now + options_.refresh_ms * 1000;
  std::vector<fleet::Member> members;
  if (!registry_->List(&members).ok() || members.empty()) return;  // keep the last view
  // Active members only: clients of that site fail over to those (draining ones hand off).
  std::vector<std::string> addresses;
  for (const fleet::Member& m : members) {
    if (m.state == fleet::ServerState::kActive) addresses.push_back(m.address);
  }
  if (addresses.empty()) {  // all draining: better than none
    for (const fleet::Member& m : members) addresses.push_back(m.address);
  }
  MutexLock l(&mu_);
  members_ = std::move(addresses);
}

Status RemoteSite::Apply(const std::vector<BackingOp>& ops, std::vector<BackingOutcome>* outcomes) {
  RefreshMembers();
  const std::vector<std::string> members = Members();
  if (members.empty()) return Status::Unavailable("no server of the other site is known");
  outcomes->assign(ops.size(), BackingOutcome::kIgnored);
  // Each op's members by rank; rank[i] is the candidate op i is at.
  std::vector<std::vector<const std::string*>> ranked(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    for (const std::string& m : members) ranked[i].push_back(&m);
    std::sort(ranked[i].begin(), ranked[i].end(), [&](const std::string* a, const std::string* b) {
      return RendezvousScore(*a, ops[i].item.id) > RendezvousScore(*b, ops[i].item.id);
    });
  }
  std::vector<size_t> rank(ops.size(), 0);
  std::vector<size_t> todo(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) todo[i] = i;
  Status last = Status::OK();
  while (!todo.empty()) {
    std::map<std::string, std::vector<size_t>> by_server;
    for (size_t i : todo) {
      if (rank[i] >= members.size()) return last;  // no member could take it: retry later
      by_server[*ranked[i][rank[i]]].push_back(i);
    }
    todo.clear();
    for (const auto& [server, idx] : by_server) {
      Status s = Send(server, ops, idx, outcomes);
      if (s.ok()) continue;
      last = s;
      for (size_t i : idx) {  // on to each op's next candidate
        ++rank[i];
        todo.push_back(i);
      }
    }
  }
  return Status::OK();
}

Status RemoteSite::Send(const std::string& server, const std::vector<BackingOp>& ops,
                        const std::vector<size_t>& idx, std::vector<BackingOutcome>* outcomes) {
  auto& conn = connections_[server];
  HostPort address;
  if (conn == nullptr) {
    const Status s = ParseHostPort(server, &address);  // a registry entry may hold anything
    if (!s.ok()) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      LOG_EVERY_N(WARNING, 50) << "replication: " << s.ToString();
      return s;
    }
  }
  try {
    if (conn == nullptr) {
      auto socket =
          std::make_shared<apache::thrift::transport::TSocket>(address.host, address.port);
      socket->setConnTimeout(static_cast<int>(options_.timeout_ms));
      socket->setRecvTimeout(static_cast<int>(options_.timeout_ms));
      socket->setSendTimeout(static_cast<int>(options_.timeout_ms));
      auto c = std::make_unique<Connection>();
      c->transport = std::make_shared<apache::thrift::transport::TFramedTransport>(socket);
      c->client = std::make_unique<thrift::SessionServiceClient>(
          std::make_shared<apache::thrift::protocol::TBinaryProtocol>(c->transport));
      c->transport->open();
      conn = std::move(c);
      reconnects_.fetch_add(1, std::memory_order_relaxed);
    }
    for (size_t begin = 0; begin < idx.size();) {
      std::vector<thrift::ReplicaOp> call;
      size_t bytes = 0, end = begin;
      for (; end < idx.size() && end - begin < options_.max_call_ops; ++end) {
        const BackingOp& op = ops[idx[end]];
        const size_t op_bytes = op.data().size() + op.item.id.size() + 64;
        if (end > begin && bytes + op_bytes > options_.max_call_bytes) break;
        thrift::ReplicaOp r;
        r.sessionId = op.item.id;
        r.kind = ToThrift(op.kind);
        if (op.kind == BackingOp::Kind::kPut) r.data.assign(op.data());
        r.timeoutMinutes = op.item.timeout_minutes;
        r.version = static_cast<int64_t>(op.item.version);
        r.expiresAtUs = op.item.expires_at_us;
        r.uninitialized = op.item.uninitialized;
        bytes += op_bytes;
        call.push_back(std::move(r));
      }
      std::vector<int32_t> answers;
      conn->client->replicate(answers, call, options_.dc);
      round_trips_.fetch_add(1, std::memory_order_relaxed);
      if (answers.size() != call.size()) {
        throw apache::thrift::TApplicationException("replicate answered the wrong count");
      }
      for (size_t k = 0; k < answers.size(); ++k) {
        BackingOutcome& o = (*outcomes)[idx[begin + k]];
        o = FromThrift(answers[k]);
        if (o == BackingOutcome::kApplied) applied_.fetch_add(1, std::memory_order_relaxed);
        if (o == BackingOutcome::kStale) stale_.fetch_add(1, std::memory_order_relaxed);
        if (o == BackingOutcome::kRejected) {
          LOG_EVERY_N(ERROR, 100) << "the other site refuses the change of session "
                                  << call[k].sessionId;
        }
      }
      begin = end;
    }
    return Status::OK();
  } catch (const TException& e) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    conn.reset();
    LOG_EVERY_N(WARNING, 50) << "replication to " << server << ": " << e.what();
    return Status::Unavailable(server + ": " + e.what());
  }
}

Status RemoteSite::Get(std::string_view, ItemRecord*, bool*) {
  return Status::Unavailable("the other site is not read directly");
}

BackingStoreStats RemoteSite::GetStats() const {
  BackingStoreStats s;
  s.ops_applied = applied_.load(std::memory_order_relaxed);
  s.ops_stale = stale_.load(std::memory_order_relaxed);
  s.round_trips = round_trips_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  s.reconnects = reconnects_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace sessionserver
