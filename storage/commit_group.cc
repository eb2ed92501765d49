#include "storage/commit_group.h"

#include "storage/write_behind.h"

namespace sessionserver {
namespace {
thread_local CommitGroup* current_group = nullptr;
}  // namespace

CommitGroup::~CommitGroup() { Commit(); }

CommitGroup* CommitGroup::Current() { return current_group; }

CommitGroup::Scope::Scope(CommitGroup* group) : previous_(current_group) { current_group = group; }
CommitGroup::Scope::~Scope() { current_group = previous_; }

void CommitGroup::Add(WriteBehind* queue, BackingOp op, uint64_t seq) {
  entries_.push_back(Entry{queue, std::move(op), seq});
}

void CommitGroup::Commit() {
  // Nearly always one queue (the server has one write-behind queue with a journal); entries of
  // several queues are committed queue by queue, in the order the first of each was added.
  std::vector<std::pair<uint64_t, const BackingOp*>> batch;
  for (size_t first = 0; first < entries_.size(); ++first) {
    WriteBehind* queue = entries_[first].queue;
    if (queue == nullptr) continue;
    batch.clear();
    for (size_t i = first; i < entries_.size(); ++i) {
      if (entries_[i].queue == queue) batch.emplace_back(entries_[i].seq, &entries_[i].op);
    }
    queue->PersistBatch(batch);
    for (size_t i = first; i < entries_.size(); ++i) {
      if (entries_[i].queue == queue) entries_[i].queue = nullptr;
    }
  }
  entries_.clear();
}

}  // namespace sessionserver
