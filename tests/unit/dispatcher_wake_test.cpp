// How a quiet Dispatcher::Run notices rows: it waits on a store that wakes
// (OutboxStore::WaitForRows) until a new row, the earliest retry time it
// recorded, or poll_max; a store that does not wake is polled as before
// (dispatcher_test.cpp). The in-memory store wakes on Append.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include "dispatch/dispatcher.h"
#include "dispatch/testing/memory_outbox_store.h"
#include "dispatch/testing/mock_publisher.h"
#include "test_util.h"

namespace dispatch {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using SteadyClock = std::chrono::steady_clock;
using suite::WaitFor;  // bounded: a condition that never comes fails the test

// Publishers that deliver every message, except that a payload starting with
// "flaky" fails (retriable) the first time it is sent.
PublisherFactory FlakyOnce() {
  auto sent = std::make_shared<std::pair<std::mutex, std::set<std::string>>>();
  return [sent]() -> std::unique_ptr<Publisher> {
    auto publisher = std::make_unique<NiceMock<testing::MockPublisher>>();
    ON_CALL(*publisher, PublishBatch)
        .WillByDefault([sent](const Context&, std::span<const Message> batch) {
          std::lock_guard lock(sent->first);
          std::vector<Result> results;
          for (const Message& m : batch) {
            const bool first = sent->second.insert(m.value).second;
            results.push_back(first && m.value.starts_with("flaky")
                                  ? Result::Error(ErrorCode::kBrokerUnavailable,
                                                  Delivery::kNotDelivered, true, "broker down")
                                  : Result::Delivered());
          }
          return results;
        });
    return publisher;
  };
}

// Options under which a dispatcher that missed a wake would sit for an hour.
DispatcherOptions HourLongPolls() {
  DispatcherOptions options;
  options.poll_min = 1h;
  options.poll_max = 1h;
  options.retry_base = 1ms;
  options.retry_cap = 5ms;
  return options;
}

class DispatcherWakeTest : public ::testing::Test {
 protected:
  // Starts Run on a thread; `returned` turns true when Run returns.
  static std::jthread RunInBackground(Dispatcher& dispatcher, std::atomic<bool>& returned) {
    return std::jthread([&](std::stop_token stop) {
      dispatcher.Run(stop);
      returned = true;
    });
  }
  testing::MemoryOutboxStore store_;
};

TEST_F(DispatcherWakeTest, RunPublishesARowAppendedWhileItWaitsLongBeforePollMax) {
  Dispatcher dispatcher(store_, FlakyOnce(), HourLongPolls());
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  ASSERT_TRUE(WaitFor([&] { return store_.Claims() >= 1 && !store_.ClaimOpen(); }));
  const auto id = store_.Append("A", "A1");
  EXPECT_TRUE(WaitFor([&] { return dispatcher.Metrics().published == 1; }))
      << "Run did not wake on the new row";
  EXPECT_EQ(store_.Row(id).state, RowState::kPublished);
}

TEST_F(DispatcherWakeTest, ARetryTimeWakesRunWithoutAnyInsert) {
  const auto id = store_.Append("A", "flaky-1");
  Dispatcher dispatcher(store_, FlakyOnce(), HourLongPolls());
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  EXPECT_TRUE(WaitFor([&] { return dispatcher.Metrics().published == 1; }))
      << "Run slept past the row's retry time";
  EXPECT_EQ(dispatcher.Metrics().retried, 1u);
  EXPECT_EQ(store_.Row(id).row.attempts, 1);
}

TEST_F(DispatcherWakeTest, RowsAppendedOneByOneWhileRunWaitsAreAllPublished) {
  Dispatcher dispatcher(store_, FlakyOnce(), HourLongPolls());
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  for (int i = 0; i < 20; ++i) store_.Append("k" + std::to_string(i % 3), "v" + std::to_string(i));
  EXPECT_TRUE(WaitFor([&] { return dispatcher.Metrics().published == 20; }));
}

TEST_F(DispatcherWakeTest, ARoundThatTookEveryDueRowWaitsForAWakeInsteadOfClaimingAgain) {
  for (int i = 0; i < 3; ++i) store_.Append("k" + std::to_string(i), "v" + std::to_string(i));
  Dispatcher dispatcher(store_, FlakyOnce(), HourLongPolls());  // batch_size 500
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  ASSERT_TRUE(WaitFor([&] { return dispatcher.Metrics().published == 3; }));
  store_.Append("k0", "v3");
  ASSERT_TRUE(WaitFor([&] { return dispatcher.Metrics().published == 4; }));
  // One claim per wake-up: the three rows, then the fourth. A dispatcher
  // that claimed again after each round would have claimed nothing in
  // between (three claims or more by now).
  EXPECT_EQ(store_.Claims(), 2);
}

TEST_F(DispatcherWakeTest, RunReturnsPromptlyWhenStoppedDuringAWait) {
  Dispatcher dispatcher(store_, FlakyOnce(), HourLongPolls());
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  ASSERT_TRUE(WaitFor([&] { return store_.Claims() >= 1 && !store_.ClaimOpen(); }));
  run.request_stop();
  EXPECT_TRUE(WaitFor([&] { return returned.load(); }, 2s)) << "Run slept through the stop";
}

TEST_F(DispatcherWakeTest, AStoreThatDoesNotWakeIsPolledNotWaitedOn) {
  store_.SetWakesOnNewRows(false);
  DispatcherOptions options;
  options.poll_min = 1ms;
  options.poll_max = 2ms;
  Dispatcher dispatcher(store_, FlakyOnce(), options);
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  // Without a wake, only polling claims again and again.
  EXPECT_TRUE(WaitFor([&] { return store_.Claims() >= 5; }));
  store_.Append("A", "A1");
  EXPECT_TRUE(WaitFor([&] { return dispatcher.Metrics().published == 1; }));
}

TEST_F(DispatcherWakeTest, BadWakeCoalesceIsRejectedNamingTheFieldAndTheValue) {
  const auto message = [&](DispatcherOptions options) -> std::string {
    try {
      Dispatcher(store_, FlakyOnce(), std::move(options));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  DispatcherOptions o;
  o.wake_coalesce = 0ms;
  EXPECT_THAT(message(o), HasSubstr("DispatcherOptions::wake_coalesce = 0 ms"));
  o.wake_coalesce = 2s;
  EXPECT_THAT(message(o), HasSubstr("wake_coalesce = 2000 ms: must be positive and at most "
                                    "poll_max (1000 ms)"));
  EXPECT_EQ(message(DispatcherOptions{}), "accepted");
}

// A store written before WaitForRows existed: the defaults keep it polling.
class StoreOfOldHeaders final : public OutboxStore {
 public:
  std::vector<OutboxRow> Claim(std::size_t, std::chrono::system_clock::time_point) override {
    return {};
  }
  void Finish(const std::vector<std::int64_t>&, const std::vector<RowFailure>&) override {}
  void Release() noexcept override {}
  std::optional<std::chrono::system_clock::time_point> OldestPending() override {
    return std::nullopt;
  }
};

// Counts the lag queries (OldestPending) of the rounds on it.
class LagCountingStore final : public OutboxStore {
 public:
  std::vector<OutboxRow> Claim(std::size_t, std::chrono::system_clock::time_point) override {
    return {};
  }
  void Finish(const std::vector<std::int64_t>&, const std::vector<RowFailure>&) override {}
  void Release() noexcept override {}
  std::optional<std::chrono::system_clock::time_point> OldestPending() override {
    ++asked;
    return std::nullopt;
  }
  int asked = 0;
};

TEST(DispatcherLag, RoundsReadTheLagOnTheFirstRoundThenAtMostEvery100Ms) {
  LagCountingStore store;
  Dispatcher dispatcher(store, FlakyOnce());
  const auto start = SteadyClock::now();
  for (int i = 0; i < 50; ++i) dispatcher.RunOnce();
  const auto elapsed = SteadyClock::now() - start;
  EXPECT_GE(store.asked, 1);
  EXPECT_LE(store.asked, 1 + elapsed / 100ms);
  EXPECT_EQ(dispatcher.Metrics().rounds, 50u);
}

TEST(OutboxStoreDefaults, AStoreWithoutTheWakeOperationsDoesNotWakeAndItsWaitSleepsToUntil) {
  StoreOfOldHeaders store;
  EXPECT_FALSE(store.WakesOnNewRows());
  const auto until = SteadyClock::now() + 20ms;
  EXPECT_FALSE(store.WaitForRows(until, {}));
  EXPECT_GE(SteadyClock::now(), until);
}

TEST(OutboxStoreDefaults, TheDefaultWaitEndsAtOnceOnAStopRequest) {
  StoreOfOldHeaders store;
  std::stop_source stop;
  std::atomic<bool> entered = false;
  std::atomic<bool> returned = false;
  std::jthread waiter([&] {
    entered = true;
    EXPECT_FALSE(store.WaitForRows(SteadyClock::now() + 1h, stop.get_token()));
    returned = true;
  });
  ASSERT_TRUE(WaitFor([&] { return entered.load(); }));
  stop.request_stop();
  EXPECT_TRUE(WaitFor([&] { return returned.load(); }, 2s));
}

}  // namespace
}  // namespace dispatch
