// Unit tests for util/latency_histogram.h (against known inputs) and loadtest/checker.h (it catches
// the anomalies injected on purpose and stays silent on legal histories).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "loadtest/checker.h"
#include "util/latency_histogram.h"

namespace sessionserver::loadtest {
namespace {

// ---------------------------------------------------------------- LatencyHistogram

constexpr int64_t kTop = (int64_t{1} << 32) - 1;  // the range's top (about 71.6 minutes)

void ExpectWithin(int64_t actual, double expected, double relative, const char* what) {
  EXPECT_LE(std::abs(static_cast<double>(actual) - expected), expected * relative)
      << what << ": " << actual << " vs " << expected;
}

TEST(LatencyHistogramTest, EmptyHistogram) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.saturated(), 0u);
  for (double p : {0.0, 0.5, 0.99, 1.0}) EXPECT_EQ(h.Percentile(p), 0) << p;
  EXPECT_TRUE(h.Buckets().empty());
}

TEST(LatencyHistogramTest, SingleValue) {
  for (int64_t v : {int64_t{1}, int64_t{777}, int64_t{123'456}, int64_t{3'000'000'000}}) {
    LatencyHistogram h;
    h.Record(v);
    EXPECT_EQ(h.count(), 1u);
    EXPECT_EQ(h.min(), v);
    EXPECT_EQ(h.max(), v);
    EXPECT_DOUBLE_EQ(h.mean(), static_cast<double>(v));
    // The bucket's upper bound is clamped to max(): every percentile is the value itself.
    for (double p : {0.0, 0.01, 0.5, 0.999, 1.0}) EXPECT_EQ(h.Percentile(p), v) << v << " " << p;
    ASSERT_EQ(h.Buckets().size(), 1u);
    EXPECT_EQ(h.Buckets()[0].second, 1u);
    EXPECT_GE(h.Buckets()[0].first, v);
  }
}

TEST(LatencyHistogramTest, UniformOneToHundredThousand) {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 100'000; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100'000);
  EXPECT_DOUBLE_EQ(h.mean(), 50'000.5);
  ExpectWithin(h.Percentile(0.5), 50'000, 0.001, "p50");
  ExpectWithin(h.Percentile(0.9), 90'000, 0.001, "p90");
  ExpectWithin(h.Percentile(0.99), 99'000, 0.001, "p99");
  ExpectWithin(h.Percentile(0.999), 99'900, 0.001, "p99.9");
  ExpectWithin(h.Percentile(0.9999), 99'990, 0.001, "p99.99");
  EXPECT_EQ(h.Percentile(1.0), 100'000);
  EXPECT_EQ(h.Percentile(0.0), 1);
  EXPECT_EQ(h.Percentile(0.00001), 1);  // rank 1
  // Percentiles are never below the true value (upper bounds) and never above max().
  for (double p = 0.01; p <= 1.0; p += 0.01) {
    const double truth = std::ceil(p * 100'000 - 1e-6);
    EXPECT_GE(static_cast<double>(h.Percentile(p)), truth) << p;
    EXPECT_LE(h.Percentile(p), h.max());
  }
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 2000; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(0.5), 1000);
  EXPECT_EQ(h.Percentile(0.99), 1980);
  EXPECT_EQ(h.Percentile(0.001), 2);
  EXPECT_EQ(h.Buckets().size(), 2000u);
}

TEST(LatencyHistogramTest, ThreeSignificantDigitsAcrossTheRange) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> log2v(0, 32);
  for (int i = 0; i < 2000; ++i) {
    const int64_t v =
        std::min<int64_t>(kTop, static_cast<int64_t>(std::exp2(log2v(rng))));  // 1 .. 2^32
    LatencyHistogram h;
    h.Record(v);
    h.Record(kTop);  // so that the upper bound is not clamped to v
    const int64_t bound = h.Percentile(0.5);
    EXPECT_GE(bound, v);
    EXPECT_LE(static_cast<double>(bound - v), static_cast<double>(v) / 1024.0) << v;
  }
}

TEST(LatencyHistogramTest, PercentileIsMonotonic) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(7, 2);
  LatencyHistogram h;
  for (int i = 0; i < 50'000; ++i) h.Record(static_cast<int64_t>(dist(rng)));
  int64_t last = 0;
  for (double p = 0; p <= 1.0; p += 0.001) {
    const int64_t q = h.Percentile(p);
    EXPECT_GE(q, last) << p;
    last = q;
  }
  EXPECT_EQ(h.Percentile(1.0), h.max());
  EXPECT_EQ(h.Percentile(2.0), h.max());  // clamped
  EXPECT_EQ(h.Percentile(-1.0), h.Percentile(0.0));
}

TEST(LatencyHistogramTest, MergeEqualsRecordingBoth) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> fast(6, 1), slow(12, 1.5);
  LatencyHistogram a, b, both;
  for (int i = 0; i < 20'000; ++i) {
    const int64_t x = static_cast<int64_t>(fast(rng));
    a.Record(x);
    both.Record(x);
  }
  for (int i = 0; i < 5'000; ++i) {
    const int64_t y = static_cast<int64_t>(slow(rng));
    b.Record(y);
    both.Record(y);
  }
  b.Record(int64_t{1} << 40);  // saturates
  both.Record(int64_t{1} << 40);
  LatencyHistogram merged;
  merged.Merge(a);
  merged.Merge(b);
  merged.Merge(LatencyHistogram());  // merging an empty one changes nothing
  EXPECT_EQ(merged.count(), both.count());
  EXPECT_EQ(merged.min(), both.min());
  EXPECT_EQ(merged.max(), both.max());
  EXPECT_NEAR(merged.mean(), both.mean(), 1e-6 * both.mean());
  EXPECT_EQ(merged.saturated(), 1u);
  EXPECT_EQ(merged.Buckets(), both.Buckets());
  for (double p : {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    EXPECT_EQ(merged.Percentile(p), both.Percentile(p)) << p;
  }
}

TEST(LatencyHistogramTest, HugeValuesSaturate) {
  LatencyHistogram h;
  h.Record(10);
  h.Record(int64_t{1} << 40);
  h.Record(INT64_MAX);
  h.Record(kTop);  // the top itself is in range
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.saturated(), 2u);
  EXPECT_EQ(h.max(), kTop);
  EXPECT_GT(h.max(), int64_t{70} * 60 * 1'000'000);  // at least 70 minutes of range
  EXPECT_EQ(h.Percentile(1.0), kTop);
  EXPECT_EQ(h.Percentile(0.5), kTop);
  EXPECT_EQ(h.Percentile(0.25), 10);
  const auto buckets = h.Buckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets.back().first, kTop);
  EXPECT_EQ(buckets.back().second, 3u);
}

TEST(LatencyHistogramTest, TinyValuesCountAsOne) {
  LatencyHistogram h;
  h.Record(0);
  h.Record(-5);
  h.Record(INT64_MIN);
  h.Record(1);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.saturated(), 0u);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 1);
  EXPECT_DOUBLE_EQ(h.mean(), 1.0);
  EXPECT_EQ(h.Percentile(0.5), 1);
  ASSERT_EQ(h.Buckets().size(), 1u);
  EXPECT_EQ(h.Buckets()[0], std::make_pair(int64_t{1}, uint64_t{4}));
}

TEST(LatencyHistogramTest, BucketsSumToCountAndAscend) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> log2v(0, 34);  // some beyond the range
  LatencyHistogram h;
  for (int i = 0; i < 100'000; ++i) h.Record(static_cast<int64_t>(std::exp2(log2v(rng))));
  uint64_t sum = 0;
  int64_t last = 0;
  for (const auto& [upper, n] : h.Buckets()) {
    EXPECT_GT(upper, last);
    EXPECT_GT(n, 0u);
    last = upper;
    sum += n;
  }
  EXPECT_EQ(sum, h.count());
  EXPECT_GT(h.saturated(), 0u);
  EXPECT_EQ(last, kTop);
}

// ---------------------------------------------------------------- Stamp encoding

TEST(CheckerTest, EncodeDecodeRoundTrip) {
  const Stamp in{7, 1'234'567'890'123ull};
  const std::string value = EncodeValue(in, 100);
  ASSERT_EQ(value.size(), 100u);
  EXPECT_EQ(value.substr(0, 4), "SSLT");
  EXPECT_EQ(value.substr(16), std::string(84, 'x'));
  Stamp out;
  ASSERT_TRUE(DecodeStamp(value, &out));
  EXPECT_EQ(out.incarnation, 7u);
  EXPECT_EQ(out.counter, 1'234'567'890'123ull);
}

TEST(CheckerTest, EncodingIsLittleEndianAndAtLeastTheStamp) {
  const std::string v = EncodeValue(Stamp{0x04030201u, 0x0c0b0a0908070605ull}, 3);
  ASSERT_EQ(v.size(), 16u);  // never shorter than the stamp
  for (int i = 0; i < 12; ++i) EXPECT_EQ(static_cast<unsigned char>(v[4 + i]), i + 1) << i;
  Stamp out;
  ASSERT_TRUE(DecodeStamp(v, &out));
  EXPECT_EQ(out.incarnation, 0x04030201u);
  EXPECT_EQ(out.counter, 0x0c0b0a0908070605ull);
}

TEST(CheckerTest, DecodeRejectsWhatIsNotAStamp) {
  Stamp out;
  EXPECT_FALSE(DecodeStamp("", &out));
  EXPECT_FALSE(DecodeStamp("SSLT", &out));
  EXPECT_FALSE(DecodeStamp(EncodeValue(Stamp{1, 2}, 16).substr(0, 15), &out));
  std::string wrong = EncodeValue(Stamp{1, 2}, 64);
  wrong[0] = 's';
  EXPECT_FALSE(DecodeStamp(wrong, &out));
  EXPECT_FALSE(DecodeStamp(std::string(1000, 'x'), &out));
}

// ---------------------------------------------------------------- ConsistencyChecker

void ExpectClean(const ConsistencyChecker& c) {
  const CheckerResults r = c.Results();
  EXPECT_EQ(r.lost_updates, 0u);
  EXPECT_EQ(r.stale_reads, 0u);
  EXPECT_EQ(r.resurrected, 0u);
  EXPECT_TRUE(r.examples.empty()) << r.examples.front();
}

bool Mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CheckerTest, SequentialWritesAndReadsAreClean) {
  ConsistencyChecker c;
  int64_t t = 0;
  for (uint32_t session = 0; session < 3; ++session) {
    c.OnRead(session, ++t, /*found=*/false, Stamp{}, /*for_write=*/true);  // a new session
    c.OnWriteAcked(session, ++t, Stamp{0, 1});
    for (uint64_t i = 2; i <= 50; ++i) {
      c.OnRead(session, ++t, true, Stamp{0, i - 1}, /*for_write=*/false);
      c.OnRead(session, ++t, true, Stamp{0, i - 1}, /*for_write=*/true);
      c.OnWriteAcked(session, ++t, Stamp{0, i});
    }
    c.OnRead(session, ++t, true, Stamp{0, 50}, false);
  }
  ExpectClean(c);
}

TEST(CheckerTest, CatchesLostUpdate) {
  ConsistencyChecker c;
  c.OnWriteAcked(3, 100, Stamp{0, 4});
  c.OnWriteAcked(3, 150, Stamp{0, 5});
  // A writing request that started after (0, 5) was acknowledged reads (0, 4): it will overwrite
  // an acknowledged write.
  c.OnRead(3, 200, true, Stamp{0, 4}, /*for_write=*/true);
  c.OnWriteAcked(3, 300, Stamp{0, 5});  // the same update, not counted twice
  const CheckerResults r = c.Results();
  EXPECT_EQ(r.lost_updates, 1u);
  EXPECT_EQ(r.stale_reads, 0u);
  EXPECT_EQ(r.resurrected, 0u);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_TRUE(Mentions(r.examples[0], "lost update")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "session 3")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "(inc 0, counter 4)")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "(inc 0, counter 5)")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "200 us")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "150 us")) << r.examples[0];
}

TEST(CheckerTest, CatchesTwoWritersThatReadTheSameCounter) {
  // Both writing requests held "the exclusive lock" at once (they overlap, so their reads are
  // not blamed), and both wrote counter 3: one of the two updates is lost.
  ConsistencyChecker c;
  c.OnWriteAcked(1, 50, Stamp{0, 2});
  c.OnRead(1, 100, true, Stamp{0, 2}, true);
  c.OnRead(1, 110, true, Stamp{0, 2}, true);
  c.OnWriteAcked(1, 150, Stamp{0, 3});
  EXPECT_EQ(c.Results().lost_updates, 0u);
  c.OnWriteAcked(1, 160, Stamp{0, 3});
  const CheckerResults r = c.Results();
  EXPECT_EQ(r.lost_updates, 1u);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_TRUE(Mentions(r.examples[0], "same counter")) << r.examples[0];
}

TEST(CheckerTest, BackToBackWritesAcknowledgedOutOfOrderAreNotBlamed) {
  // A writes (0, 5) and releases the lock; B then reads it and writes (0, 6). B's acknowledgement
  // reaches the replayer first (and with an earlier time): legal.
  ConsistencyChecker c;
  c.OnWriteAcked(2, 10, Stamp{0, 4});
  c.OnRead(2, 100, true, Stamp{0, 4}, true);  // A
  c.OnRead(2, 150, true, Stamp{0, 5}, true);  // B
  c.OnWriteAcked(2, 160, Stamp{0, 6});        // B
  c.OnWriteAcked(2, 170, Stamp{0, 5});        // A
  c.OnRead(2, 200, true, Stamp{0, 6}, false);
  ExpectClean(c);
}

TEST(CheckerTest, CatchesStaleRead) {
  ConsistencyChecker c;
  c.OnWriteAcked(9, 100, Stamp{2, 3});
  c.OnRead(9, 200, true, Stamp{2, 2}, /*for_write=*/false);
  const CheckerResults r = c.Results();
  EXPECT_EQ(r.stale_reads, 1u);
  EXPECT_EQ(r.lost_updates, 0u);
  EXPECT_EQ(r.resurrected, 0u);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_TRUE(Mentions(r.examples[0], "stale read")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "session 9")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "(inc 2, counter 2)")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "(inc 2, counter 3)")) << r.examples[0];
}

TEST(CheckerTest, CatchesReadThatFindsNothingAfterAnAcknowledgedWrite) {
  ConsistencyChecker c;
  c.OnWriteAcked(4, 100, Stamp{0, 1});
  c.OnRead(4, 200, /*found=*/false, Stamp{}, false);
  c.OnSignOutAcked(5, 0, 250);  // another session's sign-out excuses nothing
  CheckerResults r = c.Results();
  EXPECT_EQ(r.stale_reads, 1u);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_TRUE(Mentions(r.examples[0], "found nothing")) << r.examples[0];
  // Nor does a sign-out of an older incarnation.
  c.OnWriteAcked(6, 100, Stamp{1, 1});
  c.OnSignOutAcked(6, 0, 50);
  c.OnRead(6, 200, false, Stamp{}, true);  // a writing request: its write loses (1, 1)
  r = c.Results();
  EXPECT_EQ(r.stale_reads, 1u);
  EXPECT_EQ(r.lost_updates, 1u);
}

TEST(CheckerTest, NothingAfterAnOverlappingSignOutIsNotBlamed) {
  ConsistencyChecker c;
  c.OnWriteAcked(4, 100, Stamp{0, 1});
  c.OnRead(4, 200, false, Stamp{}, false);  // the sign-out was in flight...
  c.OnSignOutAcked(4, 0, 250);              // ...and acknowledged after the read started
  ExpectClean(c);
}

TEST(CheckerTest, NothingAfterAnAcknowledgedSignOutIsLegal) {
  ConsistencyChecker c;
  c.OnWriteAcked(4, 100, Stamp{0, 3});
  c.OnSignOutAcked(4, 0, 150);
  c.OnRead(4, 200, false, Stamp{}, false);
  c.OnRead(4, 210, false, Stamp{}, true);
  ExpectClean(c);
}

TEST(CheckerTest, CatchesResurrection) {
  ConsistencyChecker c;
  c.OnWriteAcked(8, 100, Stamp{0, 3});
  c.OnSignOutAcked(8, 0, 150);
  c.OnRead(8, 200, true, Stamp{0, 3}, /*for_write=*/false);
  CheckerResults r = c.Results();
  EXPECT_EQ(r.resurrected, 1u);
  EXPECT_EQ(r.stale_reads, 0u);
  EXPECT_EQ(r.lost_updates, 0u);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_TRUE(Mentions(r.examples[0], "resurrected")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "session 8")) << r.examples[0];
  EXPECT_TRUE(Mentions(r.examples[0], "150 us")) << r.examples[0];
  // A writing request too, and data of an incarnation older than the one signed out.
  c.OnWriteAcked(8, 300, Stamp{1, 1});
  c.OnSignOutAcked(8, 1, 350);
  c.OnRead(8, 400, true, Stamp{0, 3}, true);
  c.OnRead(8, 410, true, Stamp{1, 1}, true);
  r = c.Results();
  EXPECT_EQ(r.resurrected, 3u);
  EXPECT_EQ(r.lost_updates, 0u);
}

TEST(CheckerTest, OverlappingRequestsAreNotBlamed) {
  ConsistencyChecker c;
  c.OnWriteAcked(1, 50, Stamp{0, 2});
  // Acknowledged after these requests started: they may have run before the write.
  c.OnWriteAcked(1, 150, Stamp{0, 3});
  c.OnRead(1, 100, true, Stamp{0, 2}, false);
  c.OnRead(1, 120, true, Stamp{0, 2}, true);
  c.OnRead(1, 150, true, Stamp{0, 2}, false);  // acknowledged at the very start: not before it
  // A sign-out acknowledged after a request started: the request may have read first.
  c.OnSignOutAcked(1, 0, 300);
  c.OnRead(1, 250, true, Stamp{0, 3}, false);
  c.OnRead(1, 300, true, Stamp{0, 3}, false);
  ExpectClean(c);
}

TEST(CheckerTest, NewIncarnationAfterSignOutIsFine) {
  ConsistencyChecker c;
  int64_t t = 0;
  for (uint32_t inc = 0; inc < 4; ++inc) {
    c.OnRead(5, ++t, false, Stamp{}, true);
    c.OnWriteAcked(5, ++t, Stamp{inc, 1});
    for (uint64_t i = 1; i < 10; ++i) {
      c.OnRead(5, ++t, true, Stamp{inc, i}, true);
      c.OnWriteAcked(5, ++t, Stamp{inc, i + 1});
      c.OnRead(5, ++t, true, Stamp{inc, i + 1}, false);
    }
    c.OnSignOutAcked(5, inc, ++t);
    c.OnRead(5, ++t, false, Stamp{}, false);
  }
  ExpectClean(c);
  // Counters restart per incarnation: (4, 1) is not older than (3, 10).
  c.OnWriteAcked(5, ++t, Stamp{4, 1});
  c.OnRead(5, ++t, true, Stamp{4, 1}, false);
  ExpectClean(c);
  // But within the new incarnation staleness still counts.
  c.OnWriteAcked(5, ++t, Stamp{4, 2});
  c.OnRead(5, ++t, true, Stamp{4, 1}, false);
  EXPECT_EQ(c.Results().stale_reads, 1u);
}

TEST(CheckerTest, SessionsAreIndependent) {
  ConsistencyChecker c;
  c.OnWriteAcked(1, 100, Stamp{0, 7});
  c.OnSignOutAcked(1, 0, 150);
  c.OnRead(2, 200, true, Stamp{0, 1}, false);
  c.OnRead(2, 210, false, Stamp{}, true);
  ExpectClean(c);
}

TEST(CheckerTest, KeepsAtMostMaxExamples) {
  ConsistencyChecker c;
  c.OnWriteAcked(1, 100, Stamp{0, 5});
  for (int i = 0; i < 25; ++i) c.OnRead(1, 200 + i, true, Stamp{0, 4}, false);
  c.OnWriteAcked(2, 100, Stamp{0, 1});
  for (int i = 0; i < 5; ++i) c.OnRead(2, 200 + i, false, Stamp{}, false);
  const CheckerResults r = c.Results();
  EXPECT_EQ(r.stale_reads, 30u);
  EXPECT_EQ(r.examples.size(), ConsistencyChecker::kMaxExamples);
}

// Several threads replay a legal history: writers take the session's lock, read its value and
// write counter + 1; readers read; now and then a session is signed out and its incarnation
// bumped. Times come from one atomic clock read under the lock, and the checker hears of each
// event after the lock is released (so reports race and arrive out of order).
TEST(CheckerTest, ConcurrentLegalHistoryIsClean) {
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 3000;
  constexpr uint32_t kSessions = 6;
  struct Session {
    std::mutex mu;
    bool exists = false;
    Stamp stamp;
    uint32_t incarnation = 0;
  };
  std::vector<Session> store(kSessions);
  std::atomic<int64_t> clock{0};
  ConsistencyChecker checker;
  std::atomic<bool> done{false};

  // Results() while the others feed the checker. Mid-run, a request that found nothing before
  // the sign-out that explains it was reported is a suspect (counted until that report): the
  // only kind of anomaly that may show; none may remain at the end.
  std::thread observer([&] {
    while (!done.load()) {
      const CheckerResults r = checker.Results();
      EXPECT_EQ(r.resurrected, 0u);
      for (const std::string& e : r.examples) EXPECT_TRUE(Mentions(e, "found nothing")) << e;
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t) + 1);
      for (int i = 0; i < kOpsPerThread; ++i) {
        const uint32_t id = rng() % kSessions;
        Session& s = store[id];
        const int kind = static_cast<int>(rng() % 100);
        const int64_t start = clock.fetch_add(1);
        if (kind < 40) {  // write
          bool found;
          Stamp seen, written;
          int64_t ack;
          {
            std::lock_guard<std::mutex> lock(s.mu);
            found = s.exists;
            seen = s.stamp;
            written = found ? Stamp{seen.incarnation, seen.counter + 1} : Stamp{s.incarnation, 1};
            s.exists = true;
            s.stamp = written;
            ack = clock.fetch_add(1);
          }
          checker.OnRead(id, start, found, seen, true);
          checker.OnWriteAcked(id, ack, written);
        } else if (kind < 97) {  // read
          bool found;
          Stamp seen;
          {
            std::lock_guard<std::mutex> lock(s.mu);
            found = s.exists;
            seen = s.stamp;
          }
          checker.OnRead(id, start, found, seen, false);
        } else {  // sign-out
          uint32_t ended;
          int64_t ack;
          {
            std::lock_guard<std::mutex> lock(s.mu);
            s.exists = false;
            ended = s.incarnation++;
            ack = clock.fetch_add(1);
          }
          checker.OnSignOutAcked(id, ended, ack);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  observer.join();
  ExpectClean(checker);

  // And an anomaly injected after that legal history is still caught.
  Session& s = store[0];
  if (s.exists) {
    checker.OnRead(0, clock.fetch_add(1), true, Stamp{s.stamp.incarnation, s.stamp.counter - 1},
                   false);
  } else {
    checker.OnWriteAcked(0, clock.fetch_add(1), Stamp{s.incarnation, 1});
    checker.OnRead(0, clock.fetch_add(1), false, Stamp{}, false);
  }
  EXPECT_EQ(checker.Results().stale_reads, 1u);
}

}  // namespace
}  // namespace sessionserver::loadtest
