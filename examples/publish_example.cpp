// Publishes a few outbox rows and reads them back.
//
//   publish_example                      # on an embedded cluster, in process
//   publish_example --brokers host:9092  # on a real Kafka (topic must exist)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  std::string brokers;
  std::string topic = "orders";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
      brokers = argv[++i];
    } else if (std::strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
      topic = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--brokers host:port[,host:port...]] [--topic NAME]\n",
                   argv[0]);
      return 2;
    }
  }

  std::unique_ptr<dispatch::testing::EmbeddedKafkaCluster> embedded;
  if (brokers.empty()) {
    embedded = std::make_unique<dispatch::testing::EmbeddedKafkaCluster>(3);
    embedded->CreateTopic(topic, 3, 1);
    brokers = embedded->Bootstrap();
    std::printf("embedded cluster at %s\n", brokers.c_str());
  }

  dispatch::kafka::KafkaConfig config = dispatch::kafka::DefaultKafkaConfig();
  for (std::size_t start = 0, comma; start <= brokers.size(); start = comma + 1) {
    comma = brokers.find(',', start);
    if (comma == std::string::npos) comma = brokers.size();
    config.brokers.push_back(brokers.substr(start, comma - start));
  }
  config.log = [](const dispatch::kafka::LogEntry& e) {
    if (e.level <= dispatch::kafka::LogLevel::kWarning) {
      std::fprintf(stderr, "kafka %.*s: %.*s\n", static_cast<int>(e.facility.size()),
                   e.facility.data(), static_cast<int>(e.message.size()), e.message.data());
    }
  };

  std::unique_ptr<dispatch::kafka::KafkaPublisher> publisher;
  try {
    publisher = std::make_unique<dispatch::kafka::KafkaPublisher>(config);
  } catch (const dispatch::kafka::ConfigError& e) {
    std::fprintf(stderr, "bad configuration: %s\n", e.what());
    return 2;
  }

  // One row at a time, as a simple dispatcher would.
  const auto ctx = dispatch::Context::WithTimeout(10s);
  const dispatch::Result first = publisher->Publish(
      ctx, {topic, "order-1", R"({"event":"created"})", {{"event-type", "OrderCreated"}}});
  std::printf("order-1 created: %s, partition %d, offset %lld\n",
              first.ok() ? "ok" : first.message.c_str(), first.partition,
              static_cast<long long>(first.offset));

  // A batch: all in flight together, one result per row, in order.
  std::vector<dispatch::Message> rows;
  for (int i = 2; i <= 10; ++i) {
    rows.push_back({topic, "order-" + std::to_string(i % 3), "{\"seq\":" + std::to_string(i) + "}",
                    {{"event-type", "OrderUpdated"}}});
  }
  const auto results = publisher->PublishBatch(ctx, rows);
  int ok = first.ok() ? 1 : 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok()) {
      ++ok;
    } else {
      std::printf("row %zu: %s (%s, %s)\n", i, results[i].message.c_str(),
                  std::string(dispatch::ToString(results[i].delivery)).c_str(),
                  results[i].retriable ? "retry later" : "park it");
    }
  }
  if (const dispatch::Result closed = publisher->Close(); !closed.ok()) {
    std::printf("close: %s\n", closed.message.c_str());
  }
  std::printf("published %d of %zu rows\n", ok, rows.size() + 1);

  const auto records = dispatch::testing::ReadTopic(brokers, topic, rows.size() + 1, 10s);
  std::printf("read back %zu records from %s\n", records.size(), topic.c_str());
  if (ok != static_cast<int>(rows.size() + 1) || records.size() < rows.size() + 1) {
    std::printf("NOT verified\n");
    return 1;
  }
  std::printf("verified: every row acknowledged and present\n");
  return 0;
}
