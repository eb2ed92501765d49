// LatencyHistogram: a high-dynamic-range histogram of latencies in microseconds (1 µs to about
// 1 hour) with 3 significant decimal digits of precision in every range (log-linear buckets, as
// HdrHistogram does), in fixed memory. Percentiles are exact to that precision.
//
// Thread-compatible: one per thread, Merge at the end (or guard it with a mutex). Used by
// session_loadtest and by the server (write-behind and replication delays).
#ifndef SESSIONSERVER_UTIL_LATENCY_HISTOGRAM_H_
#define SESSIONSERVER_UTIL_LATENCY_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace sessionserver {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Values below 1 count as 1; above the range as the range's top (counted in saturated()).
  void Record(int64_t micros);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  int64_t min() const;  // 0 if empty
  int64_t max() const { return max_; }
  double mean() const;
  uint64_t saturated() const { return saturated_; }
  // The smallest recorded value v such that at least p (0..1) of all values are <= v, to the
  // histogram's precision (the bucket's upper bound, never above max()). 0 if empty.
  int64_t Percentile(double p) const;
  // Non-empty buckets as (upper bound µs, count), ascending: for plots.
  std::vector<std::pair<int64_t, uint64_t>> Buckets() const;

 private:
  // Layout (HdrHistogram's with unit 1 µs): 2048 sub-buckets per power of two. Values below 2048
  // have their own slot; a value v >= 2048 with highest bit b goes to group k = b - 10, slot
  // k * 1024 + (v >> k), so each slot spans 2^k values, less than 1/1024 of its lowest value.
  static constexpr int kSubBucketBits = 11;                    // 2048 sub-buckets
  static constexpr int64_t kHighest = (int64_t{1} << 32) - 1;  // ~71.6 minutes
  static size_t IndexOf(int64_t value);
  static int64_t UpperBoundOf(size_t index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
  double sum_ = 0;
  uint64_t saturated_ = 0;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_LATENCY_HISTOGRAM_H_
