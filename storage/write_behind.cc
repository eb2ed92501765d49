#include "storage/write_behind.h"

#include <glog/logging.h>

#include <algorithm>

namespace sessionserver {
WriteBehind::WriteBehind(BackingStore* store, Clock* clock, const WriteBehindOptions& options)
    : store_(store), clock_(clock), options_(options) {
  thread_ = std::thread([this] { Run(); });
}

WriteBehind::~WriteBehind() {
  {
    MutexLock l(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  thread_.join();
}

void WriteBehind::Enqueue(BackingOp op) {
  MutexLock l(&mu_);
  ++stats_.enqueued;
  auto it = pending_.find(op.item.id);
  if (it == pending_.end()) {
    Pending p;
    p.first_enqueued_us = clock_->NowMicros();
    p.queued_seq = p.seq = ++next_seq_;
    pending_bytes_ += Bytes(op);
    order_.push_back(Slot{op.item.id, p.queued_seq});
    p.op = std::move(op);
    pending_.emplace(order_.back().id, std::move(p));
    return;
  }
  Pending& p = it->second;
  ++stats_.coalesced;
  const bool same_version = op.item.version == p.op.item.version;
  if (op.kind == BackingOp::Kind::kTouch) {
    if (same_version && p.op.kind != BackingOp::Kind::kRemove) {
      p.op.item.expires_at_us = std::max(p.op.item.expires_at_us, op.item.expires_at_us);
      p.seq = ++next_seq_;
      return;
    }
    if (op.item.version < p.op.item.version) return;  // the pending change is newer
  } else if (op.item.version < p.op.item.version) {
    return;  // an older state than the one pending: nothing to add
  }
  pending_bytes_ -= Bytes(p.op);
  pending_bytes_ += Bytes(op);
  p.op = std::move(op);
  p.seq = ++next_seq_;
}

WriteBehind::Pending* WriteBehind::Live(const Slot& slot) {
  auto it = pending_.find(slot.id);
  if (it == pending_.end() || it->second.queued_seq != slot.queued_seq) return nullptr;
  return &it->second;
}

void WriteBehind::TakeBatch(bool all, std::vector<BackingOp>* ops, std::vector<uint64_t>* seqs) {
  const int64_t due_before = clock_->NowMicros() - options_.delay_us;
  while (!order_.empty() && Live(order_.front()) == nullptr) order_.pop_front();
  for (const Slot& slot : order_) {
    if (ops->size() >= options_.max_batch_ops) break;
    Pending* p = Live(slot);
    if (p == nullptr || p->in_flight) continue;
    if (!all && p->first_enqueued_us > due_before) break;  // the queue is in enqueue order
    p->in_flight = true;
    ops->push_back(p->op);
    seqs->push_back(p->seq);
  }
}

void WriteBehind::Finish(const std::vector<BackingOp>& ops, const std::vector<uint64_t>& seqs,
                         const std::vector<BackingOutcome>& outcomes, bool written) {
  for (size_t i = 0; i < ops.size(); ++i) {
    auto it = pending_.find(ops[i].item.id);
    if (it == pending_.end()) continue;
    Pending& p = it->second;
    p.in_flight = false;
    if (!written) continue;
    ++stats_.flushed;
    if (outcomes[i] == BackingOutcome::kStale) ++stats_.stale;
    if (p.seq != seqs[i]) continue;  // a newer change was folded in while this one was written
    pending_bytes_ -= Bytes(p.op);
    pending_.erase(it);  // its order_ slot is now stale
  }
}

void WriteBehind::Run() {
  int64_t backoff_us = 0;
  while (true) {
    std::vector<BackingOp> ops;
    std::vector<uint64_t> seqs;
    {
      MutexLock l(&mu_);
      if (backoff_us > 0) {  // the whole backoff; only stopping ends it early
        cv_.WaitFor(&mu_, backoff_us, [&]() REQUIRES(mu_) { return stopping_; });
      }
      if (stopping_) return;
      TakeBatch(flush_requests_ > 0, &ops, &seqs);
      if (ops.empty()) {
        cv_.WaitFor(&mu_, options_.idle_wait_us);
        continue;
      }
    }
    std::vector<BackingOutcome> outcomes;
    const Status s = store_->Apply(ops, &outcomes);
    MutexLock l(&mu_);
    Finish(ops, seqs, outcomes, s.ok());
    if (s.ok()) {
      backoff_us = 0;
    } else {
      ++stats_.retries;
      backoff_us = backoff_us == 0 ? options_.first_backoff_us
                                   : std::min(2 * backoff_us, options_.max_backoff_us);
      LOG_EVERY_N(WARNING, 20) << "write-behind: " << s.ToString() << "; " << pending_.size()
                               << " changes pending, retrying in " << backoff_us / 1000 << " ms";
    }
    cv_.SignalAll();  // Flush waiters
  }
}

Status WriteBehind::Flush(int64_t timeout_us) {
  MutexLock l(&mu_);
  ++flush_requests_;
  cv_.SignalAll();
  cv_.WaitFor(&mu_, timeout_us, [&]() REQUIRES(mu_) { return pending_.empty(); });
  --flush_requests_;
  if (pending_.empty()) return Status::OK();
  return Status::Unavailable(std::to_string(pending_.size()) +
                             " changes not yet written to the backing store");
}

WriteBehindStats WriteBehind::GetStats() const {
  MutexLock l(&mu_);
  WriteBehindStats s = stats_;
  s.pending = pending_.size();
  s.pending_bytes = pending_bytes_;
  for (const Slot& slot : order_) {
    auto it = pending_.find(slot.id);
    if (it != pending_.end() && it->second.queued_seq == slot.queued_seq) {
      s.oldest_pending_age_us = clock_->NowMicros() - it->second.first_enqueued_us;
      break;
    }
  }
  return s;
}

}  // namespace sessionserver
