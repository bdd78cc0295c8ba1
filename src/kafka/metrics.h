// The publisher's counters and latency histogram: recorded on the publish
// path with relaxed atomics (no lock), read as a PublisherMetrics snapshot.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "dispatch/kafka/metrics.h"
#include "dispatch/publisher.h"

namespace dispatch::kafka::internal {

// Latencies in buckets four to a doubling of microseconds (about 19% wide).
class LatencyHistogram {
 public:
  void Record(double us, std::uint64_t count = 1);
  // The upper bound of the bucket holding quantile `q`; 0 with no samples.
  double Quantile(double q) const;
  double Max() const { return max_us_.load(std::memory_order_relaxed); }
  // Counts per doubling of microseconds (PublisherMetrics::latency_buckets).
  std::array<std::uint64_t, kLatencyBucketCount> Doublings() const;
  double SumUs() const { return sum_us_.load(std::memory_order_relaxed); }

 private:
  // Up to 2^27 us, about 2 minutes; four fine buckets make one doubling.
  static constexpr std::size_t kBuckets = std::size_t{4} * kLatencyBucketCount;
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<double> max_us_{0};
  std::atomic<double> sum_us_{0};
};

// Every result a publisher returned: by code, by delivery outcome, and how
// long its call took. Thread-safe.
class MetricsRecorder {
 public:
  void Record(const Result& r, double latency_us);
  // The results of one batch call, which all took `latency_us`: one atomic
  // update per counter that changed, not per result.
  void Record(std::span<const Result> results, double latency_us);
  // The counters and latencies; in_flight and queue_depth are left at 0 for
  // the publisher to fill in.
  PublisherMetrics Snapshot() const;

 private:
  std::atomic<std::uint64_t> published_{0};
  std::array<std::atomic<std::uint64_t>, kErrorCodeCount> failed_by_code_{};
  std::array<std::atomic<std::uint64_t>, kDeliveryCount> by_delivery_{};
  LatencyHistogram latency_;
};

}  // namespace dispatch::kafka::internal
