// Forwarding the publisher's log lines to syslog, and exporting its metrics
// in the Prometheus text format. Runs on an embedded cluster.
//
//   observability            prints the metrics page after a few publishes
#include <syslog.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"

namespace {

// librdkafka's levels are syslog's, so they map one to one.
void ForwardToSyslog(const dispatch::kafka::LogEntry& e) {
  syslog(static_cast<int>(e.level), "kafka %.*s%s%.*s: %.*s", static_cast<int>(e.facility.size()),
         e.facility.data(), e.broker.empty() ? "" : " ", static_cast<int>(e.broker.size()),
         e.broker.data(), static_cast<int>(e.message.size()), e.message.data());
}

// The Prometheus text exposition format, standard library only.
std::string PrometheusText(const dispatch::kafka::PublisherMetrics& m) {
  std::ostringstream out;
  out << "# HELP dispatch_kafka_published_total Publishes that returned ok.\n"
      << "# TYPE dispatch_kafka_published_total counter\n"
      << "dispatch_kafka_published_total " << m.published << "\n"
      << "# HELP dispatch_kafka_failed_total Publishes that failed, by error code.\n"
      << "# TYPE dispatch_kafka_failed_total counter\n";
  for (std::size_t i = 1; i < m.failed_by_code.size(); ++i) {
    out << "dispatch_kafka_failed_total{code=\""
        << dispatch::ToString(static_cast<dispatch::ErrorCode>(i)) << "\"} " << m.failed_by_code[i]
        << "\n";
  }
  out << "# HELP dispatch_kafka_results_total Results by delivery outcome.\n"
      << "# TYPE dispatch_kafka_results_total counter\n";
  for (std::size_t i = 0; i < m.by_delivery.size(); ++i) {
    out << "dispatch_kafka_results_total{delivery=\""
        << dispatch::ToString(static_cast<dispatch::Delivery>(i)) << "\"} " << m.by_delivery[i]
        << "\n";
  }
  out << "# HELP dispatch_kafka_in_flight Messages produced and not yet reported.\n"
      << "# TYPE dispatch_kafka_in_flight gauge\n"
      << "dispatch_kafka_in_flight " << m.in_flight << "\n"
      << "# HELP dispatch_kafka_queue_depth librdkafka's queue of messages and requests.\n"
      << "# TYPE dispatch_kafka_queue_depth gauge\n"
      << "dispatch_kafka_queue_depth " << m.queue_depth << "\n"
      << "# HELP dispatch_kafka_publish_latency_seconds Call to result, over the publisher's life.\n"
      << "# TYPE dispatch_kafka_publish_latency_seconds summary\n"
      << "dispatch_kafka_publish_latency_seconds{quantile=\"0.5\"} " << m.latency_p50_us / 1e6 << "\n"
      << "dispatch_kafka_publish_latency_seconds{quantile=\"0.99\"} " << m.latency_p99_us / 1e6 << "\n"
      << "dispatch_kafka_publish_latency_seconds{quantile=\"1\"} " << m.latency_max_us / 1e6 << "\n";
  return out.str();
}

}  // namespace

int main() {
  openlog("observability-example", LOG_PID, LOG_USER);
  dispatch::testing::EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("orders", 3, 1);

  auto config = dispatch::kafka::DefaultKafkaConfig(cluster.Brokers());
  config.log = ForwardToSyslog;
  dispatch::kafka::KafkaPublisher publisher(config);
  const auto ctx = dispatch::Context::WithTimeout(std::chrono::seconds(10));
  for (int i = 0; i < 100; ++i) {
    (void)publisher.Publish(ctx, {"orders", "order-" + std::to_string(i % 7), "{}", {}});
  }
  (void)publisher.Publish(ctx, {"not a topic", "k", "{}", {}});  // one failure, to show the label
  std::fputs(PrometheusText(publisher.Metrics()).c_str(), stdout);
  (void)publisher.Close();  // its result is counted in no metric; nothing is left in flight
  closelog();
  return 0;
}
