// Journal: the crash-safe local record of acknowledged changes that the backing store (Redis) may
// not have yet. A change is appended before its request is answered and erased once the
// write-behind queue has written it (or found a newer version there); after a crash (kill -9)
// the server replays what is left into the queue, so nothing acknowledged is lost.
//
// Two formats behind one interface (docs/JOURNAL.md has both):
//   log (default):  append-only segment files of our own in <data_dir>/journal-log, framed and
//                   checksummed records, an in-memory index of the live entries; an append is one
//                   write(2) (OpenLogJournal);
//   rocksdb:        a RocksDB database of its own in <data_dir>/journal (OpenRocksJournal).
// Entries are identified by the queue's sequence number and the session id; replay follows the
// sequence order. With `sync` false an append survives the process dying (it is in the kernel's
// page cache once Append returns) but not the machine losing power; with `sync` true it survives
// both, at the cost of an fsync per group of appends.
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
  std::string path;  // a directory, created if missing
  bool sync = false;
  size_t max_value_bytes = 1 << 20;  // entries with longer values are corrupt
  // Log format only: a segment file is closed and a new one started once it holds this many
  // bytes (a batch larger than this gets a segment of its own). Larger segments mean fewer files;
  // a segment's disk space is freed only once all of its entries are erased. Default 64 MiB.
  size_t segment_bytes = 64u << 20;
};

enum class JournalFormat { kLog, kRocksDb };

struct JournalStats {
  uint64_t appends = 0;
  uint64_t erases = 0;
  uint64_t reads = 0;    // values read back (queue overflow)
  uint64_t corrupt = 0;  // entries that failed to decode (skipped)
  uint64_t errors = 0;   // I/O errors (RocksDB errors in that format)
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

  // Deletes the entries (in one atomic batch in the RocksDB format). Keys without an entry are
  // ignored. Not synced: an erased entry that comes back after a machine crash is replayed, and
  // the backing store's version guard turns it into a no-op.
  virtual Status Erase(const std::vector<JournalKey>& keys) = 0;

  // Reads back the entry (seq, id) into *op. NotFound if there is none; Corruption if it fails
  // to decode.
  virtual Status Read(uint64_t seq, std::string_view id, BackingOp* op) = 0;

  // Calls `fn` for every entry in sequence order. Entries that fail to decode are counted,
  // logged and deleted. With `with_values` false, puts come without their values (op.item.data
  // empty; Read fetches them), so a large backlog does not have to fit in memory. Meant for the
  // start, before anything is appended: entries appended meanwhile may or may not be seen.
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

// Open (or create) the journal of one format at options.path. Return null and the reason on
// failure.
std::unique_ptr<Journal> OpenLogJournal(const JournalOptions& options, Status* status);
std::unique_ptr<Journal> OpenRocksJournal(const JournalOptions& options, Status* status);
std::unique_ptr<Journal> OpenJournal(JournalFormat format, const JournalOptions& options,
                                     Status* status);

// The journal's directory in `data_dir`: <data_dir>/journal-log or <data_dir>/journal.
std::string JournalPath(const std::string& data_dir, JournalFormat format);

// Opens (or creates) the journal of `format` in `data_dir` (options.path is ignored). If the
// other format's directory is there too (the server ran with the other --journal_format), its
// entries are first moved into this journal: copied with the same sequence numbers and synced,
// then the other directory is deleted. A crash in the middle leaves the other directory, and the
// next start copies again (an entry copied twice is one entry). Fails, leaving both directories,
// if the other journal cannot be opened or read.
std::unique_ptr<Journal> OpenJournalIn(const std::string& data_dir, JournalFormat format,
                                       const JournalOptions& options, Status* status);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_JOURNAL_H_
