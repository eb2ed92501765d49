// The RocksDB journal behind OpenRocksJournal (contract in journal.h, format in docs/JOURNAL.md).
#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "storage/journal.h"
#include "storage/journal_entry.h"
#include "util/mutex.h"

namespace sessionserver {
namespace {

std::string EncodeKey(uint64_t seq, std::string_view id) {
  std::string key;
  AppendJournalKey(seq, id, &key);
  return key;
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
      value.clear();
      Status s = AppendJournalValue(*op, &value);
      if (!s.ok()) return s;
      batch.Put(EncodeKey(seq, op->item.id), value);
    }
    if (entries.empty()) return Status::OK();
    Status s;
    {
      MutexLock l(&write_mu_);
      s = Count(db_->Write(write_options_, &batch));
    }
    if (s.ok()) counters_.appends += entries.size();
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
    if (s.ok()) counters_.erases += keys.size();
    return s;
  }

  Status Read(uint64_t seq, std::string_view id, BackingOp* op) override {
    std::string value;
    rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), EncodeKey(seq, id), &value);
    if (rs.IsNotFound()) return Status::NotFound("no journal entry");
    Status s = Count(rs);
    if (!s.ok()) return s;
    ++counters_.reads;
    s = Decode(id, value, op);
    if (!s.ok()) ++counters_.corrupt;
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
      Status s = DecodeJournalKey(std::string_view(it->key().data(), it->key().size()), &seq, &id)
                     ? Decode(id, std::string_view(it->value().data(), it->value().size()), &op)
                     : Status::Corruption("journal key too short");
      if (!s.ok()) {
        ++counters_.corrupt;
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

  JournalStats GetStats() const override { return counters_.Get(); }

 private:
  Status Decode(std::string_view id, std::string_view value, BackingOp* op) const {
    return DecodeJournalValue(id, value, options_.max_value_bytes, op);
  }

  Status Count(const rocksdb::Status& rs) {
    Status s = FromRocks(rs);
    if (!s.ok() && !rs.IsNotFound()) ++counters_.errors;
    return s;
  }

  const JournalOptions options_;
  const std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  // Serialises our writes. RocksDB would merge concurrent writers into one write group, copying
  // one thread's batch from another under its own (uninstrumented) synchronisation, which TSan
  // reports as a race; the write-ahead log serialises writes anyway, so little is lost.
  Mutex write_mu_;
  JournalCounters counters_;
};

}  // namespace

std::unique_ptr<Journal> OpenRocksJournal(const JournalOptions& options, Status* status) {
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
