// The log journal behind OpenLogJournal (contract in journal.h, format in docs/JOURNAL.md):
// append-only segment files of checksummed records in one directory, and an in-memory index of
// the entries not yet erased, built by scanning the segments at open.
//
// A segment is unlinked once none of its entries is live and no older segment is left that holds
// an entry one of its erase records erased (or an older copy of one of its entries): otherwise
// that entry would come back on the next open. Segments only ever depend on older ones, so
// looking at them oldest first settles every chain in one pass.
//
// Each open writes a new random salt into the headers of the segments it creates and seeds the
// checksum of their records with it, so a session value that holds a well-formed record of its
// own is not taken for one when the scan looks past a damaged record for the next whole one.
//
// Lock: mu_ guards the index, the segment table and the active segment; appends encode outside
// it and write under it (one write(2) per batch); an fdatasync and every pread run outside it,
// on a SegmentFile kept open by a shared_ptr even if the segment is unlinked meanwhile.
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <system_error>

#include "storage/journal.h"
#include "storage/journal_entry.h"
#include "util/crc32c.h"
#include "util/mutex.h"

namespace sessionserver {
namespace {

constexpr uint8_t kRecordEntry = 1;
constexpr uint8_t kRecordErase = 2;
constexpr size_t kCrcBytes = 4;
constexpr size_t kHeaderBytes = 9;  // u32 crc32c, u32 payload length, u8 type
constexpr size_t kKeyLengthBytes = 4;
constexpr size_t kSegmentNameDigits = 20;
constexpr std::string_view kSegmentSuffix = ".log";
constexpr std::string_view kSegmentMagic = "SSJLOG01";
constexpr size_t kSegmentHeaderBytes = 16;  // magic, u32 salt, u32 crc32c of the 12 before

void PutU32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
}

uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return v;
}

Status ErrnoError(const std::string& what, int error) {
  return Status::IOError("journal: " + what + ": " + std::generic_category().message(error));
}

// Starts a record of `type` at the end of *out; returns where it starts, for EndRecord.
size_t BeginRecord(uint8_t type, std::string* out) {
  const size_t start = out->size();
  out->append(kHeaderBytes, '\0');
  (*out)[start + kHeaderBytes - 1] = static_cast<char>(type);
  return start;
}

// Fills in the length and checksum (seeded with `salt`) of the record begun at `start`, which
// ends where *out ends.
void EndRecord(size_t start, uint32_t salt, std::string* out) {
  char* record = out->data() + start;
  PutU32(record + kCrcBytes, static_cast<uint32_t>(out->size() - start - kHeaderBytes));
  PutU32(record, Crc32c(salt, record + kCrcBytes, out->size() - start - kCrcBytes));
}

std::string SegmentHeader(uint32_t salt) {
  std::string header(kSegmentMagic);
  header.append(8, '\0');
  PutU32(header.data() + kSegmentMagic.size(), salt);
  PutU32(header.data() + kSegmentHeaderBytes - kCrcBytes,
         Crc32c(0, header.data(), kSegmentHeaderBytes - kCrcBytes));
  return header;
}

bool ParseSegmentHeader(std::string_view bytes, uint32_t* salt) {
  if (bytes.size() < kSegmentHeaderBytes ||
      bytes.substr(0, kSegmentMagic.size()) != kSegmentMagic ||
      Crc32c(0, bytes.data(), kSegmentHeaderBytes - kCrcBytes) !=
          GetU32(bytes.data() + kSegmentHeaderBytes - kCrcBytes)) {
    return false;
  }
  *salt = GetU32(bytes.data() + kSegmentMagic.size());
  return true;
}

// Appends a length-prefixed entry key.
void AppendKey(uint64_t seq, std::string_view id, std::string* out) {
  const size_t start = out->size();
  out->append(kKeyLengthBytes, '\0');
  AppendJournalKey(seq, id, out);
  PutU32(out->data() + start, static_cast<uint32_t>(out->size() - start - kKeyLengthBytes));
}

// Takes a length-prefixed entry key off the front of *payload. False if it is malformed.
bool TakeKey(std::string_view* payload, uint64_t* seq, std::string_view* id) {
  if (payload->size() < kKeyLengthBytes) return false;
  const uint32_t n = GetU32(payload->data());
  if (n > payload->size() - kKeyLengthBytes) return false;
  const std::string_view key = payload->substr(kKeyLengthBytes, n);
  payload->remove_prefix(kKeyLengthBytes + n);
  return DecodeJournalKey(key, seq, id);
}

struct Record {
  uint8_t type = 0;
  std::string_view payload;
  size_t size = 0;  // header included
};

// Whether a whole record of a known type with a matching checksum starts at `offset`.
bool ParseRecord(std::string_view bytes, size_t offset, uint32_t salt, Record* record) {
  if (offset > bytes.size() || bytes.size() - offset < kHeaderBytes) return false;
  const char* start = bytes.data() + offset;
  const uint32_t length = GetU32(start + kCrcBytes);
  const uint8_t type = static_cast<uint8_t>(start[kHeaderBytes - 1]);
  if ((type != kRecordEntry && type != kRecordErase) ||
      length > bytes.size() - offset - kHeaderBytes ||
      Crc32c(salt, start + kCrcBytes, kHeaderBytes - kCrcBytes + length) != GetU32(start)) {
    return false;
  }
  record->type = type;
  record->payload = bytes.substr(offset + kHeaderBytes, length);
  record->size = kHeaderBytes + length;
  return true;
}

// Where the next whole record at or after `offset` starts; bytes.size() if there is none.
size_t NextRecord(std::string_view bytes, size_t offset, uint32_t salt) {
  Record unused;
  while (offset < bytes.size() && !ParseRecord(bytes, offset, salt, &unused)) ++offset;
  return std::min(offset, bytes.size());
}

Status ReadAt(int fd, uint64_t offset, size_t n, std::string* out, const std::string& path) {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError("read " + path, errno);
    if (r == 0) return Status::Corruption("journal: " + path + " ends inside a record");
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

bool ParseSegmentName(const std::string& name, uint64_t* number) {
  if (name.size() != kSegmentNameDigits + kSegmentSuffix.size() ||
      name.compare(kSegmentNameDigits, std::string::npos, kSegmentSuffix) != 0) {
    return false;
  }
  *number = 0;
  for (size_t i = 0; i < kSegmentNameDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    *number = *number * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return true;
}

// One segment file, open for appending and reading; closed when the last user lets go.
class SegmentFile {
 public:
  SegmentFile(std::string path, int fd, uint32_t salt)
      : path_(std::move(path)), fd_(fd), salt_(salt) {}
  ~SegmentFile() { ::close(fd_); }
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }
  uint32_t salt() const { return salt_; }

 private:
  const std::string path_;
  const int fd_;
  const uint32_t salt_;  // of its records' checksums
};

class LogJournal : public Journal {
 public:
  explicit LogJournal(const JournalOptions& options)
      : options_(options), salt_(std::random_device()()) {}
  ~LogJournal() override {
    if (dir_fd_ >= 0) ::close(dir_fd_);
  }

  // Scans the segments into the index (cutting a torn tail) and starts a new active segment.
  Status Open() EXCLUDES(mu_);

  Status AppendBatch(const std::vector<std::pair<uint64_t, const BackingOp*>>& entries) override
      EXCLUDES(mu_);
  Status Erase(const std::vector<JournalKey>& keys) override EXCLUDES(mu_);
  Status Read(uint64_t seq, std::string_view id, BackingOp* op) override EXCLUDES(mu_);
  Status Replay(bool with_values,
                const std::function<void(uint64_t seq, BackingOp op)>& fn) override EXCLUDES(mu_);
  JournalStats GetStats() const override { return counters_.Get(); }

 private:
  struct Location {
    uint64_t segment;
    uint64_t offset;
    size_t size;  // of the record
  };
  struct Segment {
    std::shared_ptr<SegmentFile> file;
    uint64_t live = 0;  // indexed entries in it
    // Older segments holding entries that its records erased or superseded.
    std::set<uint64_t> erased_from;
  };
  // Files of unlinked segments, closed by their destructor once mu_ is released (declare before
  // the MutexLock).
  using Closed = std::vector<std::shared_ptr<SegmentFile>>;

  std::string SegmentPath(uint64_t number) const;
  Status ScanSegment(uint64_t number, std::string* bytes) REQUIRES(mu_);
  void Apply(uint64_t segment, uint64_t offset, const Record& record) REQUIRES(mu_);
  // Indexes `key` at `location`, superseding an older copy of it.
  void Index(JournalKey key, const Location& location) REQUIRES(mu_);
  // Removes `key` from the index, erased by a record in segment `eraser`.
  void Unindex(const JournalKey& key, uint64_t eraser) REQUIRES(mu_);
  // Writes whole records at the end of the active segment (a new one if it is full); returns
  // where they start. Failures are counted.
  Status Write(const std::string& bytes, uint64_t* segment, uint64_t* offset, Closed* closed)
      REQUIRES(mu_);
  Status Roll(Closed* closed) REQUIRES(mu_);
  // Unlinks every segment nothing needs any more (see the top of the file).
  void DropUnneeded(Closed* closed) REQUIRES(mu_);
  // Writes an erase record of `keys` and removes them from the index.
  Status EraseKeys(const std::vector<JournalKey>& keys) EXCLUDES(mu_);
  // Reads the entry (seq, id) at `location` of `file`: IOError, or Corruption if the record
  // there is not that entry or does not decode.
  Status ReadEntry(const SegmentFile& file, const Location& location, uint64_t seq,
                   std::string_view id, BackingOp* op) const;

  const JournalOptions options_;
  const uint32_t salt_;  // of the segments this instance creates
  int dir_fd_ = -1;      // for fsync after creating a segment (options_.sync)

  Mutex mu_;
  std::map<JournalKey, Location> index_ GUARDED_BY(mu_);
  std::map<uint64_t, Segment> segments_ GUARDED_BY(mu_);
  uint64_t active_ GUARDED_BY(mu_) = 0;  // the segment appended to (0 before the first)
  uint64_t active_bytes_ GUARDED_BY(mu_) = 0;
  bool active_broken_ GUARDED_BY(mu_) = false;  // a failed write may have left a partial record
  JournalCounters counters_;
};

std::string LogJournal::SegmentPath(uint64_t number) const {
  char name[kSegmentNameDigits + 1];
  std::snprintf(name, sizeof(name), "%020" PRIu64, number);
  return options_.path + "/" + name + std::string(kSegmentSuffix);
}

Status LogJournal::Open() {
  std::error_code ec;
  std::filesystem::create_directories(options_.path, ec);
  if (ec) return Status::IOError("journal: cannot create " + options_.path + ": " + ec.message());
  dir_fd_ = ::open(options_.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return ErrnoError("open " + options_.path, errno);
  std::vector<uint64_t> numbers;
  for (const auto& e : std::filesystem::directory_iterator(options_.path, ec)) {
    uint64_t number = 0;
    if (ParseSegmentName(e.path().filename().string(), &number)) {
      numbers.push_back(number);
    } else {
      LOG(WARNING) << "journal: ignoring " << e.path().string() << " (not a segment)";
    }
  }
  if (ec) return Status::IOError("journal: cannot list " + options_.path + ": " + ec.message());
  std::sort(numbers.begin(), numbers.end());
  MutexLock l(&mu_);
  std::string bytes;
  for (uint64_t number : numbers) {
    Status s = ScanSegment(number, &bytes);
    if (!s.ok()) return s;
    active_ = number;
  }
  Closed closed;
  Status s = Roll(&closed);  // never append behind what a crash may have left
  if (!s.ok()) return s;
  LOG(INFO) << "journal: " << index_.size() << " entries in " << options_.path << " ("
            << numbers.size() << " segments scanned, " << segments_.size() << " kept)";
  return Status::OK();
}

Status LogJournal::ScanSegment(uint64_t number, std::string* bytes) {
  const std::string path = SegmentPath(number);
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  struct stat st;
  Status s = ::fstat(fd, &st) != 0 ? ErrnoError("stat " + path, errno)
                                   : ReadAt(fd, 0, static_cast<size_t>(st.st_size), bytes, path);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  uint32_t salt = 0;
  if (bytes->size() >= kSegmentHeaderBytes && !ParseSegmentHeader(*bytes, &salt)) {
    ::close(fd);
    ++counters_.corrupt;
    LOG(ERROR) << "journal: " << path << " has a damaged header: set aside as " << path
               << ".corrupt, its entries are lost";
    if (::rename(path.c_str(), (path + ".corrupt").c_str()) != 0) {
      return ErrnoError("rename " + path, errno);
    }
    return Status::OK();
  }
  // Shorter than a header: created just before a crash, holds nothing (and is dropped).
  segments_[number].file = std::make_shared<SegmentFile>(path, fd, salt);
  size_t offset = std::min(bytes->size(), kSegmentHeaderBytes);
  while (offset < bytes->size()) {
    Record record;
    if (ParseRecord(*bytes, offset, salt, &record)) {
      Apply(number, offset, record);
      offset += record.size;
      continue;
    }
    const size_t next = NextRecord(*bytes, offset + 1, salt);
    if (next == bytes->size()) {  // nothing whole follows: the tail of an unfinished write
      LOG(WARNING) << "journal: " << path << ": cutting a torn tail of " << bytes->size() - offset
                   << " bytes at offset " << offset;
      if (::ftruncate(fd, static_cast<off_t>(offset)) != 0) {
        LOG(WARNING) << ErrnoError("truncate " + path, errno).ToString();  // appended to no more
      }
      break;
    }
    ++counters_.corrupt;
    LOG(ERROR) << "journal: " << path << ": skipping " << next - offset
               << " corrupt bytes at offset " << offset;
    offset = next;
  }
  return Status::OK();
}

void LogJournal::Apply(uint64_t segment, uint64_t offset, const Record& record) {
  std::string_view payload = record.payload;
  uint64_t seq = 0;
  std::string_view id;
  if (record.type == kRecordEntry) {
    if (TakeKey(&payload, &seq, &id)) {
      Index(JournalKey(seq, std::string(id)), Location{segment, offset, record.size});
      return;
    }
  } else {
    while (!payload.empty() && TakeKey(&payload, &seq, &id)) {
      Unindex(JournalKey(seq, std::string(id)), segment);
    }
    if (payload.empty()) return;
  }
  ++counters_.corrupt;
  LOG(ERROR) << "journal: " << SegmentPath(segment) << ": a record at offset " << offset
             << " has a malformed key";
}

void LogJournal::Index(JournalKey key, const Location& location) {
  auto [it, inserted] = index_.try_emplace(std::move(key), location);
  if (!inserted) {
    const uint64_t older = it->second.segment;
    --segments_[older].live;
    if (older != location.segment) segments_[location.segment].erased_from.insert(older);
    it->second = location;
  }
  ++segments_[location.segment].live;
}

void LogJournal::Unindex(const JournalKey& key, uint64_t eraser) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  const uint64_t segment = it->second.segment;
  index_.erase(it);
  --segments_[segment].live;
  if (segment != eraser) segments_[eraser].erased_from.insert(segment);
}

Status LogJournal::Write(const std::string& bytes, uint64_t* segment, uint64_t* offset,
                         Closed* closed) {
  if (active_broken_ || (active_bytes_ > kSegmentHeaderBytes &&
                         active_bytes_ + bytes.size() > options_.segment_bytes)) {
    Status s = Roll(closed);
    if (!s.ok()) {
      ++counters_.errors;
      return s;
    }
  }
  const SegmentFile& file = *segments_[active_].file;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(file.fd(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++counters_.errors;
      const Status s = ErrnoError("write " + file.path(), n < 0 ? errno : EIO);
      // Never leave part of a record in front of later ones.
      if (done > 0 && ::ftruncate(file.fd(), static_cast<off_t>(active_bytes_)) != 0) {
        active_broken_ = true;
      }
      return s;
    }
    done += static_cast<size_t>(n);
  }
  *segment = active_;
  *offset = active_bytes_;
  active_bytes_ += bytes.size();
  return Status::OK();
}

Status LogJournal::Roll(Closed* closed) {
  const uint64_t number = active_ + 1;
  const std::string path = SegmentPath(number);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create " + path, errno);
  const std::string header = SegmentHeader(salt_);
  Status s;
  const ssize_t written = ::write(fd, header.data(), header.size());
  if (written != static_cast<ssize_t>(header.size())) {
    s = ErrnoError("write " + path, written < 0 ? errno : EIO);
  } else if (options_.sync && ::fsync(dir_fd_) != 0) {  // the new name must survive power loss
    s = ErrnoError("fsync " + options_.path, errno);
  }
  if (!s.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  segments_[number].file = std::make_shared<SegmentFile>(path, fd, salt_);
  active_ = number;
  active_bytes_ = header.size();
  active_broken_ = false;
  DropUnneeded(closed);  // the previous active segment may be done with
  return Status::OK();
}

void LogJournal::DropUnneeded(Closed* closed) {
  for (auto it = segments_.begin(); it != segments_.end();) {
    Segment& segment = it->second;
    bool needed = it->first == active_ || segment.live > 0;
    for (auto older = segment.erased_from.begin(); !needed && older != segment.erased_from.end();) {
      needed = segments_.count(*older) > 0;
      if (!needed) older = segment.erased_from.erase(older);  // gone: need not be looked at again
    }
    if (needed) {
      ++it;
      continue;
    }
    if (::unlink(segment.file->path().c_str()) != 0 && errno != ENOENT) {
      ++counters_.errors;
      LOG_EVERY_N(WARNING, 100) << ErrnoError("unlink " + segment.file->path(), errno).ToString();
      ++it;
      continue;
    }
    closed->push_back(std::move(segment.file));
    it = segments_.erase(it);
  }
}

Status LogJournal::AppendBatch(const std::vector<std::pair<uint64_t, const BackingOp*>>& entries) {
  std::string bytes;
  size_t reserve = 0;
  for (const auto& [seq, op] : entries) reserve += op->item.id.size() + op->data().size() + 64;
  bytes.reserve(reserve);
  std::vector<size_t> starts;  // of each record, and the end of the last
  starts.reserve(entries.size() + 1);
  std::vector<JournalKey> keys;  // made before taking mu_
  keys.reserve(entries.size());
  for (const auto& [seq, op] : entries) {
    keys.emplace_back(seq, op->item.id);
    starts.push_back(BeginRecord(kRecordEntry, &bytes));
    AppendKey(seq, op->item.id, &bytes);
    Status s = AppendJournalValue(*op, &bytes);
    if (!s.ok()) return s;
    EndRecord(starts.back(), salt_, &bytes);
  }
  if (entries.empty()) return Status::OK();
  starts.push_back(bytes.size());
  std::shared_ptr<SegmentFile> written;
  {
    Closed closed;
    MutexLock l(&mu_);
    uint64_t segment = 0, offset = 0;
    Status s = Write(bytes, &segment, &offset, &closed);
    if (!s.ok()) return s;
    for (size_t i = 0; i < entries.size(); ++i) {
      Index(std::move(keys[i]), Location{segment, offset + starts[i], starts[i + 1] - starts[i]});
    }
    if (options_.sync) written = segments_[segment].file;
  }
  // Outside mu_: appends of other threads go on meanwhile (and their fdatasyncs share the work).
  if (written != nullptr && ::fdatasync(written->fd()) != 0) {
    ++counters_.errors;
    return ErrnoError("fdatasync " + written->path(), errno);
  }
  counters_.appends += entries.size();
  return Status::OK();
}

Status LogJournal::Erase(const std::vector<JournalKey>& keys) {
  Status s = EraseKeys(keys);
  if (s.ok()) counters_.erases += keys.size();
  return s;
}

Status LogJournal::EraseKeys(const std::vector<JournalKey>& keys) {
  if (keys.empty()) return Status::OK();
  std::string bytes;
  const size_t start = BeginRecord(kRecordErase, &bytes);
  for (const auto& [seq, id] : keys) AppendKey(seq, id, &bytes);
  EndRecord(start, salt_, &bytes);
  Closed closed;
  MutexLock l(&mu_);
  uint64_t segment = 0, offset = 0;
  Status s = Write(bytes, &segment, &offset, &closed);
  if (!s.ok()) return s;
  for (const JournalKey& key : keys) Unindex(key, segment);
  DropUnneeded(&closed);
  return Status::OK();
}

Status LogJournal::ReadEntry(const SegmentFile& file, const Location& location, uint64_t seq,
                             std::string_view id, BackingOp* op) const {
  std::string bytes;
  Status s = ReadAt(file.fd(), location.offset, location.size, &bytes, file.path());
  if (!s.ok()) return s;
  Record record;
  uint64_t stored_seq = 0;
  std::string_view stored_id;
  const bool parsed = ParseRecord(bytes, 0, file.salt(), &record);
  std::string_view value = record.payload;  // once TakeKey has taken the key off
  if (!parsed || record.size != location.size || record.type != kRecordEntry ||
      !TakeKey(&value, &stored_seq, &stored_id) || stored_seq != seq || stored_id != id) {
    return Status::Corruption("journal: the record at " + file.path() + ":" +
                              std::to_string(location.offset) + " is not the entry indexed there");
  }
  return DecodeJournalValue(id, value, options_.max_value_bytes, op);
}

Status LogJournal::Read(uint64_t seq, std::string_view id, BackingOp* op) {
  Location location{};
  std::shared_ptr<SegmentFile> file;
  {
    MutexLock l(&mu_);
    auto it = index_.find(JournalKey(seq, std::string(id)));
    if (it == index_.end()) return Status::NotFound("no journal entry");
    location = it->second;
    file = segments_[location.segment].file;
  }
  const Status s = ReadEntry(*file, location, seq, id, op);
  if (s.code() == Status::Code::kIOError) {
    ++counters_.errors;
    return s;
  }
  ++counters_.reads;
  if (!s.ok()) ++counters_.corrupt;
  return s;
}

Status LogJournal::Replay(bool with_values,
                          const std::function<void(uint64_t seq, BackingOp op)>& fn) {
  // In chunks taken under mu_, read and called back without it.
  constexpr size_t kChunkEntries = 256;
  struct Item {
    JournalKey key;
    Location location;
    std::shared_ptr<SegmentFile> file;
  };
  std::vector<JournalKey> corrupt;
  std::vector<Item> chunk;
  while (true) {
    {
      MutexLock l(&mu_);
      auto it = chunk.empty() ? index_.begin() : index_.upper_bound(chunk.back().key);
      chunk.clear();
      for (; it != index_.end() && chunk.size() < kChunkEntries; ++it) {
        chunk.push_back(Item{it->first, it->second, segments_[it->second.segment].file});
      }
    }
    if (chunk.empty()) break;
    for (const Item& item : chunk) {
      BackingOp op;
      Status s = ReadEntry(*item.file, item.location, item.key.first, item.key.second, &op);
      if (s.code() == Status::Code::kIOError) {
        ++counters_.errors;
        return s;
      }
      if (!s.ok()) {
        ++counters_.corrupt;
        LOG(ERROR) << "journal: dropping an entry that does not decode: " << s.ToString();
        corrupt.push_back(item.key);
        continue;
      }
      if (!with_values) op.DropData();
      fn(item.key.first, std::move(op));
    }
  }
  return EraseKeys(corrupt);
}

}  // namespace

std::unique_ptr<Journal> OpenLogJournal(const JournalOptions& options, Status* status) {
  auto journal = std::make_unique<LogJournal>(options);
  *status = journal->Open();
  if (!status->ok()) return nullptr;
  return journal;
}

}  // namespace sessionserver
