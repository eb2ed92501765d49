// The RocksDB journal behind OpenJournal (contract in journal.h, format in docs/JOURNAL.md).
#include "storage/journal.h"

#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>

#include "storage/disk_record.h"
#include "storage/disk_tier.h"
#include "util/mutex.h"

namespace sessionserver {
namespace {

constexpr uint8_t kEntryFormatV1 = 1;
constexpr uint8_t kKindPut = 1;
constexpr uint8_t kKindRemove = 2;
constexpr size_t kSeqBytes = 8;

std::string EncodeKey(uint64_t seq, std::string_view id) {
  std::string key(kSeqBytes, '\0');
  for (size_t i = 0; i < kSeqBytes; ++i) key[i] = static_cast<char>(seq >> (56 - 8 * i));
  key.append(id);
  return key;
}

bool DecodeKey(const rocksdb::Slice& key, uint64_t* seq, std::string_view* id) {
  if (key.size() <= kSeqBytes) return false;
  *seq = 0;
  for (size_t i = 0; i < kSeqBytes; ++i) *seq = (*seq << 8) | static_cast<uint8_t>(key[i]);
  *id = std::string_view(key.data() + kSeqBytes, key.size() - kSeqBytes);
  return true;
}

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  return Status::IOError("journal: " + s.ToString());
}

class RocksJournal : public Journal {
 public:
  RocksJournal(const JournalOptions& options, std::unique_ptr<rocksdb::DB> db)
      : options_(options), db_(std::move(db)) {
    write_options_.sync = options.sync;
  }

  Status AppendBatch(const std::vector<std::pair<uint64_t, const BackingOp*>>& entries) override {
    rocksdb::WriteBatch batch;
    std::string value;
    for (const auto& [seq, op] : entries) {
      if (op->kind == BackingOp::Kind::kTouch) {
        return Status::InvalidArgument("touches are not journaled");
      }
      value.clear();
      value.push_back(static_cast<char>(kEntryFormatV1));
      value.push_back(
          static_cast<char>(op->kind == BackingOp::Kind::kPut ? kKindPut : kKindRemove));
      value.append(EncodeDiskRecord(op->item.id, op->item, op->data(), 0));
      batch.Put(EncodeKey(seq, op->item.id), value);
    }
    if (entries.empty()) return Status::OK();
    Status s;
    {
      MutexLock l(&write_mu_);
      s = Count(db_->Write(write_options_, &batch));
    }
    if (s.ok()) appends_.fetch_add(entries.size(), std::memory_order_relaxed);
    return s;
  }

  Status Erase(const std::vector<JournalKey>& keys) override {
    if (keys.empty()) return Status::OK();
    rocksdb::WriteBatch batch;
    for (const auto& [seq, id] : keys) batch.Delete(EncodeKey(seq, id));
    // Erasing need not be synced: an entry that comes back after a crash is replayed, and the
    // backing store's version guard turns it into a no-op.
    Status s;
    {
      MutexLock l(&write_mu_);
      s = Count(db_->Write(rocksdb::WriteOptions(), &batch));
    }
    if (s.ok()) erases_.fetch_add(keys.size(), std::memory_order_relaxed);
    return s;
  }

  Status Read(uint64_t seq, std::string_view id, BackingOp* op) override {
    std::string value;
    rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), EncodeKey(seq, id), &value);
    if (rs.IsNotFound()) return Status::NotFound("no journal entry");
    Status s = Count(rs);
    if (!s.ok()) return s;
    reads_.fetch_add(1, std::memory_order_relaxed);
    s = Decode(id, value, op);
    if (!s.ok()) corrupt_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  Status Replay(bool with_values,
                const std::function<void(uint64_t seq, BackingOp op)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::vector<std::string> corrupt;  // raw keys
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t seq = 0;
      std::string_view id;
      BackingOp op;
      Status s = DecodeKey(it->key(), &seq, &id)
                     ? Decode(id, std::string_view(it->value().data(), it->value().size()), &op)
                     : Status::Corruption("journal key too short");
      if (!s.ok()) {
        corrupt_.fetch_add(1, std::memory_order_relaxed);
        LOG(ERROR) << "journal: dropping an entry that does not decode: " << s.ToString();
        corrupt.push_back(it->key().ToString());
        continue;
      }
      if (!with_values) op.DropData();
      fn(seq, std::move(op));
    }
    Status s = Count(it->status());
    if (!s.ok()) return s;
    for (const std::string& key : corrupt) Count(db_->Delete(rocksdb::WriteOptions(), key));
    return Status::OK();
  }

  JournalStats GetStats() const override {
    JournalStats s;
    s.appends = appends_.load(std::memory_order_relaxed);
    s.erases = erases_.load(std::memory_order_relaxed);
    s.reads = reads_.load(std::memory_order_relaxed);
    s.corrupt = corrupt_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  Status Decode(std::string_view id, std::string_view value, BackingOp* op) const {
    if (value.size() < 2 || static_cast<uint8_t>(value[0]) != kEntryFormatV1 ||
        (value[1] != kKindPut && value[1] != kKindRemove)) {
      return Status::Corruption("journal entry has an unknown format or kind");
    }
    int64_t unused = 0;
    ItemRecord item;
    Status s = DecodeDiskRecord(id, value.substr(2), options_.max_value_bytes, &item, &unused);
    if (!s.ok()) return s;
    op->DropData();
    op->kind = value[1] == kKindPut ? BackingOp::Kind::kPut : BackingOp::Kind::kRemove;
    op->item = std::move(item);
    return Status::OK();
  }

  Status Count(const rocksdb::Status& rs) {
    Status s = FromRocks(rs);
    if (!s.ok() && !rs.IsNotFound()) errors_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  const JournalOptions options_;
  const std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  // Serialises our writes. RocksDB would merge concurrent writers into one write group, copying
  // one thread's batch from another under its own (uninstrumented) synchronisation, which TSan
  // reports as a race; the write-ahead log serialises writes anyway, so little is lost.
  Mutex write_mu_;
  std::atomic<uint64_t> appends_{0}, erases_{0}, reads_{0}, corrupt_{0}, errors_{0};
};

}  // namespace

Status ApplyJournalToDiskTier(Journal* journal, DiskTier* disk) {
  constexpr size_t kBatchOps = 256;
  std::vector<DiskOp> batch;
  Status write_status;
  Status s = journal->Replay(/*with_values=*/true, [&](uint64_t, BackingOp op) {
    if (!write_status.ok()) return;
    DiskOp d;
    d.remove = op.kind == BackingOp::Kind::kRemove;
    d.item = std::move(op.item);
    batch.push_back(std::move(d));
    if (batch.size() >= kBatchOps) {
      write_status = disk->Write(batch);
      batch.clear();
    }
  });
  if (s.ok()) s = write_status;
  if (s.ok() && !batch.empty()) s = disk->Write(batch);
  return s;
}

std::unique_ptr<Journal> OpenJournal(const JournalOptions& options, Status* status) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  // Small: the journal holds only what Redis does not have yet, normally a flush window's worth.
  db_options.write_buffer_size = 16 << 20;
  db_options.max_write_buffer_number = 3;
  db_options.keep_log_file_num = 2;
  rocksdb::DB* raw = nullptr;
  *status = FromRocks(rocksdb::DB::Open(db_options, options.path, &raw));
  if (!status->ok()) return nullptr;
  return std::make_unique<RocksJournal>(options, std::unique_ptr<rocksdb::DB>(raw));
}

}  // namespace sessionserver
