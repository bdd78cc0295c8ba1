// Prepare: the topics a service names up front, looked up before the first
// publish.
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

TEST(Prepare, ReportsEachTopicInInputOrder) {
  EmbeddedKafkaCluster cluster(3);
  cluster.CreateTopic("orders", 3, 1);
  cluster.CreateTopic("payments", 1, 1);
  KafkaPublisher publisher(DefaultKafkaConfig(cluster.Brokers()));
  const std::vector<std::string> topics = {"orders", "no-such-topic", "bad topic", "payments"};
  const auto results = publisher.Prepare(Context::WithTimeout(10s), topics);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].ok()) << results[0].message;
  EXPECT_EQ(results[1].code, ErrorCode::kUnknownTopic) << results[1].message;
  EXPECT_FALSE(results[1].retriable);
  EXPECT_THAT(results[1].message, HasSubstr("\"no-such-topic\""));
  EXPECT_EQ(results[2].code, ErrorCode::kInvalidMessage);
  EXPECT_TRUE(results[3].ok()) << results[3].message;
  for (const Result& r : results) {
    if (!r.ok()) {
      EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
    }
  }
  // Prepare created nothing: the missing topic is still missing.
  EXPECT_EQ(publisher.Publish(Context::WithTimeout(10s), {"no-such-topic", "k", "v", {}}).code,
            ErrorCode::kUnknownTopic);
  EXPECT_TRUE(publisher.Publish(Context::WithTimeout(10s), {"orders", "k", "v", {}}).ok());
}

TEST(Prepare, NoBrokerAnswersBeforeTheDeadline) {
  KafkaConfig config = DefaultKafkaConfig({"127.0.0.1:9"});  // nothing listens
  KafkaPublisher publisher(config);
  const std::vector<std::string> topics = {"orders"};
  const auto results = publisher.Prepare(Context::WithTimeout(300ms), topics);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].code, ErrorCode::kDeadlineExceeded) << results[0].message;
  EXPECT_TRUE(results[0].retriable);
  EXPECT_EQ(results[0].delivery, Delivery::kNotDelivered);
}

TEST(Prepare, AfterCloseReturnsClosed) {
  EmbeddedKafkaCluster cluster(1);
  KafkaPublisher publisher(DefaultKafkaConfig(cluster.Brokers()));
  (void)publisher.Close();
  const std::vector<std::string> topics = {"orders"};
  EXPECT_EQ(publisher.Prepare(Context::WithTimeout(1s), topics).at(0).code, ErrorCode::kClosed);
}

// The library's default allow.auto.create.topics=false reaches the embedded
// cluster as it reaches a broker: a typo in a topic name fails.
TEST(EmbeddedCluster, PublishToATopicNobodyCreatedFailsAsUnknown) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("orders", 1, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.write_timeout = 10s;
  KafkaPublisher publisher(config);
  const Result r = publisher.Publish(Context::WithTimeout(20s), {"ordres", "k", "v", {}});
  EXPECT_EQ(r.code, ErrorCode::kUnknownTopic) << r.message;
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
}

}  // namespace
}  // namespace dispatch::kafka
