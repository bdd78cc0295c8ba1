// Many threads, and Close while they publish.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using namespace std::chrono_literals;
using dispatch::testing::EmbeddedKafkaCluster;

TEST(Concurrency, SixteenThreadsPublishAndPerKeyOrderHolds) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 200;
  EmbeddedKafkaCluster cluster(3);
  cluster.CreateTopic("many", 6, 1);
  KafkaPublisher publisher(DefaultKafkaConfig(cluster.Brokers()));
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const Result r = publisher.Publish(
              Context::WithTimeout(20s),
              {"many", "key-" + std::to_string(t), std::to_string(i), {}});
          if (!r.ok()) failures.fetch_add(1);
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  const auto records = cluster.ReadTopic("many", kThreads * kPerThread, 60s);
  ASSERT_EQ(records.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::map<std::string, int> next;  // records come in partition, offset order
  for (const auto& rec : records) {
    int& expected = next[*rec.key];
    EXPECT_EQ(*rec.value, std::to_string(expected)) << *rec.key;
    expected = std::stoi(*rec.value) + 1;
  }
  EXPECT_EQ(next.size(), static_cast<std::size_t>(kThreads));
}

// Closes the publisher when a test leaves early, so publishing threads end.
struct CloseOnExit {
  KafkaPublisher& publisher;
  ~CloseOnExit() { (void)publisher.Close(); }
};

TEST(Concurrency, CloseRacingWithEightPublishingThreadsLeavesEveryCallAResult) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("race", 2, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.close_timeout = 2s;
  KafkaPublisher publisher(config);
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::map<std::string, int> other;  // any result but ok and kClosed
  std::atomic<int> ok_count{0};
  std::atomic<int> closed_count{0};
  {
    std::vector<std::jthread> threads;
    CloseOnExit guard{publisher};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          const std::string value = std::to_string(t) + "-" + std::to_string(i);
          const Result r = publisher.Publish(Context::WithTimeout(20s),
                                             {"race", std::to_string(t), value, {}});
          std::lock_guard lock(mu);
          if (r.ok()) {
            acknowledged.insert(value);
            ok_count.fetch_add(1);
          } else if (r.code == ErrorCode::kClosed) {
            closed_count.fetch_add(1);
            return;
          } else {
            ++other[std::string(ToString(r.code)) + "/" + std::string(ToString(r.delivery))];
          }
        }
      });
    }
    ASSERT_TRUE(suite::WaitFor([&] { return ok_count.load() >= 200; }));
    EXPECT_TRUE(publisher.Close().ok());
  }
  EXPECT_TRUE(other.empty()) << "unexpected results, first: " << other.begin()->first;
  EXPECT_EQ(closed_count.load(), 8);  // each thread ended on exactly one kClosed
  EXPECT_EQ(publisher.InFlight(), 0);
  // Every acknowledged message is in the topic.
  const auto records = cluster.ReadTopic("race", acknowledged.size());
  std::set<std::string> landed;
  for (const auto& rec : records) landed.insert(*rec.value);
  for (const auto& value : acknowledged) EXPECT_EQ(landed.count(value), 1u) << value;
}

TEST(Concurrency, CloseWithMessagesInFlightIsBoundedAndPurgesTheRest) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("slow", 1, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.close_timeout = 200ms;
  KafkaPublisher publisher(config);
  ASSERT_TRUE(publisher.Publish(Context::WithTimeout(10s), {"slow", "k", "warm", {}}).ok());
  cluster.SetRtt(-1, 5000ms);
  std::vector<Result> batch_results;
  std::jthread batcher([&] {
    const std::vector<Message> batch(50, Message{"slow", "k", "v", {}});
    batch_results = publisher.PublishBatch(Context::WithTimeout(60s), batch);
  });
  ASSERT_TRUE(suite::WaitFor([&] { return publisher.InFlight() == 50; }));
  const auto start = std::chrono::steady_clock::now();
  const Result closed = publisher.Close();
  const auto took = std::chrono::steady_clock::now() - start;
  batcher.join();
  EXPECT_EQ(closed.code, ErrorCode::kDeadlineExceeded);
  EXPECT_LT(took, 4s);  // bounded by close_timeout plus the purge, not the 5 s RTT
  ASSERT_EQ(batch_results.size(), 50u);
  int not_delivered = 0;
  for (const Result& r : batch_results) {
    EXPECT_EQ(r.code, ErrorCode::kClosed) << r.message;
    EXPECT_NE(r.delivery, Delivery::kDelivered);
    if (r.delivery == Delivery::kNotDelivered) ++not_delivered;
  }
  // Close's result agrees with its waiters: unknown as soon as one purged
  // message may have been written (these were sent and await the slow broker).
  EXPECT_EQ(closed.delivery,
            not_delivered == 50 ? Delivery::kNotDelivered : Delivery::kUnknown);
  EXPECT_THAT(closed.message, ::testing::HasSubstr(std::to_string(not_delivered) +
                                                   " not delivered, " +
                                                   std::to_string(50 - not_delivered) +
                                                   " possibly written"));
  EXPECT_EQ(publisher.InFlight(), 0);
}

}  // namespace
}  // namespace dispatch::kafka
