// Prepare: the topics a service names up front, looked up before the first
// publish.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

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

// librdkafka before 2.10.1 holds the first message to a topic it has not
// seen for its metadata timer (about 1 s): there the publisher looks each new
// topic up itself, once; newer librdkafka needs no lookup. bench/first_publish
// measures what it saves.
bool LibrdkafkaHasMetadataTimer() { return rd_kafka_version() < 0x020a0100; }

TEST(Prepare, ACallLooksUpEachTopicItNamesFirstOnlyWhereLibrdkafkaWaitsForItsTimer) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("orders", 3, 1);
  cluster.CreateTopic("payments", 1, 1);
  cluster.CreateTopic("refunds", 1, 1);
  KafkaPublisher publisher(DefaultKafkaConfig(cluster.Brokers()));
  const std::vector<std::string> prepared = {"refunds"};
  ASSERT_TRUE(publisher.Prepare(Context::WithTimeout(10s), prepared).at(0).ok());

  EXPECT_TRUE(publisher.Publish(Context::WithTimeout(10s), {"orders", "k", "1", {}}).ok());
  EXPECT_TRUE(publisher.Publish(Context::WithTimeout(10s), {"orders", "k", "2", {}}).ok());
  const std::vector<Message> batch = {{"payments", "k", "3", {}},
                                      {"orders", "k", "4", {}},
                                      {"payments", "k", "5", {}},
                                      {"refunds", "k", "6", {}}};
  for (const Result& r : publisher.PublishBatch(Context::WithTimeout(10s), batch)) {
    EXPECT_TRUE(r.ok()) << r.message;
  }
  // orders and payments, once each; refunds was prepared.
  EXPECT_EQ(publisher.Metrics().topic_lookups, LibrdkafkaHasMetadataTimer() ? 2u : 0u)
      << "librdkafka " << rd_kafka_version_str();
}

TEST(Prepare, ALookupWithNoBrokerToAskEndsAtTheCallsDeadlineAsAWaitWould) {
  KafkaConfig config = DefaultKafkaConfig({"127.0.0.1:9"});  // nothing listens
  config.close_timeout = 100ms;  // the message stays queued: Close need not wait for it
  KafkaPublisher publisher(config);
  const auto start = Context::Clock::now();
  const Result r = publisher.Publish(Context::WithTimeout(300ms), {"orders", "k", "v", {}});
  EXPECT_LT(Context::Clock::now() - start, 5s);  // catches a hang, not a latency target
  // The message was handed over before the lookup, so it may still be
  // written: the same result on every librdkafka.
  EXPECT_EQ(r.code, ErrorCode::kDeadlineExceeded) << r.message;
  EXPECT_EQ(r.delivery, Delivery::kUnknown) << r.message;
  EXPECT_EQ(publisher.Metrics().topic_lookups, LibrdkafkaHasMetadataTimer() ? 1u : 0u);
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
