// A service's own test: the mock publisher, the embedded cluster, and the
// dispatcher over the SQLite store.
#include <dispatch/dispatcher.h>
#include <dispatch/kafka/kafka_publisher.h>
#include <dispatch/stores/sqlite_store.h>
#include <dispatch/testing/embedded_kafka.h>
#include <dispatch/testing/mock_publisher.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

using ::testing::_;
using ::testing::Return;

TEST(Consumer, MockPublisherStandsInForKafka) {
  dispatch::testing::MockPublisher publisher;
  EXPECT_CALL(publisher, Publish(_, _)).WillOnce(Return(dispatch::Result::Delivered(0, 1)));
  EXPECT_TRUE(publisher.Publish(dispatch::Context::Background(), {"t", "k", "v", {}}).ok());
}

TEST(Consumer, EmbeddedClusterTakesAPublishAndGivesItBack) {
  dispatch::testing::EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("t", 1, 1);
  dispatch::kafka::KafkaPublisher publisher(dispatch::kafka::DefaultKafkaConfig(cluster.Brokers()));
  const auto r = publisher.Publish(dispatch::Context::WithTimeout(std::chrono::seconds(10)),
                                   {"t", "k", "v", {}});
  ASSERT_TRUE(r.ok()) << r.message;
  const auto records = cluster.ReadTopic("t", 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, std::optional<std::string>("v"));
}

TEST(Consumer, DispatcherPublishesASqliteOutboxThroughTheMock) {
  dispatch::SqliteStore store(":memory:");
  dispatch::OutboxRow row;
  row.key = "order-1";
  row.topic = "orders";
  row.payload = "{}";
  store.Append({row});
  dispatch::Dispatcher dispatcher(store, [] {
    auto publisher = std::make_unique<::testing::NiceMock<dispatch::testing::MockPublisher>>();
    ON_CALL(*publisher, Publish(_, _)).WillByDefault(Return(dispatch::Result::Delivered()));
    return publisher;
  });
  EXPECT_EQ(dispatcher.RunOnce().published, 1u);
  EXPECT_EQ(store.Count().published, 1);
}
