#include "storage/journal_entry.h"

#include <utility>

#include "storage/disk_record.h"

namespace sessionserver {
namespace {

constexpr uint8_t kEntryFormatV1 = 1;
constexpr uint8_t kKindPut = 1;
constexpr uint8_t kKindRemove = 2;

}  // namespace

JournalStats JournalCounters::Get() const {
  JournalStats s;
  s.appends = appends.load(std::memory_order_relaxed);
  s.erases = erases.load(std::memory_order_relaxed);
  s.reads = reads.load(std::memory_order_relaxed);
  s.corrupt = corrupt.load(std::memory_order_relaxed);
  s.errors = errors.load(std::memory_order_relaxed);
  return s;
}

void AppendJournalKey(uint64_t seq, std::string_view id, std::string* out) {
  for (size_t i = 0; i < kJournalSeqBytes; ++i) {
    out->push_back(static_cast<char>(seq >> (56 - 8 * i)));
  }
  out->append(id);
}

bool DecodeJournalKey(std::string_view key, uint64_t* seq, std::string_view* id) {
  if (key.size() <= kJournalSeqBytes) return false;
  *seq = 0;
  for (size_t i = 0; i < kJournalSeqBytes; ++i) *seq = (*seq << 8) | static_cast<uint8_t>(key[i]);
  *id = key.substr(kJournalSeqBytes);
  return true;
}

Status AppendJournalValue(const BackingOp& op, std::string* out) {
  if (op.kind == BackingOp::Kind::kTouch)
    return Status::InvalidArgument("touches are not journaled");
  out->push_back(static_cast<char>(kEntryFormatV1));
  out->push_back(static_cast<char>(op.kind == BackingOp::Kind::kPut ? kKindPut : kKindRemove));
  out->append(EncodeDiskRecord(op.item.id, op.item, op.data(), 0));
  return Status::OK();
}

Status DecodeJournalValue(std::string_view id, std::string_view value, size_t max_value_bytes,
                          BackingOp* op) {
  if (value.size() < 2 || static_cast<uint8_t>(value[0]) != kEntryFormatV1 ||
      (value[1] != kKindPut && value[1] != kKindRemove)) {
    return Status::Corruption("journal entry has an unknown format or kind");
  }
  int64_t unused = 0;
  ItemRecord item;
  Status s = DecodeDiskRecord(id, value.substr(2), max_value_bytes, &item, &unused);
  if (!s.ok()) return s;
  op->DropData();
  op->kind = value[1] == kKindPut ? BackingOp::Kind::kPut : BackingOp::Kind::kRemove;
  op->item = std::move(item);
  return Status::OK();
}

}  // namespace sessionserver
