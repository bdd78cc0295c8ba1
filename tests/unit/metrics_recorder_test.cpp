// The publisher's metrics recorder (src/kafka/metrics.h) on its own: the
// latency counts per doubling that a Prometheus histogram is built from.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kafka/metrics.h"

namespace dispatch::kafka::internal {
namespace {

std::uint64_t Sum(const PublisherMetrics& m) {
  return std::accumulate(m.latency_buckets.begin(), m.latency_buckets.end(), std::uint64_t{0});
}

TEST(MetricsRecorder, LatencyBucketsCountEachResultInItsDoubling) {
  MetricsRecorder recorder;
  recorder.Record(Result::Delivered(), 0.3);   // under 1 us: the first bucket
  recorder.Record(Result::Delivered(), 1.0);   // [1, 2)
  recorder.Record(Result::Delivered(), 1.99);  // [1, 2)
  recorder.Record(Result::Delivered(), 2.0);   // [2, 4)
  recorder.Record(Result::Delivered(), 1000);  // [512, 1024): k = 9
  recorder.Record(Result::Delivered(), 1024);  // [1024, 2048): k = 10
  recorder.Record(Result::Delivered(), 1e12);  // beyond 2^27 us: the last bucket
  const PublisherMetrics m = recorder.Snapshot();
  EXPECT_EQ(m.latency_buckets[0], 3u);
  EXPECT_EQ(m.latency_buckets[1], 1u);
  EXPECT_EQ(m.latency_buckets[9], 1u);
  EXPECT_EQ(m.latency_buckets[10], 1u);
  EXPECT_EQ(m.latency_buckets[kLatencyBucketCount - 1], 1u);
  EXPECT_EQ(Sum(m), 7u);
  EXPECT_DOUBLE_EQ(m.latency_sum_us, 0.3 + 1.0 + 1.99 + 2.0 + 1000 + 1024 + 1e12);
}

TEST(MetricsRecorder, ABatchCountsOnceInItsBucketPerResult) {
  MetricsRecorder recorder;
  std::vector<Result> results(3, Result::Delivered());
  results.push_back(
      Result::Error(ErrorCode::kBrokerUnavailable, Delivery::kNotDelivered, true, "broker down"));
  recorder.Record(results, 300);  // [256, 512): k = 8
  const PublisherMetrics m = recorder.Snapshot();
  EXPECT_EQ(m.latency_buckets[8], 4u);
  EXPECT_EQ(Sum(m), m.published + m.failed);
  EXPECT_DOUBLE_EQ(m.latency_sum_us, 1200);
}

TEST(MetricsRecorder, NoResultsLeaveTheBucketsEmpty) {
  const PublisherMetrics m = MetricsRecorder().Snapshot();
  EXPECT_EQ(Sum(m), 0u);
  EXPECT_EQ(m.latency_sum_us, 0);
}

}  // namespace
}  // namespace dispatch::kafka::internal
