// libFuzzer target for DecodeDiskRecord (storage/disk_record.h). Input: one byte n, then
// min(n, rest) bytes of session id, then the record bytes. Decoding must never crash or read out
// of bounds (ASan/UBSan watch), and a record that decodes must re-encode to exactly the same
// bytes (the format is canonical); anything else abort()s.
//
// Built with -DSS_DISK_RECORD_FUZZ_SEEDS instead, this file is a small program that writes a few
// valid inputs into the directory given as its argument, the seed corpus (tests/CMakeLists.txt
// runs it after building the fuzzer): random mutation alone almost never produces a valid
// checksum, so without seeds the success path would go unexercised.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "storage/disk_record.h"
#include "storage/limits.h"

#ifdef SS_DISK_RECORD_FUZZ_SEEDS
#include <cstdio>

namespace {

std::string SeedInput(std::string_view id, const sessionserver::ItemRecord& item, int64_t spill) {
  std::string input(1, static_cast<char>(id.size()));
  input.append(id);
  input.append(sessionserver::EncodeDiskRecord(id, item, spill));
  return input;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  sessionserver::ItemRecord a;
  a.data = "cart=3;user=42";
  a.timeout_minutes = 20;
  a.expires_at_us = 1'700'000'000'000'000;
  a.version = 7;
  sessionserver::ItemRecord b;
  b.data = std::string("\0\x01\xff", 3);
  b.timeout_minutes = sessionserver::kMaxTimeoutMinutes;
  b.expires_at_us = -1;
  b.version = UINT64_MAX;
  b.uninitialized = true;
  sessionserver::ItemRecord c;  // empty data
  c.timeout_minutes = 1;
  const std::string seeds[] = {SeedInput("session-0123456789abcdef", a, 1'699'999'000'000'000),
                               SeedInput("s", b, 0), SeedInput("", c, INT64_MIN)};
  int n = 0;
  for (const std::string& seed : seeds) {
    const std::string path = std::string(argv[1]) + "/seed-" + std::to_string(n++);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(seed.data(), 1, seed.size(), f) != seed.size() ||
        std::fclose(f) != 0) {
      std::perror(path.c_str());
      return 1;
    }
  }
  return 0;
}

#else  // the fuzz target

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* bytes = reinterpret_cast<const char*>(data);
  const size_t id_len = data[0] < size - 1 ? data[0] : size - 1;
  const std::string_view id(bytes + 1, id_len);
  const std::string_view record(bytes + 1 + id_len, size - 1 - id_len);

  sessionserver::ItemRecord item;
  int64_t spill_time_us = 0;
  const sessionserver::Status s = sessionserver::DecodeDiskRecord(
      id, record, sessionserver::kMaxValueBytesCeiling, &item, &spill_time_us);
  if (!s.ok()) {
    if (s.code() != sessionserver::Status::Code::kCorruption) std::abort();
    return 0;
  }
  if (item.id != id) std::abort();
  if (sessionserver::EncodeDiskRecord(id, item, spill_time_us) != record) std::abort();
  return 0;
}

#endif  // SS_DISK_RECORD_FUZZ_SEEDS
