// The snapshot as Prometheus metric families: names, types, values, the
// latency histogram, and promtool's verdict on the exposition.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/metric_type.h>
#include <unistd.h>

#include <cmath>
#include <regex>
#include <set>
#include <string>

#include "http_endpoint.h"
#include "http_test_support.h"
#include "prometheus_metrics.h"

namespace dispatch::relay {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Every field set, to a value of its own.
RelaySnapshot FullSnapshot() {
  RelaySnapshot s;
  s.dispatcher.rounds = 11;
  s.dispatcher.published = 4242;
  s.dispatcher.retried = 13;
  s.dispatcher.parked = 2;
  s.dispatcher.waves = 17;
  s.dispatcher.publisher_recreated = 1;
  s.dispatcher.factory_failures = 3;
  s.dispatcher.store_errors = 5;
  s.dispatcher.oldest_pending_age = 1500ms;
  s.dispatcher.rows_per_second = 812.5;
  s.publisher.published = 4300;
  s.publisher.failed_by_code[static_cast<std::size_t>(ErrorCode::kBrokerUnavailable)] = 7;
  s.publisher.failed_by_code[static_cast<std::size_t>(ErrorCode::kFatal)] = 1;
  s.publisher.failed = 8;
  s.publisher.by_delivery[static_cast<std::size_t>(Delivery::kDelivered)] = 4300;
  s.publisher.by_delivery[static_cast<std::size_t>(Delivery::kNotDelivered)] = 6;
  s.publisher.by_delivery[static_cast<std::size_t>(Delivery::kUnknown)] = 2;
  s.publisher.in_flight = 9;
  s.publisher.queue_depth = 12;
  s.publisher.latency_buckets[0] = 1;     // under 2 us
  s.publisher.latency_buckets[9] = 4000;  // [512, 1024) us
  s.publisher.latency_buckets[12] = 306;  // [4096, 8192) us
  s.publisher.latency_buckets[26] = 1;    // 2^26 us and over
  s.publisher.latency_sum_us = 3.5e6;
  s.retention.batches = 20;
  s.retention.deleted = 50000;
  s.retention.errors = 1;
  s.retention.last_batch_seconds = 0.25;
  s.retention_enabled = true;
  s.started = std::chrono::steady_clock::now() - 100s;
  return s;
}

const MetricFamily& Find(const std::vector<MetricFamily>& families, const std::string& name) {
  for (const MetricFamily& f : families) {
    if (f.name == name) return f;
  }
  throw std::runtime_error("no family " + name);
}

std::vector<MetricFamily> Families(const RelaySnapshot& s) {
  return ToMetricFamilies(s, std::chrono::system_clock::now(), std::chrono::steady_clock::now());
}

TEST(PrometheusMetrics, NamesFollowPrometheusConventions) {
  const std::vector<MetricFamily> families = Families(FullSnapshot());
  const std::regex name("dispatch_(relay|publisher)_[a-z0-9_]+");
  std::set<std::string> seen;
  for (const MetricFamily& f : families) {
    EXPECT_TRUE(std::regex_match(f.name, name)) << f.name;
    EXPECT_TRUE(seen.insert(f.name).second) << "twice: " << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    const bool total = f.name.ends_with("_total");
    EXPECT_EQ(total, f.type == MetricType::Counter) << f.name;
    EXPECT_EQ(f.name.find("_ms"), std::string::npos) << f.name << ": seconds are the base unit";
  }
  EXPECT_EQ(families.size(), 25u);
}

TEST(PrometheusMetrics, DispatcherCountersAndGaugesCarryTheSnapshotsValues) {
  const std::vector<MetricFamily> f = Families(FullSnapshot());
  const auto counter = [&f](const std::string& n) { return Find(f, n).metric.at(0).counter.value; };
  const auto gauge = [&f](const std::string& n) { return Find(f, n).metric.at(0).gauge.value; };
  EXPECT_EQ(counter("dispatch_relay_rounds_total"), 11);
  EXPECT_EQ(counter("dispatch_relay_rows_published_total"), 4242);
  EXPECT_EQ(counter("dispatch_relay_rows_retried_total"), 13);
  EXPECT_EQ(counter("dispatch_relay_rows_parked_total"), 2);
  EXPECT_EQ(counter("dispatch_relay_waves_total"), 17);
  EXPECT_EQ(counter("dispatch_relay_publisher_recreated_total"), 1);
  EXPECT_EQ(counter("dispatch_relay_publisher_factory_failures_total"), 3);
  EXPECT_EQ(counter("dispatch_relay_store_errors_total"), 5);
  EXPECT_EQ(gauge("dispatch_relay_outbox_lag_seconds"), 1.5);
  EXPECT_EQ(gauge("dispatch_relay_rows_per_second"), 812.5);
  EXPECT_EQ(gauge("dispatch_relay_store_up"), 1);
  EXPECT_EQ(gauge("dispatch_publisher_fatal"), 0);
  EXPECT_EQ(gauge("dispatch_publisher_in_flight_messages"), 9);
  EXPECT_EQ(gauge("dispatch_publisher_queue_depth"), 12);
  EXPECT_EQ(counter("dispatch_publisher_messages_published_total"), 4300);
  EXPECT_EQ(gauge("dispatch_relay_retention_enabled"), 1);
  EXPECT_EQ(counter("dispatch_relay_retention_batches_total"), 20);
  EXPECT_EQ(counter("dispatch_relay_retention_rows_deleted_total"), 50000);
  EXPECT_EQ(counter("dispatch_relay_retention_errors_total"), 1);
  EXPECT_EQ(gauge("dispatch_relay_retention_last_batch_seconds"), 0.25);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(gauge("dispatch_relay_start_time_seconds"), now - 100, 5);
}

TEST(PrometheusMetrics, PublisherResultsAreLabelledByCodeAndByDelivery) {
  const std::vector<MetricFamily> f = Families(FullSnapshot());
  const MetricFamily& failed = Find(f, "dispatch_publisher_messages_failed_total");
  // Every code but ok, zeros included, so that rate() has a series from the start.
  ASSERT_EQ(failed.metric.size(), kErrorCodeCount - 1);
  for (const auto& m : failed.metric) {
    ASSERT_EQ(m.label.size(), 1u);
    EXPECT_EQ(m.label[0].name, "code");
    const double expected = m.label[0].value == "broker_unavailable" ? 7
                            : m.label[0].value == "fatal"            ? 1
                                                                     : 0;
    EXPECT_EQ(m.counter.value, expected) << m.label[0].value;
    EXPECT_NE(m.label[0].value, "ok");
  }
  const MetricFamily& results = Find(f, "dispatch_publisher_results_total");
  ASSERT_EQ(results.metric.size(), kDeliveryCount);
  EXPECT_EQ(results.metric[0].label[0].name, "delivery");
  EXPECT_EQ(results.metric[0].label[0].value, "delivered");
  EXPECT_EQ(results.metric[0].counter.value, 4300);
  EXPECT_EQ(results.metric[1].label[0].value, "not_delivered");
  EXPECT_EQ(results.metric[1].counter.value, 6);
  EXPECT_EQ(results.metric[2].label[0].value, "unknown");
  EXPECT_EQ(results.metric[2].counter.value, 2);
}

TEST(PrometheusMetrics, LatencyIsAHistogramInSecondsWithCumulativeBuckets) {
  const std::vector<MetricFamily> families = Families(FullSnapshot());
  const MetricFamily& h = Find(families, "dispatch_publisher_latency_seconds");
  EXPECT_EQ(h.type, MetricType::Histogram);
  const auto& hist = h.metric.at(0).histogram;
  EXPECT_EQ(hist.sample_count, 4308u);  // the last bucket is only in +Inf
  EXPECT_DOUBLE_EQ(hist.sample_sum, 3.5);
  ASSERT_EQ(hist.bucket.size(), kafka::kLatencyBucketCount - 1);
  EXPECT_DOUBLE_EQ(hist.bucket[0].upper_bound, 2e-6);
  EXPECT_EQ(hist.bucket[0].cumulative_count, 1u);
  EXPECT_DOUBLE_EQ(hist.bucket[9].upper_bound, 1024e-6);
  EXPECT_EQ(hist.bucket[9].cumulative_count, 4001u);
  EXPECT_EQ(hist.bucket[12].cumulative_count, 4307u);
  EXPECT_DOUBLE_EQ(hist.bucket.back().upper_bound, std::ldexp(1.0, 26) / 1e6);
  EXPECT_EQ(hist.bucket.back().cumulative_count, 4307u);
  for (std::size_t k = 1; k < hist.bucket.size(); ++k) {
    EXPECT_GE(hist.bucket[k].cumulative_count, hist.bucket[k - 1].cumulative_count);
    EXPECT_GT(hist.bucket[k].upper_bound, hist.bucket[k - 1].upper_bound);
  }
  const std::string text = SerializeText({h});
  EXPECT_THAT(text, HasSubstr("dispatch_publisher_latency_seconds_bucket{le=\"+Inf\"} 4308\n"));
  EXPECT_THAT(text, HasSubstr("dispatch_publisher_latency_seconds_count 4308\n"));
}

TEST(PrometheusMetrics, UnsetStartTimeIsLeftOut) {
  RelaySnapshot s;
  for (const MetricFamily& f : Families(s)) {
    EXPECT_NE(f.name, "dispatch_relay_start_time_seconds");
  }
}

TEST(PrometheusMetrics, PromtoolAcceptsTheExpositionServedAtMetrics) {
  if (access(DISPATCH_PROMTOOL, X_OK) != 0) {
    GTEST_SKIP() << DISPATCH_PROMTOOL << " is missing (Debian package prometheus)";
  }
  HttpOptions o;
  o.listen = "127.0.0.1:0";
  HttpEndpoint endpoint(o, [] { return FullSnapshot(); });
  const test::HttpAnswer a = test::HttpGet(endpoint.port(), "/metrics");
  ASSERT_EQ(a.status, 200) << a.error;
  const test::RunResult r =
      test::RunWithInput(DISPATCH_PROMTOOL, {"check", "metrics"}, a.body, 60s);
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n--- exposition:\n" << a.body;
  EXPECT_EQ(r.output, "") << "promtool's lint findings";
}

TEST(PrometheusMetrics, PromtoolRejectsABrokenExpositionSoItsVerdictMeansSomething) {
  if (access(DISPATCH_PROMTOOL, X_OK) != 0) {
    GTEST_SKIP() << DISPATCH_PROMTOOL << " is missing (Debian package prometheus)";
  }
  const test::RunResult r = test::RunWithInput(
      DISPATCH_PROMTOOL, {"check", "metrics"},
      "# TYPE dispatch_relay_rows_total counter\ndispatch_relay_rows_total{ 1\n", 60s);
  EXPECT_NE(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace dispatch::relay
