// How a batch is bounded: the context while messages are being handed over,
// and the write timeout per message from its hand-over.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using dispatch::testing::EmbeddedKafkaCluster;
using Clock = std::chrono::steady_clock;

// The index of the first result that says "not produced" (kNotDelivered with
// `code`), checking that every result after it says the same: the call
// stopped handing messages over at one point and produced nothing after it.
std::size_t FirstNotProduced(const std::vector<Result>& results, ErrorCode code) {
  std::size_t first = results.size();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const bool not_produced =
        results[i].code == code && results[i].delivery == Delivery::kNotDelivered;
    if (first == results.size() && not_produced) first = i;
    if (first != results.size()) {
      EXPECT_TRUE(not_produced) << "result " << i << " after the first not produced (" << first
                                << "): " << results[i].message;
      if (!not_produced) break;
    }
  }
  return first;
}

// A batch large enough that handing it over takes far longer than the
// bounds below, with a local queue large enough never to fill.
struct LargeBatch {
  static constexpr std::size_t kSize = 200'000;
  EmbeddedKafkaCluster cluster{1};
  KafkaConfig config;
  std::vector<Message> messages;

  LargeBatch() {
    cluster.CreateTopic("large", 4, 1);
    config = DefaultKafkaConfig(cluster.Brokers());
    config.properties["queue.buffering.max.messages"] = std::to_string(2 * kSize);
    config.close_timeout = 0ms;  // purge what is left at the end of the test
    messages.assign(kSize, Message{"large", "k", "0123456789", {}});
    for (std::size_t i = 0; i < kSize; ++i) messages[i].key = std::to_string(i % 64);
  }
};

TEST(BatchBounds, StopRequestedWhileHandingOverLeavesTheRestNotProduced) {
  LargeBatch batch;
  KafkaPublisher publisher(batch.config);
  std::stop_source source;
  std::jthread stopper([&] {
    // Stop once the batch is partly handed over.
    suite::WaitFor([&] { return publisher.InFlight() >= 1000; }, 30s);
    source.request_stop();
  });
  const auto results =
      publisher.PublishBatch(Context::WithStopToken(source.get_token()), batch.messages);
  stopper.join();
  ASSERT_EQ(results.size(), LargeBatch::kSize);
  const std::size_t first = FirstNotProduced(results, ErrorCode::kCancelled);
  ASSERT_LT(first, results.size()) << "every message was handed over despite the stop request";
  EXPECT_GE(first, 1000u);
  EXPECT_THAT(results[first].message, HasSubstr("not produced"));
  EXPECT_THAT(results[first].message, HasSubstr("\"large\""));
  // What was not produced is not in the topic.
  EXPECT_LE(batch.cluster.ReadWholeTopic("large", 60s).size(), first);
}

TEST(BatchBounds, DeadlineWhileHandingOverLeavesTheRestNotProducedAndReturnsAtIt) {
  LargeBatch batch;
  KafkaPublisher publisher(batch.config);
  ASSERT_TRUE(publisher.Publish(Context::WithTimeout(10s), batch.messages[0]).ok());
  const auto start = Clock::now();
  const auto results = publisher.PublishBatch(Context::WithTimeout(20ms), batch.messages);
  const auto took = Clock::now() - start;
  ASSERT_EQ(results.size(), LargeBatch::kSize);
  const std::size_t first = FirstNotProduced(results, ErrorCode::kDeadlineExceeded);
  ASSERT_LT(first, results.size()) << "every message was handed over after the deadline";
  EXPECT_THAT(results[first].message, HasSubstr("context deadline reached"));
  EXPECT_THAT(results[first].message, HasSubstr("not produced"));
  // Only catches a hang: the lateness itself is measured in bench/.
  EXPECT_LT(took, 10s);
}

// librdkafka's message.timeout.ms counts from each message's produce(); so
// does the publisher's own bound. Here handing the batch over takes several
// write timeouts (a 10-message local queue drained by a broker that answers
// after 100 ms), yet no message waits a write timeout after its hand-over.
TEST(BatchBounds, WriteTimeoutCountsFromEachMessagesHandOverNotFromTheCall) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("slow", 1, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  // A message waits some 100-300 ms after its hand-over: 2 s leaves room for
  // a sanitizer build on a busy machine.
  config.write_timeout = 2s;
  config.properties["queue.buffering.max.messages"] = "10";
  KafkaPublisher publisher(config);
  // Connected, with a producer id: under a sanitizer on a busy machine the
  // first publish can take longer than the write timeout.
  ASSERT_TRUE(suite::WaitFor(
      [&] {
        return publisher.Publish(Context::WithTimeout(10s), {"slow", "k", "warm", {}}).ok();
      },
      60s));
  cluster.SetRtt(-1, 100ms);
  // About 10 messages per round trip: some 6.5 s to hand them all over.
  const std::vector<Message> messages(600, Message{"slow", "k", "v", {}});
  const auto start = Clock::now();
  const auto results = publisher.PublishBatch(Context::WithTimeout(60s), messages);
  const auto took = Clock::now() - start;
  // The premise: handing over outlasted the write timeout by far.
  ASSERT_GT(took, 2 * config.write_timeout);
  for (std::size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << "message " << i << ": " << results[i].message;
  }
}

// A message that waits for room in a full local queue for the whole write
// timeout was never handed over: it is not delivered, whatever the context.
TEST(BatchBounds, FullLocalQueueForTheWriteTimeoutIsNotDelivered) {
  KafkaConfig config = DefaultKafkaConfig({"127.0.0.1:9"});  // nothing listens
  config.write_timeout = 300ms;
  config.close_timeout = 0ms;
  config.properties["queue.buffering.max.messages"] = "1";
  KafkaPublisher publisher(config);
  const std::vector<Message> messages(2, Message{"t", "k", "v", {}});
  const auto results = publisher.PublishBatch(Context::Background(), messages);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(results[0].delivery, Delivery::kUnknown);  // queued: librdkafka may still send it
  EXPECT_EQ(results[1].code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(results[1].delivery, Delivery::kNotDelivered);
  EXPECT_THAT(results[1].message, HasSubstr("local queue stayed full"));
}

}  // namespace
}  // namespace dispatch::kafka
