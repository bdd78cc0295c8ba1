/// @file
/// dispatch::kafka::PublisherMetrics: what a KafkaPublisher has done, as a
/// snapshot of counters (recorded in src/kafka/metrics.cpp).
///
/// Standard library and <dispatch/publisher.h> only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "dispatch/publisher.h"

namespace dispatch::kafka {

/// The number of latency buckets in PublisherMetrics::latency_buckets: one per
/// doubling of microseconds, from under 2 us to 2^26 us (about 67 s) and over.
inline constexpr std::size_t kLatencyBucketCount = 27;

/// The number of dispatch::ErrorCode values; the same as dispatch::kErrorCodeCount,
/// kept here for the code written when it lived in this namespace.
using dispatch::kErrorCodeCount;

/// What a publisher has done since it was created. Taking a snapshot is cheap
/// (atomic loads, no lock on the publish path), so it can back a metrics
/// endpoint that is scraped often.
struct PublisherMetrics {
  std::uint64_t published = 0;  ///< results that were ok
  std::uint64_t failed = 0;     ///< results that were not ok
  /// Failed results by code: failed_by_code[static_cast<size_t>(code)].
  std::array<std::uint64_t, kErrorCodeCount> failed_by_code{};
  /// Every result by outcome: by_delivery[static_cast<size_t>(delivery)].
  std::array<std::uint64_t, kDeliveryCount> by_delivery{};
  std::int64_t in_flight = 0;    ///< produced, delivery report not yet in
  std::int64_t queue_depth = 0;  ///< librdkafka's outq_len: messages and requests pending
  /// Topics the publisher looked up itself when a call first named them, so
  /// that their first message does not wait for librdkafka's metadata timer
  /// (about 1 s). Only on librdkafka before 2.10.1, which has that timer;
  /// always 0 on newer ones. Topics given to Prepare are not counted.
  std::uint64_t topic_lookups = 0;
  /// Time from the call to its result (a batch counts once per message), over
  /// the publisher's life. p50 and p99 come from a histogram with about 19%
  /// resolution; max is exact.
  double latency_p50_us = 0;
  double latency_p99_us = 0;  ///< see latency_p50_us
  double latency_max_us = 0;  ///< see latency_p50_us
  /// The same latencies as counts per doubling of microseconds, which add
  /// up across publishers and across snapshots (a Prometheus histogram is
  /// built from them): latency_buckets[k] counts the results whose call took
  /// at least 2^k us and under 2^(k+1) us; the first bucket also counts the
  /// faster ones, the last (k = 26, from about 67 s) the slower ones. Their
  /// sum is the number of results, published + failed (when read while no
  /// call ends; the counters are read one by one).
  std::array<std::uint64_t, kLatencyBucketCount> latency_buckets{};
  /// The sum of those latencies in microseconds, for a histogram's _sum.
  double latency_sum_us = 0;
};

}  // namespace dispatch::kafka
