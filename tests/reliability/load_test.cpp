// Load: a storm of cancellations, and Close while many threads publish. These
// run in the sanitizer builds too (label `reliability`), so they are scaled to
// stay well under a minute under ThreadSanitizer on two cores.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using namespace std::chrono_literals;
using dispatch::testing::EmbeddedKafkaCluster;

// The current stop_source of one publishing thread, for the canceller.
struct Slot {
  std::mutex mu;
  std::stop_source source{std::nostopstate};
};

TEST(Load, TenThousandCallsCancelledAtRandomMomentsEachEndInOneResultAndNothingLeaks) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 10000;
  constexpr int kPerThread = kCalls / kThreads;
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("storm", 4, 1);
  KafkaPublisher publisher(DefaultKafkaConfig(cluster.Brokers()));
  ASSERT_TRUE(publisher.Publish(Context::WithTimeout(10s), {"storm", "k", "warm", {}}).ok());
  // Every response takes a while, so many calls are in flight when cancelled.
  cluster.SetRtt(-1, 5ms);

  std::array<Slot, kThreads> slots;
  std::atomic<int> results{0};
  std::atomic<int> ok{0};
  std::atomic<int> cancelled_not_delivered{0};
  std::atomic<int> cancelled_unknown{0};
  std::mutex other_mu;
  std::map<std::string, int> other;  // anything else: the test fails listing it
  std::atomic<int> publishers_done{0};
  const auto start = std::chrono::steady_clock::now();
  {
    std::jthread canceller([&] {
      std::mt19937 rng(20261127);
      std::uniform_int_distribution<int> pick(0, kThreads - 1);
      std::uniform_int_distribution<int> pause_us(0, 3000);
      while (publishers_done.load() < kThreads) {
        std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
        Slot& slot = slots[pick(rng)];
        std::stop_source source;
        {
          std::lock_guard lock(slot.mu);
          source = slot.source;
        }
        if (source.stop_possible()) source.request_stop();
      }
    });
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(t);
        std::uniform_int_distribution<int> yields(0, 20);
        for (int i = 0; i < kPerThread; ++i) {
          std::stop_source source;
          {
            std::lock_guard lock(slots[t].mu);
            slots[t].source = source;
          }
          // A few yields, so that some calls are cancelled before they start.
          for (int y = yields(rng); y > 0; --y) std::this_thread::yield();
          const Result r = publisher.Publish(Context::WithStopToken(source.get_token()),
                                             {"storm", std::to_string(t), std::to_string(i), {}});
          results.fetch_add(1);
          if (r.ok()) {
            ok.fetch_add(1);
          } else if (r.code == ErrorCode::kCancelled && r.delivery == Delivery::kNotDelivered) {
            cancelled_not_delivered.fetch_add(1);
          } else if (r.code == ErrorCode::kCancelled && r.delivery == Delivery::kUnknown) {
            cancelled_unknown.fetch_add(1);
          } else {
            std::lock_guard lock(other_mu);
            ++other[std::string(ToString(r.code)) + "/" + std::string(ToString(r.delivery)) +
                    ": " + r.message];
          }
        }
        publishers_done.fetch_add(1);
      });
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(results.load(), kCalls);
  EXPECT_EQ(ok.load() + cancelled_not_delivered.load() + cancelled_unknown.load(), kCalls);
  EXPECT_TRUE(other.empty()) << other.size() << " unexpected results, first: "
                             << other.begin()->first;
  // Late reports of the cancelled calls still arrive and are counted out.
  EXPECT_TRUE(suite::WaitFor([&] { return publisher.InFlight() == 0; }, 30s))
      << publisher.InFlight() << " still in flight";
  // The publisher counted one result per call (and one for the warm-up).
  const PublisherMetrics m = publisher.Metrics();
  EXPECT_EQ(m.published + m.failed, static_cast<std::uint64_t>(kCalls + 1));
  std::cout << "[ storm    ] calls " << kCalls << ", ok " << ok.load()
            << ", cancelled/not_delivered " << cancelled_not_delivered.load()
            << ", cancelled/unknown " << cancelled_unknown.load() << ", "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
}

// Counts what the publishing threads got while Close ran.
struct Tally {
  std::atomic<int> ok{0};
  std::atomic<int> closed{0};
  std::atomic<int> unknown_late{0};  // kClosed or kDeadlineExceeded, delivery unknown
  std::mutex mu;
  std::map<std::string, int> other;
};

// Eight threads publish until their call returns kClosed; returns how long
// Close took. `before_close` runs once the threads are publishing.
template <typename BeforeClose>
std::chrono::milliseconds CloseUnderLoad(EmbeddedKafkaCluster& cluster, KafkaPublisher& publisher,
                                         Tally& tally, BeforeClose before_close) {
  std::chrono::milliseconds took{};
  std::atomic<int> started{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        started.fetch_add(1);
        for (int i = 0;; ++i) {
          const Result r =
              publisher.Publish(Context::WithTimeout(30s),
                                {"load", std::to_string(t), std::to_string(i), {}});
          if (r.ok()) {
            tally.ok.fetch_add(1);
          } else if (r.code == ErrorCode::kClosed && r.delivery != Delivery::kDelivered) {
            tally.closed.fetch_add(1);
            return;
          } else if ((r.code == ErrorCode::kDeadlineExceeded) && r.delivery == Delivery::kUnknown) {
            tally.unknown_late.fetch_add(1);
          } else {
            std::lock_guard lock(tally.mu);
            ++tally.other[std::string(ToString(r.code)) + "/" + std::string(ToString(r.delivery)) +
                          ": " + r.message];
            return;
          }
        }
      });
    }
    EXPECT_TRUE(suite::WaitFor([&] { return started.load() == 8; }));
    before_close(cluster, publisher);
    const auto start = std::chrono::steady_clock::now();
    const Result closed = publisher.Close();
    took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
    EXPECT_TRUE(closed.ok() || closed.code == ErrorCode::kDeadlineExceeded) << closed.message;
  }
  (void)cluster;
  return took;
}

KafkaConfig LoadConfig(const EmbeddedKafkaCluster& cluster) {
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  config.close_timeout = 1s;
  return config;
}

// close_timeout, the 2 s purge drain, and generous slack for the sanitizers.
constexpr auto kCloseBound = 1s + 2s + 5s;

TEST(Load, CloseWhileEightThreadsPublishReturnsInItsBoundAndEndsEveryCall) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("load", 4, 1);
  KafkaPublisher publisher(LoadConfig(cluster));
  cluster.SetRtt(-1, 20ms);  // so that messages are in flight when Close comes
  Tally tally;
  const auto took = CloseUnderLoad(cluster, publisher, tally, [&](auto&, KafkaPublisher& p) {
    EXPECT_TRUE(suite::WaitFor([&] { return tally.ok.load() >= 100; }, 30s));
    EXPECT_TRUE(suite::WaitFor([&] { return p.InFlight() > 0; }));
  });
  EXPECT_TRUE(tally.other.empty()) << "unexpected, first: " << tally.other.begin()->first;
  EXPECT_EQ(tally.closed.load(), 8);  // each thread ended on one kClosed
  EXPECT_LT(took, kCloseBound);
  EXPECT_EQ(publisher.InFlight(), 0);
  std::cout << "[ close    ] ok " << tally.ok.load() << ", closed " << tally.closed.load()
            << ", deadline/unknown " << tally.unknown_late.load() << ", Close took "
            << took.count() << " ms\n";
}

TEST(Load, CloseWithAllBrokersDownWhileEightThreadsPublishReturnsInItsBound) {
  EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("load", 4, 1);
  KafkaPublisher publisher(LoadConfig(cluster));
  Tally tally;
  const auto took = CloseUnderLoad(cluster, publisher, tally, [&](auto& c, KafkaPublisher& p) {
    EXPECT_TRUE(suite::WaitFor([&] { return tally.ok.load() >= 100; }, 30s));
    c.BrokerDown(-1);
    // Every thread's call is now stuck in flight.
    EXPECT_TRUE(suite::WaitFor([&] { return p.InFlight() == 8; }));
  });
  EXPECT_TRUE(tally.other.empty()) << "unexpected, first: " << tally.other.begin()->first;
  EXPECT_EQ(tally.closed.load(), 8);
  EXPECT_LT(took, kCloseBound);
  EXPECT_EQ(publisher.InFlight(), 0);
  std::cout << "[ close    ] brokers down: ok " << tally.ok.load() << ", closed "
            << tally.closed.load() << ", Close took " << took.count() << " ms\n";
}

}  // namespace
}  // namespace dispatch::kafka
