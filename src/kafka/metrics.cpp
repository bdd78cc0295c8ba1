#include "metrics.h"

#include <algorithm>
#include <cmath>

namespace dispatch::kafka::internal {

void LatencyHistogram::Record(double us, std::uint64_t count) {
  const double clamped = std::max(us, 1.0);
  const auto i =
      std::min<std::size_t>(static_cast<std::size_t>(4.0 * std::log2(clamped)), kBuckets - 1);
  counts_[i].fetch_add(count, std::memory_order_relaxed);
  sum_us_.fetch_add(us * static_cast<double>(count), std::memory_order_relaxed);
  double max = max_us_.load(std::memory_order_relaxed);
  while (us > max && !max_us_.compare_exchange_weak(max, us, std::memory_order_relaxed)) {
  }
}

double LatencyHistogram::Quantile(double q) const {
  std::array<std::uint64_t, kBuckets> c{};
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    total += c[i] = counts_[i].load(std::memory_order_relaxed);
  }
  if (total == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += c[i];
    if (seen > rank) return std::min(std::exp2(static_cast<double>(i + 1) / 4.0), Max());
  }
  return Max();
}

// Fine bucket i holds [2^(i/4), 2^((i+1)/4)) us, so its doubling is i / 4:
// floor(floor(4x) / 4) = floor(x).
std::array<std::uint64_t, kLatencyBucketCount> LatencyHistogram::Doublings() const {
  std::array<std::uint64_t, kLatencyBucketCount> d{};
  for (std::size_t i = 0; i < kBuckets; ++i) d[i / 4] += counts_[i].load(std::memory_order_relaxed);
  return d;
}

void MetricsRecorder::Record(const Result& r, double latency_us) {
  if (r.ok()) {
    published_.fetch_add(1, std::memory_order_relaxed);
  } else {
    failed_by_code_[static_cast<std::size_t>(r.code)].fetch_add(1, std::memory_order_relaxed);
  }
  by_delivery_[static_cast<std::size_t>(r.delivery)].fetch_add(1, std::memory_order_relaxed);
  latency_.Record(latency_us);
}

void MetricsRecorder::Record(std::span<const Result> results, double latency_us) {
  std::uint64_t published = 0;
  std::array<std::uint64_t, kErrorCodeCount> failed{};
  std::array<std::uint64_t, kDeliveryCount> delivery{};
  for (const Result& r : results) {
    if (r.ok()) {
      ++published;
    } else {
      ++failed[static_cast<std::size_t>(r.code)];
    }
    ++delivery[static_cast<std::size_t>(r.delivery)];
  }
  if (published > 0) published_.fetch_add(published, std::memory_order_relaxed);
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
    if (failed[i] > 0) failed_by_code_[i].fetch_add(failed[i], std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < kDeliveryCount; ++i) {
    if (delivery[i] > 0) by_delivery_[i].fetch_add(delivery[i], std::memory_order_relaxed);
  }
  if (!results.empty()) latency_.Record(latency_us, results.size());
}

PublisherMetrics MetricsRecorder::Snapshot() const {
  PublisherMetrics m;
  m.published = published_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
    m.failed_by_code[i] = failed_by_code_[i].load(std::memory_order_relaxed);
    m.failed += m.failed_by_code[i];
  }
  for (std::size_t i = 0; i < kDeliveryCount; ++i) {
    m.by_delivery[i] = by_delivery_[i].load(std::memory_order_relaxed);
  }
  m.latency_p50_us = latency_.Quantile(0.50);
  m.latency_p99_us = latency_.Quantile(0.99);
  m.latency_max_us = latency_.Max();
  m.latency_buckets = latency_.Doublings();
  m.latency_sum_us = latency_.SumUs();
  return m;
}

}  // namespace dispatch::kafka::internal
