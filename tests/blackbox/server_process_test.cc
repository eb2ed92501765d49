// Tests of the black-box harness itself: a sanitizer report in a child's log is found whole.
#include "tests/blackbox/server_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "tests/temp_dir.h"

namespace sessionserver {
namespace {

std::string WriteLog(const TempDir& dir, const std::string& text) {
  const std::string path = dir.path() + "/server.log";
  std::ofstream(path) << text;
  return path;
}

TEST(SanitizerReportsTest, FindsEachReportWholeAndNothingElse) {
  TempDir dir("ss-harness");
  ASSERT_FALSE(dir.path().empty());
  const std::string tsan =
      "==================\n"
      "WARNING: ThreadSanitizer: data race (pid=1)\n"
      "  Read of size 8 at 0x1 by main thread:\n"
      "    #0 send <null>\n"
      "SUMMARY: ThreadSanitizer: data race in send\n";
  const std::string ubsan =
      "storage/segment.cc:10:5: runtime error: signed integer overflow\n"
      "    #0 Foo storage/segment.cc:10\n"
      "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior storage/segment.cc:10:5\n";
  const std::string path = WriteLog(
      dir, "I1207 listening\n" + tsan + "I1207 serving\n" + ubsan + "I1207 stopped cleanly\n");
  EXPECT_EQ(SanitizerReports(path), tsan.substr(tsan.find("WARNING")) + ubsan);
}

TEST(SanitizerReportsTest, ACleanLogHasNone) {
  TempDir dir("ss-harness");
  const std::string path = WriteLog(dir, "I1207 listening\nW1207 Redis slow\nI1207 stopped\n");
  EXPECT_EQ(SanitizerReports(path), "");
  EXPECT_EQ(SanitizerReports(dir.path() + "/missing.log"), "");
}

TEST(SanitizerReportsTest, BoundedInLength) {
  TempDir dir("ss-harness");
  std::string log = "==12==ERROR: AddressSanitizer: heap-use-after-free\n";
  for (int i = 0; i < 1000; ++i) log += "    #" + std::to_string(i) + " frame\n";
  const std::string reports = SanitizerReports(WriteLog(dir, log), /*max_lines=*/50);
  EXPECT_EQ(std::count(reports.begin(), reports.end(), '\n'), 50);
  EXPECT_EQ(reports.rfind("==12==ERROR: AddressSanitizer", 0), 0u);
}

}  // namespace
}  // namespace sessionserver
