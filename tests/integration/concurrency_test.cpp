// Many threads, and Close while they publish.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
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
  const auto records = cluster.ReadTopic("many", kThreads * kPerThread);
  ASSERT_EQ(records.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::map<std::string, int> next;  // records come in partition, offset order
  for (const auto& rec : records) {
    int& expected = next[*rec.key];
    EXPECT_EQ(*rec.value, std::to_string(expected)) << *rec.key;
    expected = std::stoi(*rec.value) + 1;
  }
  EXPECT_EQ(next.size(), static_cast<std::size_t>(kThreads));
}

// Counts results by code; every call must return one of the allowed ones.
struct Tally {
  std::atomic<int> ok{0}, closed{0}, unknown{0}, other{0};
  void Add(const Result& r) {
    if (r.ok()) {
      ok.fetch_add(1);
    } else if (r.code == ErrorCode::kClosed) {
      closed.fetch_add(1);
    } else if (r.delivery == Delivery::kUnknown) {
      unknown.fetch_add(1);
    } else {
      other.fetch_add(1);
    }
  }
};

TEST(Concurrency, CloseRacingWithEightPublishingThreadsLeavesEveryCallAResult) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("race", 2, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.close_timeout = 2s;
  KafkaPublisher publisher(config);
  Tally tally;
  std::atomic<int> calls{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (;;) {
          const Result r = publisher.Publish(Context::WithTimeout(20s),
                                             {"race", std::to_string(t), "v", {}});
          calls.fetch_add(1);
          tally.Add(r);
          if (r.code == ErrorCode::kClosed) return;
        }
      });
    }
    ASSERT_TRUE(test::WaitFor([&] { return tally.ok.load() >= 200; }));
    publisher.Close();
  }
  EXPECT_EQ(tally.ok + tally.closed + tally.unknown + tally.other, calls.load());
  EXPECT_EQ(tally.other.load(), 0);
  EXPECT_GE(tally.closed.load(), 8);
  EXPECT_EQ(publisher.InFlight(), 0);
  // Every ok message is in the topic.
  const auto records = cluster.ReadTopic("race", tally.ok.load() + 1000, 3s);
  EXPECT_GE(records.size(), static_cast<std::size_t>(tally.ok.load()));
}

TEST(Concurrency, CloseWithMessagesInFlightIsBoundedAndPurgesTheRest) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("slow", 1, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.close_timeout = 200ms;
  KafkaPublisher publisher(config);
  ASSERT_TRUE(publisher.Publish(Context::WithTimeout(10s), {"slow", "k", "warm", {}}).ok());
  cluster.SetRtt(-1, 5000ms);
  Tally tally;
  std::vector<Result> batch_results;
  std::jthread batcher([&] {
    const std::vector<Message> batch(50, Message{"slow", "k", "v", {}});
    batch_results = publisher.PublishBatch(Context::WithTimeout(60s), batch);
  });
  ASSERT_TRUE(test::WaitFor([&] { return publisher.InFlight() == 50; }));
  const auto start = std::chrono::steady_clock::now();
  const Result closed = publisher.Close();
  const auto took = std::chrono::steady_clock::now() - start;
  batcher.join();
  EXPECT_EQ(closed.code, ErrorCode::kDeadlineExceeded);
  EXPECT_LT(took, 4s);  // bounded by close_timeout plus the purge, not the 5 s RTT
  ASSERT_EQ(batch_results.size(), 50u);
  for (const Result& r : batch_results) {
    EXPECT_EQ(r.code, ErrorCode::kClosed) << r.message;
    EXPECT_NE(r.delivery, Delivery::kDelivered);
  }
  EXPECT_EQ(publisher.InFlight(), 0);
}

}  // namespace
}  // namespace dispatch::kafka
