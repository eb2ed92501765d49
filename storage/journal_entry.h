// What both journal formats share: their counters, and the encoding of one entry
// (docs/JOURNAL.md): a key
// (the queue sequence number, 8 bytes big-endian so that byte order is sequence order, then the
// session id) and a value (entry format 1, kind, then a disk record v1 of the change,
// storage/disk_record.h). Internal to storage/.
//
// Decoding trusts nothing: every length is checked and nothing is allocated for a value that does
// not decode. Thread-safe: free functions without shared state, and atomic counters.
#ifndef SESSIONSERVER_STORAGE_JOURNAL_ENTRY_H_
#define SESSIONSERVER_STORAGE_JOURNAL_ENTRY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/backing_store.h"
#include "storage/journal.h"
#include "util/status.h"

namespace sessionserver {

inline constexpr size_t kJournalSeqBytes = 8;

// The counters of JournalStats, updated from any thread.
struct JournalCounters {
  JournalStats Get() const;

  std::atomic<uint64_t> appends{0}, erases{0}, reads{0}, corrupt{0}, errors{0};
};

// Appends the key of entry (seq, id) to *out.
void AppendJournalKey(uint64_t seq, std::string_view id, std::string* out);

// Splits `key` into (seq, id); *id views `key`. False if the key has no id.
bool DecodeJournalKey(std::string_view key, uint64_t* seq, std::string_view* id);

// Appends the value of `op` (a put, with its value, or a remove) to *out. InvalidArgument, and
// nothing appended, for a touch (touches are not journaled).
Status AppendJournalValue(const BackingOp& op, std::string* out);

// Parses `value`, stored under a key with session id `id`, into *op (op->item.id = id; a put
// with its value). Corruption, and *op unchanged, if the format or kind is unknown or the disk
// record does not decode (values longer than `max_value_bytes` included).
Status DecodeJournalValue(std::string_view id, std::string_view value, size_t max_value_bytes,
                          BackingOp* op);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_JOURNAL_ENTRY_H_
