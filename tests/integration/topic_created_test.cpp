// A topic created after the publisher found it missing: the same publisher
// writes to it at once (librdkafka alone would keep failing it as unknown
// until one of its own metadata refreshes finds it).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"

namespace dispatch::kafka {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using dispatch::testing::EmbeddedKafkaCluster;

void ExpectUnknownTopic(const Result& r) {
  EXPECT_EQ(r.code, ErrorCode::kUnknownTopic) << r.message;
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
  EXPECT_FALSE(r.retriable);
  EXPECT_THAT(r.message, HasSubstr("\"late\""));
}

TEST(TopicCreatedLater, TheSamePublisherWritesToItOnceItExists) {
  EmbeddedKafkaCluster cluster(1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  // librdkafka's own refresh must not be what finds the new topic.
  config.properties["topic.metadata.refresh.interval.ms"] = "600000";
  KafkaPublisher publisher(config);
  ExpectUnknownTopic(publisher.Publish(Context::WithTimeout(10s), {"late", "k", "early", {}}));
  // librdkafka now holds the topic as missing: a second call is still
  // answered unknown, and well before the write timeout.
  const auto start = std::chrono::steady_clock::now();
  ExpectUnknownTopic(publisher.Publish(Context::WithTimeout(10s), {"late", "k", "again", {}}));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);

  cluster.CreateTopic("late", 2, 1);
  const Result r = publisher.Publish(Context::WithTimeout(10s), {"late", "k", "first", {}});
  ASSERT_TRUE(r.ok()) << r.message;
  const std::vector<Message> batch = {{"late", "a", "second", {}},
                                      {"late", "b", "third", {}},
                                      {"late", std::nullopt, "fourth", {}}};
  for (const Result& b : publisher.PublishBatch(Context::WithTimeout(10s), batch)) {
    EXPECT_TRUE(b.ok()) << b.message;
  }
  EXPECT_EQ(cluster.ReadWholeTopic("late", 30s).size(), 4u) << "only what was acknowledged landed";
}

TEST(TopicCreatedLater, ABatchToAMissingTopicIsAnsweredUnknownForEachMessage) {
  EmbeddedKafkaCluster cluster(1);
  KafkaPublisher publisher(DefaultKafkaConfig(cluster.Brokers()));
  ExpectUnknownTopic(publisher.Publish(Context::WithTimeout(10s), {"late", "k", "early", {}}));
  std::vector<Message> batch;
  for (int i = 0; i < 200; ++i) batch.push_back({"late", std::to_string(i), "v", {}});
  const auto start = std::chrono::steady_clock::now();
  const auto results = publisher.PublishBatch(Context::WithTimeout(10s), batch);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ASSERT_EQ(results.size(), batch.size());
  for (const Result& r : results) ExpectUnknownTopic(r);
}

}  // namespace
}  // namespace dispatch::kafka
