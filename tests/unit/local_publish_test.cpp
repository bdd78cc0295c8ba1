// Publisher behaviour that needs no broker: input checks, the context, Close.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <stop_token>
#include <string>

#include "dispatch/kafka/kafka_publisher.h"
#include "kafka/internal.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Nothing listens on the discard port: every produced message stays queued.
KafkaConfig Unreachable() {
  KafkaConfig config = DefaultKafkaConfig({"127.0.0.1:9"});
  config.write_timeout = 30s;
  config.close_timeout = 100ms;
  return config;
}

Message Msg(std::string topic = "orders") { return Message{std::move(topic), "k", "v", {}}; }

TEST(LocalPublish, InvalidTopicIsRejectedWithoutProducing) {
  KafkaPublisher publisher(Unreachable());
  for (const std::string& topic : {std::string(), std::string(250, 'x'), std::string("bad topic"),
                                   std::string("..")}) {
    const Result r = publisher.Publish(Context::Background(), Msg(topic));
    EXPECT_EQ(r.code, ErrorCode::kInvalidMessage) << topic;
    EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
    EXPECT_FALSE(r.retriable);
    EXPECT_THAT(r.message, HasSubstr("topic name"));
  }
  EXPECT_EQ(publisher.InFlight(), 0);
}

TEST(LocalPublish, MessageLargerThanTheMaximumIsRejected) {
  KafkaConfig config = Unreachable();
  config.properties["message.max.bytes"] = "10000";
  KafkaPublisher publisher(config);
  Message big = Msg();
  big.value.assign(20000, 'x');
  const Result r = publisher.Publish(Context::Background(), big);
  EXPECT_EQ(r.code, ErrorCode::kMessageTooLarge);
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
  EXPECT_FALSE(r.retriable);
  EXPECT_THAT(r.message, HasSubstr("message.max.bytes of 10000"));
}

// librdkafka counts key, value, serialized headers and a per-record
// allowance against message.max.bytes. At the boundary, the largest accepted
// message must count exactly the limit and the smallest rejected one the limit
// plus one, and the text must name that count: a sentence true at every size.
TEST(LocalPublish, TooLargeTextNamesTheSizeLibrdkafkaCheckedAtTheBoundary) {
  constexpr std::size_t kLimit = 10000;
  KafkaConfig config = Unreachable();
  config.properties["message.max.bytes"] = std::to_string(kLimit);
  KafkaPublisher publisher(config);
  for (const std::vector<Header>& headers :
       {std::vector<Header>{}, std::vector<Header>{{"h", std::string(100, 'x')}, {"id", "7"}}}) {
    Message m{"orders", "k", "", headers};
    m.value.assign(kLimit - internal::CheckedRecordSize(m), 'x');
    ASSERT_EQ(internal::CheckedRecordSize(m), kLimit);
    // Accepted: queued for the unreachable broker, not rejected at once.
    const Result accepted = publisher.Publish(Context::WithTimeout(50ms), m);
    EXPECT_EQ(accepted.code, ErrorCode::kDeadlineExceeded) << accepted.message;
    m.value.push_back('x');
    const Result rejected = publisher.Publish(Context::WithTimeout(5s), m);
    EXPECT_EQ(rejected.code, ErrorCode::kMessageTooLarge) << rejected.message;
    EXPECT_THAT(rejected.message, HasSubstr("counts " + std::to_string(kLimit + 1) + " bytes"));
    EXPECT_THAT(rejected.message, HasSubstr("value " + std::to_string(m.value.size())));
  }
}

TEST(LocalPublish, AlreadyCancelledContextPublishesNothing) {
  KafkaPublisher publisher(Unreachable());
  std::stop_source source;
  source.request_stop();
  const Result r = publisher.Publish(Context::WithStopToken(source.get_token()), Msg());
  EXPECT_EQ(r.code, ErrorCode::kCancelled);
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
  EXPECT_EQ(publisher.InFlight(), 0);
}

TEST(LocalPublish, AlreadyExpiredContextPublishesNothing) {
  KafkaPublisher publisher(Unreachable());
  const Result r = publisher.Publish(Context::WithTimeout(-1ms), Msg());
  EXPECT_EQ(r.code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
  EXPECT_EQ(publisher.InFlight(), 0);
}

TEST(LocalPublish, UnreachableBrokerReturnsUnknownAtTheDeadline) {
  KafkaPublisher publisher(Unreachable());
  const auto start = std::chrono::steady_clock::now();
  const Result r = publisher.Publish(Context::WithTimeout(200ms), Msg());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(r.delivery, Delivery::kUnknown);
  EXPECT_TRUE(r.retriable);
  EXPECT_THAT(r.message, HasSubstr("context deadline"));
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 10s);  // catches a hang, not a latency target
}

TEST(LocalPublish, WriteTimeoutBoundsACallWithoutDeadline) {
  KafkaConfig config = Unreachable();
  config.write_timeout = 300ms;
  KafkaPublisher publisher(config);
  const Result r = publisher.Publish(Context::Background(), Msg());
  EXPECT_EQ(r.code, ErrorCode::kDeadlineExceeded);
  EXPECT_NE(r.delivery, Delivery::kDelivered);
  EXPECT_THAT(r.message, HasSubstr("300 ms"));
}

TEST(LocalPublish, StopTokenEndsTheWaitWithUnknown) {
  KafkaPublisher publisher(Unreachable());
  std::stop_source source;
  std::jthread canceller([&] {
    // Cancel once the message is in librdkafka's queue.
    suite::WaitFor([&] { return publisher.InFlight() > 0; });
    source.request_stop();
  });
  const Result r = publisher.Publish(Context::WithStopToken(source.get_token()), Msg());
  EXPECT_EQ(r.code, ErrorCode::kCancelled);
  EXPECT_EQ(r.delivery, Delivery::kUnknown);
}

TEST(LocalPublish, StopTokenWhileTheLocalQueueIsFullCancelsWithNothingProduced) {
  KafkaConfig config = Unreachable();
  config.properties["queue.buffering.max.messages"] = "1";
  KafkaPublisher publisher(config);
  std::jthread filler([&] { (void)publisher.Publish(Context::WithTimeout(5s), Msg()); });
  // InFlight() counts a message from just before it is handed over, so wait
  // until librdkafka itself holds it: only then is its one-message queue full.
  ASSERT_TRUE(suite::WaitFor(
      [&] { return publisher.InFlight() == 1 && publisher.Metrics().queue_depth == 1; }));
  std::stop_source source;
  std::jthread canceller([&] {
    // Whether the stop lands before the first attempt or while the call waits
    // for room, the result is the same; the pause only makes the wait likely.
    std::this_thread::sleep_for(20ms);
    source.request_stop();
  });
  const Result r = publisher.Publish(Context::WithStopToken(source.get_token()), Msg());
  EXPECT_EQ(r.code, ErrorCode::kCancelled);
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
  // On a loaded machine the stop can land before the first attempt.
  EXPECT_THAT(r.message, ::testing::AnyOf(HasSubstr("while the local queue was full"),
                                          HasSubstr("before")));
  EXPECT_THAT(r.message, HasSubstr("not produced"));
}

TEST(LocalPublish, BatchDeadlineNamesEachMessagesOwnTopic) {
  KafkaPublisher publisher(Unreachable());
  const std::vector<Message> batch = {Msg("orders"), Msg("payments")};
  const auto results = publisher.PublishBatch(Context::WithTimeout(100ms), batch);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_THAT(results[0].message, HasSubstr("\"orders\""));
  EXPECT_THAT(results[1].message, HasSubstr("\"payments\""));
}

TEST(LocalPublish, PublishAfterCloseReturnsClosedAndCloseTwiceIsFine) {
  KafkaPublisher publisher(Unreachable());
  EXPECT_TRUE(publisher.Close().ok());
  EXPECT_TRUE(publisher.Close().ok());
  const Result r = publisher.Publish(Context::Background(), Msg());
  EXPECT_EQ(r.code, ErrorCode::kClosed);
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
  const std::vector<Message> batch(3, Msg());
  for (const Result& br : publisher.PublishBatch(Context::Background(), batch)) {
    EXPECT_EQ(br.code, ErrorCode::kClosed);
  }
}

TEST(LocalPublish, ClosePurgesQueuedMessagesAndEveryWaiterGetsClosed) {
  KafkaPublisher publisher(Unreachable());
  std::vector<Result> results;
  std::jthread caller([&] {
    const std::vector<Message> batch(5, Msg());
    results = publisher.PublishBatch(Context::Background(), batch);
  });
  ASSERT_TRUE(suite::WaitFor([&] { return publisher.InFlight() == 5; }));
  const Result closed = publisher.Close();
  caller.join();
  ASSERT_EQ(results.size(), 5u);
  for (const Result& r : results) {
    EXPECT_EQ(r.code, ErrorCode::kClosed);
    EXPECT_EQ(r.delivery, Delivery::kNotDelivered);  // never reached a broker
  }
  // Close says what its waiters were told.
  EXPECT_EQ(closed.code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(closed.delivery, Delivery::kNotDelivered);
  EXPECT_THAT(closed.message,
              HasSubstr("5 message(s) were purged: 5 not delivered, 0 possibly written"));
  EXPECT_EQ(publisher.InFlight(), 0);
}

TEST(LocalPublish, BatchReportsBadMessagesInPlace) {
  KafkaConfig config = Unreachable();
  KafkaPublisher publisher(config);
  const std::vector<Message> batch = {Msg("bad topic"), Msg(""), Msg("also bad!")};
  const auto results = publisher.PublishBatch(Context::WithTimeout(5s), batch);
  ASSERT_EQ(results.size(), 3u);
  for (const Result& r : results) {
    EXPECT_EQ(r.code, ErrorCode::kInvalidMessage);
  }
  EXPECT_TRUE(publisher.PublishBatch(Context::Background(), {}).empty());
}

TEST(LocalPublish, LogHookReceivesLibrdkafkaLinesWithTheirBrokerInsteadOfStderr) {
  KafkaConfig config = Unreachable();
  std::mutex mu;
  std::vector<std::string> brokers;
  std::vector<std::string> messages;
  config.log = [&](const LogEntry& e) {
    std::lock_guard lock(mu);
    messages.emplace_back(e.message);
    if (!e.broker.empty()) brokers.emplace_back(e.broker);
  };
  config.properties["debug"] = "broker";
  KafkaPublisher publisher(config);
  EXPECT_TRUE(suite::WaitFor([&] {
    std::lock_guard lock(mu);
    return !brokers.empty();
  }));
  (void)publisher.Close();
  std::lock_guard lock(mu);
  ASSERT_FALSE(brokers.empty());
  EXPECT_THAT(brokers.front(), HasSubstr("127.0.0.1:9"));
  for (const std::string& m : messages) EXPECT_THAT(m, ::testing::Not(::testing::StartsWith("[thrd:")));
}

TEST(LocalPublish, StatisticsHookReceivesLibrdkafkasJson) {
  KafkaConfig config = Unreachable();
  std::mutex mu;
  std::string json;
  config.statistics_interval = 100ms;
  config.statistics = [&](std::string_view doc) {
    std::lock_guard lock(mu);
    json.assign(doc);
  };
  KafkaPublisher publisher(config);
  EXPECT_TRUE(suite::WaitFor([&] {
    std::lock_guard lock(mu);
    return !json.empty();
  }));
  (void)publisher.Close();
  std::lock_guard lock(mu);
  EXPECT_THAT(json, HasSubstr("\"client_id\": \"dispatch-kafka\""));
}

TEST(LocalPublish, MetricsCountResultsByCodeAndOutcome) {
  KafkaPublisher publisher(Unreachable());
  (void)publisher.Publish(Context::Background(), Msg("bad topic"));
  (void)publisher.Publish(Context::WithTimeout(-1ms), Msg());
  const std::vector<Message> batch = {Msg(""), Msg("x y")};
  (void)publisher.PublishBatch(Context::Background(), batch);
  (void)publisher.Publish(Context::WithTimeout(50ms), Msg());  // queued, then deadline
  const PublisherMetrics m = publisher.Metrics();
  EXPECT_EQ(m.published, 0u);
  EXPECT_EQ(m.failed, 5u);
  EXPECT_EQ(m.failed_by_code[static_cast<std::size_t>(ErrorCode::kInvalidMessage)], 3u);
  EXPECT_EQ(m.failed_by_code[static_cast<std::size_t>(ErrorCode::kDeadlineExceeded)], 2u);
  EXPECT_EQ(m.by_delivery[static_cast<std::size_t>(Delivery::kNotDelivered)], 4u);
  EXPECT_EQ(m.by_delivery[static_cast<std::size_t>(Delivery::kUnknown)], 1u);
  EXPECT_EQ(m.in_flight, 1);     // the timed-out message is still queued
  EXPECT_GE(m.queue_depth, 1);
  EXPECT_GE(m.latency_max_us, 50'000.0);
  EXPECT_LE(m.latency_p50_us, m.latency_p99_us);
  EXPECT_LE(m.latency_p99_us, m.latency_max_us);
  // Every result is in one latency bucket; the 50 ms one in [2^15, 2^16) us or later.
  std::uint64_t bucketed = 0;
  for (std::uint64_t c : m.latency_buckets) bucketed += c;
  EXPECT_EQ(bucketed, 5u);
  EXPECT_GE(m.latency_sum_us, 50'000.0);
  std::uint64_t slow = 0;
  for (std::size_t k = 15; k < kLatencyBucketCount; ++k) slow += m.latency_buckets[k];
  EXPECT_GE(slow, 1u);
}

}  // namespace
}  // namespace dispatch::kafka
