// PublisherTally: counters stay cumulative when a publisher is replaced,
// the wrapper forwards every call, and Fatal follows the newest publisher.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dispatch/kafka/config.h"
#include "dispatch/testing/mock_publisher.h"
#include "publisher_tally.h"

namespace dispatch::relay {
namespace {

using dispatch::testing::MockPublisher;
using ::testing::_;
using ::testing::Return;
using namespace std::chrono_literals;

// A publisher's counters as a test sets them.
struct FakeCounters {
  std::mutex mu;
  kafka::PublisherMetrics m;
  kafka::PublisherMetrics Get() {
    std::lock_guard lock(mu);
    return m;
  }
};

Result Fatal() {
  return Result::Error(ErrorCode::kFatal, Delivery::kNotDelivered, true, "fatal: idempotence");
}

TEST(PublisherTally, TheWrapperForwardsEveryCall) {
  PublisherTally tally;
  auto mock = std::make_unique<MockPublisher>();
  MockPublisher& m = *mock;
  m.SetOrdersKeysInBatch(true);
  const Message one{"orders", "k", "v", {}};
  const std::vector<Message> batch = {one, one};
  EXPECT_CALL(m, Publish(_, one)).WillOnce(Return(Result::Delivered(3, 42)));
  EXPECT_CALL(m, PublishBatch(_, _))
      .WillOnce(Return(std::vector<Result>{Result::Delivered(1, 1), Fatal()}));
  FakeCounters counters;
  std::unique_ptr<Publisher> p = tally.Wrap(std::move(mock), [&] { return counters.Get(); });

  EXPECT_TRUE(p->OrdersKeysInBatch());
  const Result r = p->Publish(Context::Background(), one);
  EXPECT_EQ(r.partition, 3);
  EXPECT_EQ(r.offset, 42);
  const std::vector<Result> rs = p->PublishBatch(Context::Background(), batch);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_TRUE(rs[0].ok());
  EXPECT_EQ(rs[1].code, ErrorCode::kFatal);
  m.SetOrdersKeysInBatch(false);
  EXPECT_FALSE(p->OrdersKeysInBatch());
}

TEST(PublisherTally, CountersStayCumulativeWhenAPublisherIsReplaced) {
  PublisherTally tally;
  FakeCounters first;
  first.m.published = 5;
  first.m.failed = 1;
  first.m.failed_by_code[static_cast<std::size_t>(ErrorCode::kFatal)] = 1;
  first.m.by_delivery[0] = 5;
  first.m.latency_buckets[10] = 6;
  first.m.latency_sum_us = 6000;
  first.m.latency_max_us = 2000;
  first.m.in_flight = 4;
  first.m.latency_p50_us = 1000;
  auto p = tally.Wrap(std::make_unique<MockPublisher>(), [&] { return first.Get(); });
  EXPECT_EQ(tally.Total().published, 5u);
  EXPECT_EQ(tally.Total().in_flight, 4);
  p.reset();  // the dispatcher destroys a fatal publisher before making the next
  {
    const kafka::PublisherMetrics t = tally.Total();
    EXPECT_EQ(t.published, 5u);
    EXPECT_EQ(t.in_flight, 0);  // a gauge: no live publisher, nothing in flight
    EXPECT_EQ(t.latency_p50_us, 0);
  }

  FakeCounters second;
  second.m.published = 3;
  second.m.by_delivery[0] = 3;
  second.m.latency_buckets[10] = 3;
  second.m.latency_sum_us = 1000;
  second.m.latency_max_us = 500;
  second.m.in_flight = 2;
  second.m.latency_p50_us = 300;
  p = tally.Wrap(std::make_unique<MockPublisher>(), [&] { return second.Get(); });
  const kafka::PublisherMetrics t = tally.Total();
  EXPECT_EQ(t.published, 8u);
  EXPECT_EQ(t.failed, 1u);
  EXPECT_EQ(t.failed_by_code[static_cast<std::size_t>(ErrorCode::kFatal)], 1u);
  EXPECT_EQ(t.by_delivery[0], 8u);
  EXPECT_EQ(t.latency_buckets[10], 9u);
  EXPECT_EQ(t.latency_sum_us, 7000);
  EXPECT_EQ(t.latency_max_us, 2000);
  EXPECT_EQ(t.in_flight, 2);
  EXPECT_EQ(t.latency_p50_us, 300);
  // The first one's counters are its last snapshot: they do not move any more.
  first.m.published = 100;
  EXPECT_EQ(tally.Total().published, 8u);
}

TEST(PublisherTally, FatalFollowsTheNewestPublisherUntilItIsReplaced) {
  PublisherTally tally;
  EXPECT_FALSE(tally.Fatal());
  FakeCounters counters;
  auto mock = std::make_unique<MockPublisher>();
  EXPECT_CALL(*mock, Publish(_, _)).WillOnce(Return(Result::Delivered())).WillOnce(Return(Fatal()));
  auto p = tally.Wrap(std::move(mock), [&] { return counters.Get(); });
  (void)p->Publish(Context::Background(), Message{"t", "k", "v", {}});
  EXPECT_FALSE(tally.Fatal());
  (void)p->Publish(Context::Background(), Message{"t", "k", "v", {}});
  EXPECT_TRUE(tally.Fatal());
  p.reset();
  EXPECT_TRUE(tally.Fatal()) << "no publisher until the factory makes one: still not ready";
  p = tally.Wrap(std::make_unique<MockPublisher>(), [&] { return counters.Get(); });
  EXPECT_FALSE(tally.Fatal());
}

TEST(PublisherTally, AFatalResultInABatchMarksThePublisherFatal) {
  PublisherTally tally;
  FakeCounters counters;
  auto mock = std::make_unique<MockPublisher>();
  EXPECT_CALL(*mock, PublishBatch(_, _))
      .WillOnce(Return(std::vector<Result>{Result::Delivered(), Fatal()}));
  auto p = tally.Wrap(std::move(mock), [&] { return counters.Get(); });
  const std::vector<Message> batch(2, Message{"t", "k", "v", {}});
  (void)p->PublishBatch(Context::Background(), batch);
  EXPECT_TRUE(tally.Fatal());
}

TEST(PublisherTally, WrapRefusesANullPublisherOrAnEmptyMetricsFunction) {
  PublisherTally tally;
  EXPECT_THROW(
      (void)tally.Wrap(std::unique_ptr<Publisher>(), [] { return kafka::PublisherMetrics{}; }),
      std::invalid_argument);
  EXPECT_THROW((void)tally.Wrap(std::make_unique<MockPublisher>(), nullptr), std::invalid_argument);
  EXPECT_THROW((void)tally.Wrap(std::unique_ptr<kafka::KafkaPublisher>()), std::invalid_argument);
}

TEST(PublisherTally, AKafkaPublishersCountsStayAfterItsWrapperClosesIt) {
  PublisherTally tally;
  kafka::KafkaConfig config = kafka::DefaultKafkaConfig({"127.0.0.1:9"});  // nothing listens
  config.close_timeout = 100ms;
  auto p = tally.Wrap(std::make_unique<kafka::KafkaPublisher>(config));
  // Refused before anything is produced: counted, no broker needed.
  const Result r = p->Publish(Context::Background(), Message{"bad topic", "k", "v", {}});
  EXPECT_EQ(r.code, ErrorCode::kInvalidMessage);
  EXPECT_EQ(tally.Total().failed, 1u);
  p.reset();
  const kafka::PublisherMetrics t = tally.Total();
  EXPECT_EQ(t.failed, 1u);
  EXPECT_EQ(t.failed_by_code[static_cast<std::size_t>(ErrorCode::kInvalidMessage)], 1u);
  EXPECT_FALSE(tally.Fatal());
}

// For ThreadSanitizer as much as for the count: the HTTP thread reads while
// the dispatcher's thread publishes, destroys and makes publishers.
TEST(PublisherTally, TotalNeverGoesBackWhileTheDispatcherReplacesPublishers) {
  PublisherTally tally;
  constexpr int kPublishers = 200;
  std::atomic<bool> done{false};
  std::thread dispatcher([&] {
    for (int i = 0; i < kPublishers; ++i) {
      auto counters = std::make_shared<FakeCounters>();
      auto mock = std::make_unique<MockPublisher>();
      EXPECT_CALL(*mock, Publish(_, _)).WillRepeatedly([counters](const Context&, const Message&) {
        std::lock_guard lock(counters->mu);
        ++counters->m.published;
        return Result::Delivered();
      });
      auto p = tally.Wrap(std::move(mock), [counters] { return counters->Get(); });
      for (int j = 0; j < 5; ++j)
        (void)p->Publish(Context::Background(), Message{"t", "k", "v", {}});
    }
    done = true;
  });
  std::uint64_t last = 0;
  while (!done) {
    const std::uint64_t now = tally.Total().published;
    EXPECT_GE(now, last);
    last = now;
  }
  dispatcher.join();
  EXPECT_EQ(tally.Total().published, std::uint64_t{kPublishers} * 5);
}

}  // namespace
}  // namespace dispatch::relay
