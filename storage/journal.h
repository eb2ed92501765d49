// Journal: the crash-safe local record of acknowledged changes that the backing store (Redis) may
// not have yet. A change is appended before its request is answered and erased once the
// write-behind queue has written it (or found a newer version there); after a crash (kill -9)
// the server replays what is left into the queue, so nothing acknowledged is lost.
//
// A RocksDB database of its own (<data_dir>/journal). Entries are keyed by the queue's sequence
// number, so replay follows the order of the changes; the format is in docs/JOURNAL.md. Appends
// go through RocksDB's write-ahead log: with `sync` false an append survives the process dying
// (it is in the kernel's page cache once Append returns) but not the machine losing power; with
// `sync` true it survives both, at the cost of an fsync per group of appends.
//
// Thread-safe: every method may be called from any thread.
#ifndef SESSIONSERVER_STORAGE_JOURNAL_H_
#define SESSIONSERVER_STORAGE_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/backing_store.h"
#include "util/status.h"

namespace sessionserver {

struct JournalOptions {
  std::string path;  // created if missing
  bool sync = false;
  size_t max_value_bytes = 1 << 20;  // entries with longer values are corrupt
};

struct JournalStats {
  uint64_t appends = 0;
  uint64_t erases = 0;
  uint64_t reads = 0;    // values read back (queue overflow)
  uint64_t corrupt = 0;  // entries that failed to decode (skipped)
  uint64_t errors = 0;   // RocksDB errors
};

// Identifies one entry: the queue sequence number and the session id.
using JournalKey = std::pair<uint64_t, std::string>;

class Journal {
 public:
  virtual ~Journal() = default;

  // Records `op` (a put or remove; put values included) under `seq`. Durable as described above
  // once it returns OK.
  Status Append(uint64_t seq, const BackingOp& op) { return AppendBatch({{seq, &op}}); }

  // Records every entry (seq, op) in one atomic write: one write-ahead-log append (and, with
  // `sync`, one fsync) for the lot; the group commit of the serving edge (storage/commit_group.h).
  // InvalidArgument, and nothing is written, if any op is a touch.
  virtual Status AppendBatch(const std::vector<std::pair<uint64_t, const BackingOp*>>& entries) = 0;

  // Deletes the entries, in one atomic batch.
  virtual Status Erase(const std::vector<JournalKey>& keys) = 0;

  // Reads back the entry (seq, id) into *op. NotFound if there is none; Corruption if it fails
  // to decode.
  virtual Status Read(uint64_t seq, std::string_view id, BackingOp* op) = 0;

  // Calls `fn` for every entry in sequence order. Entries that fail to decode are counted,
  // logged and deleted. With `with_values` false, puts come without their values (op.item.data
  // empty; Read fetches them), so a large backlog does not have to fit in memory.
  virtual Status Replay(bool with_values,
                        const std::function<void(uint64_t seq, BackingOp op)>& fn) = 0;

  virtual JournalStats GetStats() const = 0;
};

class DiskTier;

// Brings the disk tier up to date with the journal before a restarted server serves. After a
// crash the disk tier may hold an older copy of a journaled session (or the copy of a journaled
// removal), which would be served once the queue had written the journaled change and let go of
// it. Writes each journaled put to the disk tier and deletes each journaled removal there; the
// disk tier's version guard keeps records that are newer. REQUIRES: nothing else writes the disk
// tier meanwhile (call before the memory store starts its spill writer).
Status ApplyJournalToDiskTier(Journal* journal, DiskTier* disk);

// Opens (or creates) the journal. Returns null and the reason on failure.
std::unique_ptr<Journal> OpenJournal(const JournalOptions& options, Status* status);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_JOURNAL_H_
