// Publish and read back on the embedded cluster.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"

namespace dispatch::kafka {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using dispatch::testing::EmbeddedKafkaCluster;
using dispatch::testing::Record;

KafkaConfig ConfigFor(const EmbeddedKafkaCluster& cluster) {
  return DefaultKafkaConfig(cluster.Brokers());
}

TEST(Publish, MessagesReadBackByteExact) {
  EmbeddedKafkaCluster cluster(3);
  cluster.CreateTopic("events", 3, 1);
  KafkaPublisher publisher(ConfigFor(cluster));

  const std::string binary("\0\x01\xff\xfe payload \0", 13);
  const std::vector<Message> messages = {
      {"events", "order-1", "plain", {}},
      {"events", std::nullopt, "null key", {}},
      {"events", std::string(), "empty key", {}},
      {"events", std::string("k\0ey", 4), binary, {}},
      {"events", "order-1", std::string(), {}},
      {"events",
       "order-2",
       "headers",
       {{"trace", "a"},
        {"trace", "b"},
        {"bin", std::string("\0\xff", 2)},
        {"empty", ""},
        {std::string("nul\0in key", 11), "v"}}},
  };
  std::map<std::pair<int, long>, const Message*> by_position;
  for (const Message& m : messages) {
    const Result r = publisher.Publish(Context::WithTimeout(10s), m);
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.delivery, Delivery::kDelivered);
    ASSERT_GE(r.partition, 0);
    ASSERT_GE(r.offset, 0);
    by_position[{r.partition, static_cast<long>(r.offset)}] = &m;
  }

  const std::vector<Record> records = cluster.ReadTopic("events", messages.size());
  ASSERT_EQ(records.size(), messages.size());
  for (const Record& rec : records) {
    const auto it = by_position.find({rec.partition, static_cast<long>(rec.offset)});
    ASSERT_NE(it, by_position.end()) << "unexpected record at " << rec.partition << "/"
                                     << rec.offset;
    const Message& sent = *it->second;
    EXPECT_EQ(rec.key, sent.key);
    ASSERT_TRUE(rec.value.has_value());
    EXPECT_EQ(*rec.value, sent.value);
    EXPECT_EQ(rec.headers, sent.headers);
  }
}

TEST(Publish, BatchReturnsOneResultPerMessageInInputOrder) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("batch", 1, 1);
  KafkaPublisher publisher(ConfigFor(cluster));
  std::vector<Message> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back({"batch", "agg", std::to_string(i), {}});

  const std::vector<Result> results = publisher.PublishBatch(Context::WithTimeout(30s), batch);
  ASSERT_EQ(results.size(), batch.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].message;
    if (i > 0) {
      EXPECT_GT(results[i].offset, results[i - 1].offset) << i;
    }
  }
  const PublisherMetrics metrics = publisher.Metrics();
  EXPECT_EQ(metrics.published, batch.size());
  EXPECT_EQ(metrics.by_delivery[static_cast<std::size_t>(Delivery::kDelivered)], batch.size());
  EXPECT_EQ(metrics.failed, 0u);
  EXPECT_EQ(metrics.in_flight, 0);
  EXPECT_GT(metrics.latency_p50_us, 0.0);
  const auto records = cluster.ReadTopic("batch", batch.size());
  ASSERT_EQ(records.size(), batch.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(*records[i].value, batch[i].value);
  }
}

TEST(Publish, BatchWithMixedGoodAndBadMessagesFailsOnlyTheBadOnes) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("mixed", 1, 1);
  KafkaConfig config = ConfigFor(cluster);
  config.properties["message.max.bytes"] = "4096";
  KafkaPublisher publisher(config);
  const std::vector<Message> batch = {
      {"mixed", "a", "one", {}},
      {"bad topic", "a", "x", {}},
      {"mixed", "a", "two", {}},
      {"mixed", "a", std::string(8192, 'x'), {}},
      {"mixed", "a", "three", {}},
  };
  const auto results = publisher.PublishBatch(Context::WithTimeout(10s), batch);
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0].ok()) << results[0].message;
  EXPECT_EQ(results[1].code, ErrorCode::kInvalidMessage);
  EXPECT_TRUE(results[1].permanent());
  EXPECT_TRUE(results[2].ok()) << results[2].message;
  EXPECT_EQ(results[3].code, ErrorCode::kMessageTooLarge);
  EXPECT_TRUE(results[3].permanent());
  EXPECT_TRUE(results[4].ok()) << results[4].message;

  const auto records = cluster.ReadWholeTopic("mixed", 30s);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(*records[0].value, "one");
  EXPECT_EQ(*records[1].value, "two");
  EXPECT_EQ(*records[2].value, "three");
}

TEST(Publish, EveryAckModeDeliversAndAcksNoneSaysSoHonestly) {
  // Each publisher stays open until its record is read back: with acks=0 an
  // ok result only means "sent", and a publisher closed at once may drop the
  // connection before the broker has read the request.
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("acks", 1, 1);
  std::size_t written = 0;
  for (RequiredAcks acks : {RequiredAcks::None, RequiredAcks::Leader, RequiredAcks::All}) {
    KafkaConfig config = ConfigFor(cluster);
    config.required_acks = acks;
    KafkaPublisher publisher(config);
    const std::string value = std::to_string(static_cast<int>(acks));
    const Result r = publisher.Publish(Context::WithTimeout(10s), {"acks", "k", value, {}});
    EXPECT_TRUE(r.ok()) << value << ": " << r.message;
    if (acks == RequiredAcks::None) {
      // No response from the broker: sent, but nothing proves it was written.
      EXPECT_EQ(r.delivery, Delivery::kUnknown);
      EXPECT_EQ(r.offset, -1);
    } else {
      EXPECT_EQ(r.delivery, Delivery::kDelivered);
      EXPECT_EQ(r.offset, static_cast<std::int64_t>(written));
    }
    const auto records = cluster.ReadTopic("acks", ++written, 30s);
    ASSERT_EQ(records.size(), written) << "acks " << value;
    EXPECT_EQ(*records.back().value, value);
  }
}

}  // namespace
}  // namespace dispatch::kafka
