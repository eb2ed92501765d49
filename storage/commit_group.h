// CommitGroup: group commit of the journal. A thread that answers a group of requests together
// (an event loop of the serving edge answers every request it read in one pass) installs a
// group; while it is installed, WriteBehind::Persist on that thread does not append each change
// to the journal but adds it to the group, and Commit appends them all in one journal write per
// queue. The thread must Commit before it answers any request of the group: "acknowledged means
// journaled" holds for the group as a whole.
//
// A change waiting in a group is already queued; the write-behind flusher does not write it to
// the backing store before it is journaled (WriteBehind keeps a count of unpersisted entries),
// so a group only delays the journal write, never reorders the queue.
//
// Not thread-safe: a group belongs to the thread that installed it.
#ifndef SESSIONSERVER_STORAGE_COMMIT_GROUP_H_
#define SESSIONSERVER_STORAGE_COMMIT_GROUP_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "storage/backing_store.h"

namespace sessionserver {

class WriteBehind;

class CommitGroup {
 public:
  CommitGroup() = default;
  ~CommitGroup();  // commits what is left
  CommitGroup(const CommitGroup&) = delete;
  CommitGroup& operator=(const CommitGroup&) = delete;

  // The group installed on the calling thread, or null.
  static CommitGroup* Current();

  // Installs `group` on the calling thread for the scope's lifetime (null: none).
  class Scope {
   public:
    explicit Scope(CommitGroup* group);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    CommitGroup* const previous_;
  };

  // Holds `op` (queued in `queue` under `seq`) until Commit.
  void Add(WriteBehind* queue, BackingOp op, uint64_t seq);

  // Journals everything added since the last Commit: one journal write per queue. Call before
  // answering any request whose change was added.
  void Commit();

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    WriteBehind* queue;
    BackingOp op;
    uint64_t seq;
  };
  std::vector<Entry> entries_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_COMMIT_GROUP_H_
