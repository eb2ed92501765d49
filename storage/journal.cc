// What both journal formats share (contract in journal.h): choosing one, moving entries from one
// to the other, and applying a journal to the disk tier.
#include "storage/journal.h"

#include <glog/logging.h>

#include <filesystem>
#include <system_error>

#include "storage/disk_tier.h"

namespace sessionserver {
namespace {

const char* FormatName(JournalFormat format) {
  return format == JournalFormat::kLog ? "log" : "rocksdb";
}

// Copies every entry of the journal at `from_path` (format `from`) into `to`, with the same
// sequence numbers, in batches.
Status CopyEntries(JournalFormat from, const std::string& from_path, const JournalOptions& options,
                   Journal* to, size_t* copied) {
  constexpr size_t kBatchEntries = 256;
  JournalOptions from_options = options;
  from_options.path = from_path;
  Status s;
  std::unique_ptr<Journal> source = OpenJournal(from, from_options, &s);
  if (!s.ok()) return s;
  std::vector<std::pair<uint64_t, BackingOp>> batch;
  Status append_status;
  auto append = [&] {
    std::vector<std::pair<uint64_t, const BackingOp*>> entries;
    for (const auto& [seq, op] : batch) entries.emplace_back(seq, &op);
    if (append_status.ok()) append_status = to->AppendBatch(entries);
    *copied += batch.size();
    batch.clear();
  };
  s = source->Replay(/*with_values=*/true, [&](uint64_t seq, BackingOp op) {
    batch.emplace_back(seq, std::move(op));
    if (batch.size() >= kBatchEntries) append();
  });
  if (s.ok()) append();
  return s.ok() ? append_status : s;
}

}  // namespace

std::unique_ptr<Journal> OpenJournal(JournalFormat format, const JournalOptions& options,
                                     Status* status) {
  return format == JournalFormat::kLog ? OpenLogJournal(options, status)
                                       : OpenRocksJournal(options, status);
}

std::string JournalPath(const std::string& data_dir, JournalFormat format) {
  return data_dir + (format == JournalFormat::kLog ? "/journal-log" : "/journal");
}

std::unique_ptr<Journal> OpenJournalIn(const std::string& data_dir, JournalFormat format,
                                       const JournalOptions& options, Status* status) {
  JournalOptions to_options = options;
  to_options.path = JournalPath(data_dir, format);
  const JournalFormat other =
      format == JournalFormat::kLog ? JournalFormat::kRocksDb : JournalFormat::kLog;
  const std::string other_path = JournalPath(data_dir, other);
  std::error_code ec;
  if (std::filesystem::exists(other_path, ec)) {
    // Synced whatever options.sync says: the other directory goes once this returns.
    JournalOptions synced = to_options;
    synced.sync = true;
    std::unique_ptr<Journal> to = OpenJournal(format, synced, status);
    if (!status->ok()) return nullptr;
    size_t copied = 0;
    *status = CopyEntries(other, other_path, options, to.get(), &copied);
    to.reset();
    if (!status->ok()) {
      *status = Status::IOError("cannot move the " + std::string(FormatName(other)) +
                                " journal at " + other_path + " into the " + FormatName(format) +
                                " journal: " + status->ToString());
      return nullptr;
    }
    std::filesystem::remove_all(other_path, ec);
    if (ec) LOG(WARNING) << "cannot delete " << other_path << " (copied): " << ec.message();
    LOG(INFO) << "journal: moved " << copied << " entries from the " << FormatName(other)
              << " journal at " << other_path << " into the " << FormatName(format)
              << " journal at " << to_options.path;
  }
  return OpenJournal(format, to_options, status);
}

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

}  // namespace sessionserver
