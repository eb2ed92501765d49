#include "util/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace sessionserver {

namespace {

int HighestBit(uint64_t v) { return 63 - __builtin_clzll(v); }

}  // namespace

size_t LatencyHistogram::IndexOf(int64_t value) {
  const int k = std::max(0, HighestBit(static_cast<uint64_t>(value)) - (kSubBucketBits - 1));
  return static_cast<size_t>((int64_t{k} << (kSubBucketBits - 1)) + (value >> k));
}

int64_t LatencyHistogram::UpperBoundOf(size_t index) {
  const int64_t i = static_cast<int64_t>(index);
  if (i < (int64_t{1} << kSubBucketBits)) return i;  // group 0: one value per slot
  const int k = static_cast<int>(i >> (kSubBucketBits - 1)) - 1;
  const int64_t sub = i - (int64_t{k} << (kSubBucketBits - 1));  // 1024 .. 2047
  return ((sub + 1) << k) - 1;
}

LatencyHistogram::LatencyHistogram() : counts_(IndexOf(kHighest) + 1, 0) {}

void LatencyHistogram::Record(int64_t micros) {
  if (micros < 1) micros = 1;
  if (micros > kHighest) {
    micros = kHighest;
    ++saturated_;
  }
  ++counts_[IndexOf(micros)];
  ++count_;
  min_ = std::min(min_, micros);
  max_ = std::max(max_, micros);
  sum_ += static_cast<double>(micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  saturated_ += other.saturated_;
}

int64_t LatencyHistogram::min() const { return count_ == 0 ? 0 : min_; }

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

int64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p > 0)) p = 0;  // NaN too
  if (p > 1) p = 1;
  // The rank of the value wanted: ceil(p * count), at least 1. The small slack keeps a p that
  // is exact in decimal (0.999 * 100000) from rounding up to the next rank.
  const double exact = p * static_cast<double>(count_);
  uint64_t rank = static_cast<uint64_t>(std::ceil(exact - 1e-9 * std::max(1.0, exact)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(UpperBoundOf(i), max_);
  }
  return max_;  // not reached: the counts sum to count_
}

std::vector<std::pair<int64_t, uint64_t>> LatencyHistogram::Buckets() const {
  std::vector<std::pair<int64_t, uint64_t>> out;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) out.emplace_back(UpperBoundOf(i), counts_[i]);
  }
  return out;
}

}  // namespace sessionserver
