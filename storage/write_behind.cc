#include "storage/write_behind.h"

#include <glog/logging.h>

#include <algorithm>

#include "storage/commit_group.h"

namespace sessionserver {
namespace {

// How long Lookup waits for a queued put's journal append before reading its value back.
constexpr int64_t kPersistWaitUs = 1'000'000;

}  // namespace

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

uint64_t WriteBehind::Enqueue(BackingOp op) {
  MutexLock l(&mu_);
  ++stats_.enqueued;
  if (options_.drop_when_full && pending_bytes_ + Bytes(op) > options_.max_pending_bytes &&
      pending_.count(op.item.id) == 0) {
    ++stats_.dropped;
    return 0;
  }
  return Add(std::move(op), 0);
}

uint64_t WriteBehind::Add(BackingOp op, uint64_t recovered_seq) {
  const bool is_touch = op.kind == BackingOp::Kind::kTouch;
  const bool persist = options_.journal != nullptr && !is_touch && recovered_seq == 0;
  uint64_t seq = recovered_seq;
  if (seq == 0) {
    seq = ++next_seq_;
  } else {
    next_seq_ = std::max(next_seq_, seq);
  }
  // A replayed put comes without its value: it stays in the journal until written.
  const uint64_t data_seq =
      recovered_seq != 0 && op.kind == BackingOp::Kind::kPut ? recovered_seq : 0;
  auto it = pending_.find(op.item.id);
  if (it == pending_.end()) {
    Pending p;
    p.first_enqueued_us = clock_->NowMicros();
    p.queued_seq = p.seq = seq;
    p.data_seq = data_seq;
    if (recovered_seq != 0) p.journaled.push_back(recovered_seq);
    if (persist) {
      p.unpersisted = 1;
      p.journaled.push_back(seq);
    }
    pending_bytes_ += Bytes(op);
    order_.push_back(Slot{op.item.id, p.queued_seq});
    p.op = std::move(op);
    Pending& placed = pending_.emplace(order_.back().id, std::move(p)).first->second;
    if (persist) Overflow(&placed, seq);
    return persist ? seq : 0;
  }
  Pending& p = it->second;
  ++stats_.coalesced;
  if (recovered_seq != 0) p.journaled.push_back(recovered_seq);  // erased with what is queued
  if (is_touch) {
    // A touch moves the expiry of the version queued; it never replaces a put or a remove.
    if (op.item.version == p.op.item.version && p.op.kind != BackingOp::Kind::kRemove) {
      p.op.item.expires_at_us = std::max(p.op.item.expires_at_us, op.item.expires_at_us);
      p.seq = seq;
    } else if (p.op.kind == BackingOp::Kind::kTouch && op.item.version > p.op.item.version) {
      p.op = std::move(op);
      p.seq = seq;
    }
    return 0;
  }
  if (op.item.version < p.op.item.version) return 0;  // an older state than the one queued
  pending_bytes_ -= Bytes(p.op);
  pending_bytes_ += Bytes(op);
  p.op = std::move(op);
  p.seq = seq;
  p.data_seq = data_seq;
  if (persist) {
    ++p.unpersisted;
    p.journaled.push_back(seq);
    Overflow(&p, seq);
  }
  return persist ? seq : 0;
}

void WriteBehind::Overflow(Pending* p, uint64_t seq) {
  if (pending_bytes_ <= options_.max_pending_bytes || p->op.kind != BackingOp::Kind::kPut ||
      p->op.data().empty()) {
    return;
  }
  pending_bytes_ -= p->op.data().size();
  p->op.DropData();
  p->data_seq = seq;
  ++stats_.overflowed;
}

void WriteBehind::Persist(const BackingOp& op, uint64_t seq) {
  if (CommitGroup* group = CommitGroup::Current()) {
    group->Add(this, op, seq);  // journaled with the rest of the group (commit_group.h)
    return;
  }
  PersistBatch({{seq, &op}});
}

void WriteBehind::PersistBatch(const std::vector<std::pair<uint64_t, const BackingOp*>>& entries) {
  if (entries.empty()) return;
  const Status s = options_.journal->AppendBatch(entries);
  MutexLock l(&mu_);
  if (!s.ok()) {
    ++stats_.journal_errors;
    LOG_EVERY_N(ERROR, 100) << "journal append failed: " << s.ToString();
  }
  for (const auto& [seq, op] : entries) {
    auto it = pending_.find(op->item.id);
    if (it == pending_.end() || it->second.unpersisted == 0) continue;
    Pending& p = it->second;
    --p.unpersisted;
    if (!s.ok() && p.data_seq == seq) {  // its value was to be read back from the journal
      p.op = *op;
      p.data_seq = 0;
      pending_bytes_ += op->data().size();
    }
  }
  // Only a Lookup or a Flush waits for appends; the flusher, which idles on the same condition,
  // finds newly persisted changes on its next round (waking it for every append would cost a
  // context switch per event-loop pass).
  if (persist_waiters_ > 0 || flush_requests_ > 0) cv_.SignalAll();
}

Status WriteBehind::Recover() {
  if (options_.journal == nullptr) return Status::OK();
  return options_.journal->Replay(/*with_values=*/false, [this](uint64_t seq, BackingOp op) {
    MutexLock l(&mu_);
    ++stats_.recovered;
    Add(std::move(op), seq);
  });
}

Status WriteBehind::Lookup(std::string_view id, BackingOp* op, bool* found) {
  for (int attempt = 0;; ++attempt) {
    uint64_t data_seq = 0;
    {
      MutexLock l(&mu_);
      auto it = pending_.find(std::string(id));
      *found = it != pending_.end();
      if (!*found) return Status::OK();
      if (it->second.data_seq != 0 && it->second.unpersisted > 0) {
        ++persist_waiters_;
        cv_.WaitFor(&mu_, kPersistWaitUs, [&]() REQUIRES(mu_) {
          auto again = pending_.find(std::string(id));
          return again == pending_.end() || again->second.unpersisted == 0;
        });
        --persist_waiters_;
        it = pending_.find(std::string(id));
        *found = it != pending_.end();
        if (!*found) return Status::OK();  // written meanwhile: the backing store has it
      }
      *op = it->second.op;
      data_seq = it->second.data_seq;
    }
    if (data_seq == 0) return Status::OK();
    BackingOp stored;
    Status s = options_.journal->Read(data_seq, id, &stored);
    if (s.ok()) {
      op->item.data = std::move(stored.item.data);
      return Status::OK();
    }
    // Not found: the change was written and its entry erased after we looked; look again.
    if (!s.IsNotFound() || attempt >= 2) return s;
  }
}

bool WriteBehind::HasRoom(size_t value_bytes) const {
  if (options_.journal != nullptr) return true;  // values past the bound wait in the journal
  MutexLock l(&mu_);
  return pending_bytes_ + value_bytes <= options_.max_pending_bytes;
}

WriteBehind::Pending* WriteBehind::Live(const Slot& slot) {
  auto it = pending_.find(slot.id);
  if (it == pending_.end() || it->second.queued_seq != slot.queued_seq) return nullptr;
  return &it->second;
}

void WriteBehind::TakeBatch(bool all, Batch* batch) {
  const int64_t due_before = clock_->NowMicros() - options_.delay_us;
  while (!order_.empty() && Live(order_.front()) == nullptr) order_.pop_front();
  for (const Slot& slot : order_) {
    if (batch->ops.size() >= options_.max_batch_ops) break;
    Pending* p = Live(slot);
    if (p == nullptr || p->in_flight || p->unpersisted > 0) continue;
    if (!all && p->first_enqueued_us > due_before) break;  // the queue is in enqueue order
    p->in_flight = true;
    batch->ops.push_back(p->op);
    batch->seqs.push_back(p->seq);
    batch->data_seqs.push_back(p->data_seq);
  }
}

void WriteBehind::LoadValues(Batch* batch) {
  std::vector<size_t> lost;
  std::vector<bool> lost_for_good;
  for (size_t i = 0; i < batch->ops.size(); ++i) {
    if (batch->data_seqs[i] == 0) continue;
    BackingOp& op = batch->ops[i];
    BackingOp stored;
    const Status s = options_.journal->Read(batch->data_seqs[i], op.item.id, &stored);
    if (s.ok()) {
      op.item.data = std::move(stored.item.data);
      continue;
    }
    // An I/O error may pass: leave the change queued for the next round. An entry that is gone or
    // does not decode can never be written: drop it (counted).
    const bool gone = s.IsNotFound() || s.code() == Status::Code::kCorruption;
    LOG(ERROR) << "write-behind: journal entry of a queued change cannot be read ("
               << (gone ? "dropping the change" : "will retry") << "): " << s.ToString();
    lost.push_back(i);
    lost_for_good.push_back(gone);
  }
  if (lost.empty()) return;
  MutexLock l(&mu_);
  for (size_t j = lost.size(); j-- > 0;) {
    const size_t* i = &lost[j];
    auto it = pending_.find(batch->ops[*i].item.id);
    ++stats_.journal_errors;
    if (it != pending_.end()) {
      it->second.in_flight = false;
      if (lost_for_good[j] && it->second.seq == batch->seqs[*i]) {  // else write the newer one
        ++stats_.dropped;
        pending_bytes_ -= Bytes(it->second.op);
        pending_.erase(it);
      }
    }
    batch->ops.erase(batch->ops.begin() + static_cast<ptrdiff_t>(*i));
    batch->seqs.erase(batch->seqs.begin() + static_cast<ptrdiff_t>(*i));
    batch->data_seqs.erase(batch->data_seqs.begin() + static_cast<ptrdiff_t>(*i));
  }
}

void WriteBehind::SetConflictListener(std::function<void(const std::string& id)> listener) {
  MutexLock l(&mu_);
  conflict_listener_ = std::move(listener);
  while (listener_calls_ > 0) cv_.WaitFor(&mu_, 100'000);
}

std::vector<std::string> WriteBehind::Conflicts(const Batch& batch,
                                                const std::vector<BackingOutcome>& outcomes) {
  std::vector<std::string> ids;
  for (size_t i = 0; i < batch.ops.size(); ++i) {
    const bool touch = batch.ops[i].kind == BackingOp::Kind::kTouch;
    if (outcomes[i] == BackingOutcome::kStale ||
        (touch && outcomes[i] == BackingOutcome::kIgnored)) {
      ids.push_back(batch.ops[i].item.id);
    }
  }
  return ids;
}

void WriteBehind::NotifyConflicts(const std::vector<std::string>& ids) {
  std::function<void(const std::string&)> listener;
  {
    MutexLock l(&mu_);
    stats_.conflicts += ids.size();
    if (!conflict_listener_) return;
    listener = conflict_listener_;
    ++listener_calls_;
  }
  for (const std::string& id : ids) listener(id);
  MutexLock l(&mu_);
  --listener_calls_;
  cv_.SignalAll();
}

void WriteBehind::Finish(const Batch& batch, const std::vector<BackingOutcome>& outcomes,
                         bool written, std::vector<JournalKey>* erase) {
  for (size_t i = 0; i < batch.ops.size(); ++i) {
    auto it = pending_.find(batch.ops[i].item.id);
    if (it == pending_.end()) continue;
    Pending& p = it->second;
    p.in_flight = false;
    if (!written) continue;
    if (outcomes[i] == BackingOutcome::kRejected) {
      ++stats_.rejected;  // can never be written: let it go (logged by the store)
    } else {
      ++stats_.flushed;
    }
    if (outcomes[i] == BackingOutcome::kStale) ++stats_.stale;
    if (p.seq != batch.seqs[i]) continue;  // a newer change was folded in while this was written
    delays_.Record(clock_->NowMicros() - p.first_enqueued_us);
    for (uint64_t seq : p.journaled) erase->emplace_back(seq, it->first);
    pending_bytes_ -= Bytes(p.op);
    pending_.erase(it);  // its order_ slot is now stale
  }
}

void WriteBehind::Run() {
  int64_t backoff_us = 0;
  while (true) {
    Batch batch;
    {
      MutexLock l(&mu_);
      if (backoff_us > 0) {  // the whole backoff; only stopping ends it early
        cv_.WaitFor(&mu_, backoff_us, [&]() REQUIRES(mu_) { return stopping_; });
      }
      if (stopping_) return;
      TakeBatch(flush_requests_ > 0, &batch);
      if (batch.ops.empty()) {
        cv_.WaitFor(&mu_, options_.idle_wait_us);
        continue;
      }
    }
    if (options_.journal != nullptr) LoadValues(&batch);
    if (batch.ops.empty()) continue;
    std::vector<BackingOutcome> outcomes;
    const Status s = store_->Apply(batch.ops, &outcomes);
    // Conflicts are handled before the batch is settled, so a Flush that returns has seen them.
    const std::vector<std::string> conflicts =
        s.ok() ? Conflicts(batch, outcomes) : std::vector<std::string>();
    if (!conflicts.empty()) NotifyConflicts(conflicts);
    std::vector<JournalKey> erase;
    {
      MutexLock l(&mu_);
      Finish(batch, outcomes, s.ok(), &erase);
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
    if (!erase.empty()) {
      const Status es = options_.journal->Erase(erase);
      if (!es.ok()) {
        MutexLock l(&mu_);
        ++stats_.journal_errors;  // the entries are replayed (harmlessly) after a restart
      }
    }
  }
}

Status WriteBehind::Flush(int64_t timeout_us) {
  MutexLock l(&mu_);
  if (WriteAllUntil([&]() REQUIRES(mu_) { return pending_.empty(); }, timeout_us)) {
    return Status::OK();
  }
  return Status::Unavailable(std::to_string(pending_.size()) +
                             " changes not yet written to the backing store");
}

Status WriteBehind::FlushId(std::string_view id, int64_t timeout_us) {
  const std::string key(id);
  MutexLock l(&mu_);
  if (WriteAllUntil([&]() REQUIRES(mu_) { return pending_.count(key) == 0; }, timeout_us)) {
    return Status::OK();
  }
  return Status::Unavailable("the session's changes are not yet written to the backing store");
}

WriteBehindStats WriteBehind::GetStats() const {
  MutexLock l(&mu_);
  WriteBehindStats s = stats_;
  s.pending = pending_.size();
  s.pending_bytes = pending_bytes_;
  s.delay_p50_us = delays_.Percentile(0.5);
  s.delay_p99_us = delays_.Percentile(0.99);
  s.delay_max_us = delays_.max();
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
