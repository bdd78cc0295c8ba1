#include "prometheus_metrics.h"

#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace dispatch::relay {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

class Families {
 public:
  void Counter(std::string name, std::string help, double value) {
    ClientMetric m;
    m.counter.value = value;
    Add(std::move(name), std::move(help), MetricType::Counter, std::move(m));
  }
  void Gauge(std::string name, std::string help, double value) {
    ClientMetric m;
    m.gauge.value = value;
    Add(std::move(name), std::move(help), MetricType::Gauge, std::move(m));
  }
  // A counter with one label: one series per (label value, count).
  template <typename Values>
  void LabelledCounter(std::string name, std::string help, const std::string& label,
                       const Values& values) {
    MetricFamily family{std::move(name), std::move(help), MetricType::Counter, {}};
    for (const auto& [value, count] : values) {
      ClientMetric m;
      m.label.push_back({label, std::string(value)});
      m.counter.value = static_cast<double>(count);
      family.metric.push_back(std::move(m));
    }
    families_.push_back(std::move(family));
  }
  void Histogram(std::string name, std::string help, ClientMetric::Histogram h) {
    ClientMetric m;
    m.histogram = std::move(h);
    Add(std::move(name), std::move(help), MetricType::Histogram, std::move(m));
  }
  std::vector<MetricFamily> Take() { return std::move(families_); }

 private:
  void Add(std::string name, std::string help, MetricType type, ClientMetric m) {
    families_.push_back(MetricFamily{std::move(name), std::move(help), type, {std::move(m)}});
  }
  std::vector<MetricFamily> families_;
};

void AddDispatcher(Families& f, const DispatcherMetrics& d) {
  const auto n = [](std::uint64_t v) { return static_cast<double>(v); };
  f.Counter("dispatch_relay_rounds_total", "Dispatcher rounds run (claim, publish, record).",
            n(d.rounds));
  f.Counter("dispatch_relay_rows_published_total",
            "Outbox rows marked published after Kafka acknowledged them.", n(d.published));
  f.Counter("dispatch_relay_rows_retried_total",
            "Retriable publish failures recorded with a backoff (the row stays pending).",
            n(d.retried));
  f.Counter("dispatch_relay_rows_parked_total",
            "Outbox rows parked on a permanent failure; they wait for an operator.", n(d.parked));
  f.Counter("dispatch_relay_waves_total",
            "PublishBatch calls; rows published per wave is published / waves.", n(d.waves));
  f.Counter("dispatch_relay_publisher_recreated_total",
            "Publishers made to replace one that returned a fatal error or threw.",
            n(d.publisher_recreated));
  f.Counter("dispatch_relay_publisher_factory_failures_total",
            "Attempts to make a publisher that failed.", n(d.factory_failures));
  f.Counter("dispatch_relay_store_errors_total", "Errors from the outbox store (the database).",
            n(d.store_errors));
  f.Gauge("dispatch_relay_outbox_lag_seconds",
          "Age of the oldest pending outbox row, as last read (at most every 100 ms); 0 when "
          "none is pending.",
          std::chrono::duration<double>(d.oldest_pending_age).count());
  f.Gauge("dispatch_relay_rows_per_second",
          "Rows marked published per second over the rounds of the last 10 seconds.",
          d.rows_per_second);
}

ClientMetric::Histogram LatencyHistogram(const kafka::PublisherMetrics& p) {
  ClientMetric::Histogram h;
  std::uint64_t cumulative = 0;
  // Bucket k holds [2^k, 2^(k+1)) us; the last one is open above, so it
  // only enters +Inf, which the serializer adds with the sample count.
  for (std::size_t k = 0; k + 1 < p.latency_buckets.size(); ++k) {
    cumulative += p.latency_buckets[k];
    h.bucket.push_back({cumulative, std::ldexp(1.0, static_cast<int>(k) + 1) / 1e6});
  }
  h.sample_count = cumulative + p.latency_buckets.back();
  h.sample_sum = p.latency_sum_us / 1e6;
  return h;
}

void AddPublisher(Families& f, const kafka::PublisherMetrics& p, bool fatal) {
  f.Counter("dispatch_publisher_messages_published_total",
            "Messages Kafka acknowledged (ok results), over every publisher the relay made.",
            static_cast<double>(p.published));
  std::vector<std::pair<std::string_view, std::uint64_t>> by_code;
  for (std::size_t i = 1; i < kErrorCodeCount; ++i) {  // 0 is kOk
    by_code.emplace_back(ToString(static_cast<ErrorCode>(i)), p.failed_by_code[i]);
  }
  f.LabelledCounter("dispatch_publisher_messages_failed_total",
                    "Publish results that were not ok, by error code.", "code", by_code);
  std::vector<std::pair<std::string_view, std::uint64_t>> by_delivery;
  for (std::size_t i = 0; i < kDeliveryCount; ++i) {
    by_delivery.emplace_back(ToString(static_cast<Delivery>(i)), p.by_delivery[i]);
  }
  f.LabelledCounter("dispatch_publisher_results_total",
                    "Publish results by delivery outcome: delivered, not_delivered (a retry "
                    "cannot duplicate), unknown (a retry may duplicate).",
                    "delivery", by_delivery);
  f.Gauge("dispatch_publisher_in_flight_messages",
          "Messages produced whose delivery report has not arrived.",
          static_cast<double>(p.in_flight));
  f.Gauge("dispatch_publisher_queue_depth",
          "librdkafka's outq_len: messages and requests waiting to be sent or acknowledged.",
          static_cast<double>(p.queue_depth));
  f.Counter("dispatch_publisher_topic_lookups_total",
            "Topic metadata lookups the publisher made itself (librdkafka before 2.10.1).",
            static_cast<double>(p.topic_lookups));
  f.Histogram("dispatch_publisher_latency_seconds",
              "Time from a publish call to its result (a batch counts once per message).",
              LatencyHistogram(p));
  f.Gauge("dispatch_publisher_fatal",
          "1 while the current publisher has returned a fatal error and is not yet replaced.",
          fatal ? 1 : 0);
}

void AddRetention(Families& f, const RelaySnapshot& s) {
  const RetentionMetrics& r = s.retention;
  const auto n = [](std::uint64_t v) { return static_cast<double>(v); };
  f.Gauge("dispatch_relay_retention_enabled", "1 when the retention job deletes published rows.",
          s.retention_enabled ? 1 : 0);
  f.Counter("dispatch_relay_retention_batches_total", "Retention batches that ran.", n(r.batches));
  f.Counter("dispatch_relay_retention_rows_deleted_total",
            "Published rows deleted by the retention job.", n(r.deleted));
  f.Counter("dispatch_relay_retention_errors_total", "Retention batches that failed.", n(r.errors));
  f.Gauge("dispatch_relay_retention_last_batch_seconds", "Duration of the last retention batch.",
          r.last_batch_seconds);
}

}  // namespace

std::vector<MetricFamily> ToMetricFamilies(const RelaySnapshot& s,
                                           std::chrono::system_clock::time_point now,
                                           std::chrono::steady_clock::time_point steady_now) {
  Families f;
  AddDispatcher(f, s.dispatcher);
  f.Gauge("dispatch_relay_store_up",
          "1 when the outbox store answered its last call, 0 from a failed call until one "
          "succeeds.",
          s.store_ok ? 1 : 0);
  AddPublisher(f, s.publisher, s.publisher_fatal);
  AddRetention(f, s);
  if (s.started != std::chrono::steady_clock::time_point{}) {
    const double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
    f.Gauge("dispatch_relay_start_time_seconds",
            "When the relay started, in seconds since the Unix epoch.",
            now_s - Seconds(steady_now - s.started));
  }
  return f.Take();
}

std::string SerializeText(const std::vector<MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

SnapshotCollectable::SnapshotCollectable(std::function<RelaySnapshot()> snapshot)
    : snapshot_(std::move(snapshot)) {
  if (!snapshot_)
    throw std::invalid_argument("SnapshotCollectable: the snapshot function is empty");
}

std::vector<MetricFamily> SnapshotCollectable::Collect() const {
  const RelaySnapshot s = snapshot_();
  return ToMetricFamilies(s, std::chrono::system_clock::now(), std::chrono::steady_clock::now());
}

}  // namespace dispatch::relay
