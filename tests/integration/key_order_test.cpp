// A key's order through failures on the embedded cluster, with librdkafka's
// real producer: the publisher's side (a message that cannot be handed over
// stops the later messages of its key in the batch) and the dispatcher's
// side of runs of a key that fail part way (docs/reliability.md, "A key's
// order through failures"). One request in flight and one message per
// request, so that each row of a run meets its own fault. The embedded
// cluster does not check sequence numbers: that half of the proof runs on
// the real cluster (tests/kafka/key_order_test.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dispatch/dispatcher.h"
#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"
#include "dispatch/testing/memory_outbox_store.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using dispatch::testing::EmbeddedKafkaCluster;
using dispatch::testing::MemoryOutboxStore;
using dispatch::testing::Record;

constexpr int kMsgSizeTooLarge = 10;  // Kafka's MESSAGE_TOO_LARGE: permanent

// One request in flight, one message per request: a run's rows meet the
// cluster's faults one by one.
KafkaConfig OneByOne(const EmbeddedKafkaCluster& cluster) {
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.properties["max.in.flight.requests.per.connection"] = "1";
  config.properties["batch.num.messages"] = "1";
  return config;
}

// Row ids (the outbox-id header) of `records`, first copies only, in the
// order they are in the (one-partition) topic.
std::vector<std::string> FirstCopies(const std::vector<Record>& records) {
  std::vector<std::string> ids;
  std::set<std::string> seen;
  for (const Record& r : records) {
    for (const Header& h : r.headers) {
      if (h.key == "outbox-id" && seen.insert(h.value).second) ids.push_back(h.value);
    }
  }
  return ids;
}

TEST(KeyOrder, KafkaPublisherOrdersKeysOnlyWhenIdempotent) {
  EmbeddedKafkaCluster cluster(1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  EXPECT_TRUE(KafkaPublisher(config).OrdersKeysInBatch());
  config.properties["enable.idempotence"] = "false";
  EXPECT_FALSE(KafkaPublisher(config).OrdersKeysInBatch());
  config.properties.clear();
  config.required_acks = RequiredAcks::Leader;
  EXPECT_FALSE(KafkaPublisher(config).OrdersKeysInBatch());
}

TEST(KeyOrder, MessageThatCannotBeHandedOverStopsTheLaterMessagesOfItsKeyOnly) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("q", 1, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.properties["queue.buffering.max.messages"] = "2";
  config.write_timeout = 300ms;  // how long a message waits for room
  KafkaPublisher publisher(config);
  ASSERT_TRUE(suite::WaitFor(
      [&] {
        return publisher.Publish(Context::WithTimeout(10s), {"q", "k", "warm", {}}).ok();
      },
      60s));
  // Nothing is acknowledged for 3 s: the queue stays full after two.
  cluster.SetRtt(-1, 3s);
  const std::vector<Message> batch = {{"q", "k1", "a", {}},
                                      {"q", "k2", "b", {}},
                                      {"q", "k1", "c", {}},
                                      {"q", "k1", "d", {}},
                                      {"q", "k2", "e", {}}};
  const auto results = publisher.PublishBatch(Context::WithTimeout(30s), batch);
  ASSERT_EQ(results.size(), batch.size());
  // c found no room within the write timeout.
  EXPECT_EQ(results[2].delivery, Delivery::kNotDelivered) << results[2].message;
  EXPECT_THAT(results[2].message, HasSubstr("queue"));
  // d, of c's key, was not even tried: it must not be written before c.
  EXPECT_EQ(results[3].code, results[2].code);
  EXPECT_EQ(results[3].delivery, Delivery::kNotDelivered);
  EXPECT_TRUE(results[3].retriable);
  EXPECT_THAT(results[3].message, HasSubstr("message 2 of the batch"));
  // e, of another key, had its own try (and its own wait for room).
  EXPECT_THAT(results[4].message, Not(HasSubstr("message 2 of the batch")));
  EXPECT_THAT(results[4].message, HasSubstr("queue"));
  cluster.SetRtt(-1, 0ms);
}

TEST(KeyOrder, DispatcherParksARunsRowThatTheBrokerRefusesAndTheRunGoesOn) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("orders", 1, 1);
  const KafkaConfig config = OneByOne(cluster);
  {  // connected, with a producer id, before the fault is armed
    KafkaPublisher warm(config);
    ASSERT_TRUE(suite::WaitFor(
        [&] {
          return warm.Publish(Context::WithTimeout(10s), {"orders", "w", "warm", {}}).ok();
        },
        60s));
  }
  MemoryOutboxStore store;
  const auto a1 = store.Append("A", "A1");
  const auto a2 = store.Append("A", "A2");
  const auto a3 = store.Append("A", "A3");
  Dispatcher dispatcher(store, [&] { return std::make_unique<KafkaPublisher>(config); });
  // The new publisher's first produce request carries A1, its second A2.
  cluster.PushRequestErrors(dispatch::testing::ApiKey::kProduce, {0, kMsgSizeTooLarge});
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_EQ(dispatcher.Metrics().waves, 1u) << "the run went in one PublishBatch";
  EXPECT_EQ(stats.published, 2u) << stats.last_error;
  EXPECT_THAT(store.Ids(RowState::kPublished), ElementsAre(a1, a3));
  EXPECT_THAT(store.Ids(RowState::kParked), ElementsAre(a2));
  const auto records = cluster.ReadTopic("orders", 3, 10s);
  // The warm-up record, then A1 and A3.
  EXPECT_THAT(FirstCopies(records), ElementsAre(std::to_string(a1), std::to_string(a3)));
}

TEST(KeyOrder, DispatcherEndsThePublisherOfARunLeftUnknownAndTheKeyLandsInOrder) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("orders", 1, 1);
  KafkaConfig config = OneByOne(cluster);
  config.close_timeout = 100ms;  // purges what the slow broker still holds
  MemoryOutboxStore store;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(store.Append("A", "A" + std::to_string(i)));
  DispatcherOptions options;
  options.publish_timeout = 1s;
  Dispatcher dispatcher(
      store, [&] { return std::make_unique<KafkaPublisher>(config); }, options);
  // Every answer takes longer than the wave may: the run comes back unknown.
  cluster.SetRtt(-1, 1500ms);
  const RoundStats slow = dispatcher.RunOnce();
  EXPECT_LT(slow.published, ids.size());
  EXPECT_EQ(dispatcher.Metrics().publisher_recreated, 1u) << slow.last_error;
  cluster.SetRtt(-1, 0ms);
  ASSERT_TRUE(suite::WaitFor(
      [&] {
        (void)dispatcher.RunOnce();
        return store.Ids(RowState::kPending).empty();
      },
      60s));
  std::vector<std::string> want;
  for (auto id : ids) want.push_back(std::to_string(id));
  // Copies of the slow round may have landed too: the first copies keep the
  // key's order.
  EXPECT_EQ(FirstCopies(cluster.ReadWholeTopic("orders")), want);
}

}  // namespace
}  // namespace dispatch::kafka
