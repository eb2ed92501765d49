// Group commit (storage/commit_group.h) over a real journal (the log format in a temp dir) and a
// real redis-server: a change persisted while a group is installed is journaled only at Commit, and
// the write-behind queue does not write it to Redis before that.
#include "storage/commit_group.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "storage/journal.h"
#include "storage/write_behind.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"
#include "util/clock.h"

namespace sessionserver {
namespace {

class CommitGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start());
    RedisOptions ro;
    ro.port = redis_.port();
    Status s;
    store_ = NewRedisBackingStore(ro, &clock_, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    JournalOptions jo;
    jo.path = dir_.path() + "/journal";
    journal_ = OpenLogJournal(jo, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    WriteBehindOptions wo;
    wo.delay_us = 0;  // due at once: only the journal holds it back
    wo.journal = journal_.get();
    queue_ = std::make_unique<WriteBehind>(store_.get(), &clock_, wo);
  }
  void TearDown() override { queue_.reset(); }

  // Queues a put of `id` and persists it as the memory store does after a change.
  void Change(const std::string& id, const std::string& data) {
    BackingOp op{BackingOp::Kind::kPut,
                 ItemRecord{id, data, 20, clock_.NowMicros() + 60'000'000, ++version_, false}};
    const uint64_t seq = queue_->Enqueue(op);
    ASSERT_NE(seq, 0u);
    queue_->Persist(op, seq);
  }
  std::string InRedis(const std::string& id) {
    ItemRecord item;
    bool found = false;
    EXPECT_TRUE(store_->Get(id, &item, &found).ok());
    return found ? item.data : "(none)";
  }

  RedisServer redis_;
  TempDir dir_{"ss-commit-group"};
  FakeClock clock_{SystemClock()->NowMicros()};
  std::unique_ptr<BackingStore> store_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<WriteBehind> queue_;
  uint64_t version_ = 0;
};

TEST_F(CommitGroupTest, ChangesAreJournaledAtCommitAndNotWrittenBefore) {
  CommitGroup group;
  {
    CommitGroup::Scope scope(&group);
    Change("a", "1");
    Change("b", "2");
    Change("a", "3");  // folds into a's pending change
  }
  EXPECT_EQ(group.size(), 3u);
  EXPECT_EQ(journal_->GetStats().appends, 0u);
  // Not journaled, so not written: the queue cannot empty (and Redis has nothing).
  EXPECT_FALSE(queue_->Flush(/*timeout_us=*/50'000).ok());
  EXPECT_EQ(InRedis("a"), "(none)");
  EXPECT_EQ(InRedis("b"), "(none)");

  group.Commit();
  EXPECT_EQ(group.size(), 0u);
  EXPECT_EQ(journal_->GetStats().appends, 3u);
  ASSERT_TRUE(queue_->Flush(10'000'000).ok());
  EXPECT_EQ(InRedis("a"), "3");
  EXPECT_EQ(InRedis("b"), "2");
  // Every entry is erased once written: by the flusher, just after Flush has seen the queue empty.
  for (int i = 0; i < 10'000 && journal_->GetStats().erases < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(journal_->GetStats().erases, 3u);
}

TEST_F(CommitGroupTest, WithoutAGroupEachChangeIsJournaledAtOnce) {
  Change("c", "1");
  EXPECT_EQ(journal_->GetStats().appends, 1u);
  ASSERT_TRUE(queue_->Flush(10'000'000).ok());
  EXPECT_EQ(InRedis("c"), "1");
}

TEST_F(CommitGroupTest, AGroupCommitsWhatIsLeftWhenItGoes) {
  {
    CommitGroup group;
    CommitGroup::Scope scope(&group);
    Change("d", "1");
    EXPECT_EQ(journal_->GetStats().appends, 0u);
  }
  EXPECT_EQ(journal_->GetStats().appends, 1u);
  EXPECT_EQ(CommitGroup::Current(), nullptr);  // the scope restored "no group"
}

}  // namespace
}  // namespace sessionserver
