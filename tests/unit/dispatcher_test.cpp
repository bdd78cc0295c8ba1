// dispatch::Dispatcher against dispatch::testing::MockPublisher and
// dispatch::testing::MemoryOutboxStore: every rule of the loop, with no
// broker and no database.
#include "dispatch/dispatcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <thread>

#include "dispatch/testing/memory_outbox_store.h"
#include "dispatch/testing/mock_publisher.h"
#include "dispatcher_script.h"

namespace dispatch {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::NiceMock;
using State = RowState;
using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;
using test::Answer;
using test::Broker;
using test::Cancelled;
using test::Fatal;
using test::Poison;
using test::Retriable;
using test::WaitFor;

class DispatcherTest : public ::testing::Test {
 protected:
  Dispatcher Make(DispatcherOptions options = {}) {
    return Dispatcher(store_, broker_.Factory(), std::move(options));
  }
  // Backoffs of milliseconds, for tests that wait for Run to retry.
  static DispatcherOptions QuickRetries() {
    DispatcherOptions options;
    options.retry_base = 1ms;
    options.retry_cap = 5ms;
    return options;
  }
  // Runs `dispatcher` on a thread until it has published `rows` rows (within
  // the bound of WaitFor) and stops it; false when it did not get there.
  static bool RunUntilPublished(Dispatcher& dispatcher, std::uint64_t rows) {
    std::jthread run([&](std::stop_token stop) { dispatcher.Run(stop); });
    return WaitFor([&] { return dispatcher.Metrics().published == rows; });
  }
  // Starts Run on a thread; `returned` turns true when Run returns.
  static std::jthread RunInBackground(Dispatcher& dispatcher, std::atomic<bool>& returned) {
    return std::jthread([&](std::stop_token stop) {
      dispatcher.Run(stop);
      returned = true;
    });
  }
  testing::MemoryOutboxStore store_;
  Broker broker_;
};

// --- Messages ---------------------------------------------------------------

TEST_F(DispatcherTest, PublishesEachRowAsAKeyedMessageCarryingItsIdInTheIdHeader) {
  OutboxRow row;
  row.key = "order-7";
  row.topic = "orders";
  row.payload = std::string("{\0}", 3);
  row.headers = {{"event-type", "OrderPaid"}};
  const std::int64_t id = store_.Append(row);
  DispatcherOptions options;
  options.id_header = "x-outbox-id";
  const RoundStats stats = Make(options).RunOnce();
  EXPECT_EQ(stats.claimed, 1u);
  EXPECT_EQ(stats.published, 1u);
  ASSERT_EQ(broker_.Messages().size(), 1u);
  const Message m = broker_.Messages()[0];
  EXPECT_EQ(m.topic, "orders");
  EXPECT_EQ(m.key, std::optional<std::string>("order-7"));
  EXPECT_EQ(m.value, std::string("{\0}", 3));
  EXPECT_THAT(m.headers, ElementsAre(Header{"event-type", "OrderPaid"},
                                     Header{"x-outbox-id", std::to_string(id)}));
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(id));
}

TEST_F(DispatcherTest, ToMessageKeepsAnEmptyKeyAsAnEmptyKeyNotAnAbsentOne) {
  OutboxRow row;
  row.id = 42;
  row.topic = "t";
  EXPECT_EQ(ToMessage(row).key, std::optional<std::string>(""));
  EXPECT_EQ(ToMessage(row).headers.back(), (Header{"outbox-id", "42"}));
}

// --- Waves and order --------------------------------------------------------

TEST_F(DispatcherTest, PublishesAtMostOneRowPerKeyInEachWaveAndRecordsTheRoundInOneFinish) {
  store_.Append("A", "A1");
  store_.Append("A", "A2");
  store_.Append("B", "B1");
  store_.Append("A", "A3");
  const RoundStats stats = Make().RunOnce();
  EXPECT_THAT(broker_.Waves(),
              ElementsAre(ElementsAre("A1", "B1"), ElementsAre("A2"), ElementsAre("A3")));
  EXPECT_EQ(stats.published, 4u);
  EXPECT_EQ(store_.Finishes(), 1);
  EXPECT_FALSE(store_.ClaimOpen());
}

TEST_F(DispatcherTest, RetriableFailureDefersTheLaterRowsOfItsKeyOnly) {
  const auto a1 = store_.Append("A", "fail-A1");
  const auto b1 = store_.Append("B", "B1");
  const auto a2 = store_.Append("A", "A2");
  const auto b2 = store_.Append("B", "B2");
  const RoundStats stats = Make().RunOnce();
  // A2 must not overtake A1; B goes on.
  EXPECT_THAT(broker_.Sent(), ElementsAre("fail-A1", "B1", "B2"));
  EXPECT_EQ(stats.published, 2u);
  EXPECT_EQ(stats.retried, 1u);
  EXPECT_EQ(stats.deferred, 1u);
  EXPECT_EQ(stats.released, 0u);
  EXPECT_EQ(stats.last_error, "broker down");
  EXPECT_FALSE(stats.round_failed);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(b1, b2));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a1, a2));
  EXPECT_EQ(store_.Row(a1).row.attempts, 1);
  EXPECT_EQ(store_.Row(a1).last_error, "broker down");
  EXPECT_EQ(store_.Row(a2).row.attempts, 0);
}

TEST_F(DispatcherTest, PermanentFailureParksTheRowAndItsKeyGoesOn) {
  const auto a1 = store_.Append("A", "poison-A1");
  const auto a2 = store_.Append("A", "A2");
  const RoundStats stats = Make().RunOnce();
  EXPECT_THAT(broker_.Sent(), ElementsAre("poison-A1", "A2"));
  EXPECT_EQ(stats.parked, 1u);
  EXPECT_THAT(store_.Ids(State::kParked), ElementsAre(a1));
  EXPECT_EQ(store_.Row(a1).last_error, "too large");
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a2));
}

// --- Retry backoff ----------------------------------------------------------

TEST_F(DispatcherTest, RetryTimeIsJitteredWithinACappedExponentialCeilingPerRow) {
  // Seconds, not milliseconds: a pause is measured from before the round, so
  // the round's own time (tens of ms under a sanitizer) adds to each draw.
  DispatcherOptions options;
  options.retry_base = 10s;
  options.retry_cap = 100s;
  // Ceiling per attempt count (this failure included): 10, 20, 40, 80 s, then
  // the 100 s cap.
  const std::vector<std::chrono::milliseconds> ceilings = {10s, 20s, 40s, 80s, 100s, 100s};
  constexpr int kRowsPerLevel = 40;
  std::map<std::int64_t, std::size_t> level_of;
  for (std::size_t level = 0; level < ceilings.size(); ++level) {
    for (int i = 0; i < kRowsPerLevel; ++i) {
      const auto id = store_.Append("k" + std::to_string(level) + "-" + std::to_string(i), "fail");
      store_.SetAttempts(id, static_cast<int>(level));
      level_of[id] = level;
    }
  }
  options.batch_size = level_of.size();
  const auto before = SystemClock::now();
  const RoundStats stats = Make(options).RunOnce();
  const auto after = SystemClock::now();
  ASSERT_EQ(stats.retried, level_of.size());

  std::vector<std::chrono::milliseconds> longest(ceilings.size(), 0ms);
  std::vector<std::chrono::milliseconds> shortest(ceilings.size(), 1h);
  for (const auto& [id, level] : level_of) {
    const auto retry_at = store_.Row(id).retry_at;
    ASSERT_GE(retry_at, before) << "row " << id;
    ASSERT_LE(retry_at, after + ceilings[level]) << "row " << id << " at level " << level;
    const auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at - before);
    longest[level] = std::max(longest[level], pause);
    shortest[level] = std::min(shortest[level], pause);
  }
  for (std::size_t level = 0; level < ceilings.size(); ++level) {
    // Full jitter: 40 uniform draws span most of [0, ceiling]; all of them in
    // one half has odds of 2^-40.
    EXPECT_GT(longest[level], ceilings[level] / 2) << "level " << level;
    EXPECT_LT(shortest[level], ceilings[level] / 2) << "level " << level;
  }
}

TEST_F(DispatcherTest, RowIsPublishedAgainOnceItsBackoffHasPassedInIdOrder) {
  DispatcherOptions options;
  options.retry_base = 1ms;
  options.retry_cap = 1ms;
  store_.Append("A", "flaky-A1");
  store_.Append("A", "A2");
  Dispatcher dispatcher = Make(options);
  ASSERT_TRUE(WaitFor([&] {
    dispatcher.RunOnce();
    return store_.Ids(State::kPending).empty();
  }));
  EXPECT_THAT(broker_.Sent(), ElementsAre("flaky-A1", "flaky-A1", "A2"));
}

TEST_F(DispatcherTest, RowBackingOffDoesNotHoldBackOtherKeys) {
  DispatcherOptions options;
  options.retry_base = 1h;
  options.retry_cap = 1h;
  const auto a1 = store_.Append("A", "flaky-A1");
  Dispatcher dispatcher = Make(options);
  dispatcher.RunOnce();
  const auto a2 = store_.Append("A", "A2");
  const auto b1 = store_.Append("B", "B1");
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_EQ(stats.published, 1u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(b1));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a1, a2));
  EXPECT_THAT(broker_.Sent(), ElementsAre("flaky-A1", "B1"));
}

// --- Fatal publisher and factory --------------------------------------------

TEST_F(DispatcherTest, FatalResultReleasesTheRowsNotOkAndRecreatesThePublisher) {
  const auto a1 = store_.Append("A", "A1");
  const auto b1 = store_.Append("B", "fatal-B1");
  const auto a2 = store_.Append("A", "A2");
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  // No wave after the fatal one: A2 is not sent on the broken publisher.
  EXPECT_THAT(broker_.Sent(), ElementsAre("A1", "fatal-B1"));
  EXPECT_EQ(stats.published, 1u);
  EXPECT_EQ(stats.released, 2u);
  EXPECT_TRUE(stats.round_failed);
  EXPECT_THAT(stats.last_error, HasSubstr("fatal"));
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1));
  // Released, not failed: no attempt counted, no backoff.
  EXPECT_EQ(store_.Row(b1).row.attempts, 0);
  EXPECT_EQ(store_.Row(b1).retry_at, SystemClock::time_point{});
  EXPECT_EQ(broker_.Made(), 2);
  EXPECT_EQ(dispatcher.Metrics().publisher_recreated, 1u);

  EXPECT_EQ(dispatcher.RunOnce().published, 2u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1, b1, a2));
}

TEST_F(DispatcherTest, PublisherThatThrowsIsReplacedAndItsRowsReleased) {
  const auto a1 = store_.Append("A", "A1");
  broker_.Script([](const Context&, std::span<const Message>) -> std::vector<Result> {
    throw std::runtime_error("bug in the publisher");
  });
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_EQ(stats.released, 1u);
  EXPECT_THAT(stats.last_error, HasSubstr("bug in the publisher"));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a1));
  EXPECT_EQ(store_.Row(a1).row.attempts, 0);
  EXPECT_EQ(broker_.Made(), 2);
}

TEST_F(DispatcherTest, FactoryThatThrowsEndsTheRoundBeforeClaimingAndIsCalledAgainNextRound) {
  store_.Append("A", "A1");
  broker_.FailFactory(1);
  Dispatcher dispatcher = Make();
  const RoundStats failed = dispatcher.RunOnce();
  EXPECT_TRUE(failed.round_failed);
  EXPECT_THAT(failed.last_error, HasSubstr("publisher factory failed: cannot reach the cluster"));
  EXPECT_EQ(store_.Claims(), 0);
  EXPECT_EQ(dispatcher.Metrics().factory_failures, 1u);

  EXPECT_EQ(dispatcher.RunOnce().published, 1u);
  EXPECT_EQ(broker_.Made(), 2);
  // The first publisher replaced nothing.
  EXPECT_EQ(dispatcher.Metrics().publisher_recreated, 0u);
}

TEST_F(DispatcherTest, RunRetriesAThrowingFactoryUntilItMakesAPublisher) {
  store_.Append("A", "A1");
  broker_.FailFactory(3);
  Dispatcher dispatcher = Make(QuickRetries());
  ASSERT_TRUE(RunUntilPublished(dispatcher, 1));
  EXPECT_EQ(dispatcher.Metrics().factory_failures, 3u);
  EXPECT_EQ(broker_.Made(), 4);
}

// --- Stop -------------------------------------------------------------------

TEST_F(DispatcherTest, StopMidWaveEndsTheRoundAndMarksOnlyTheOkRows) {
  const auto a1 = store_.Append("A", "A1");
  const auto b1 = store_.Append("B", "B1");
  const auto a2 = store_.Append("A", "A2");
  std::stop_source stop;
  DispatcherOptions options;
  options.publish_timeout = 7s;
  broker_.Script([&](const Context& ctx, std::span<const Message> batch) {
    // The wave carries the stop token and the publish_timeout deadline.
    EXPECT_TRUE(ctx.deadline().has_value());
    EXPECT_LE(*ctx.deadline(), Context::Clock::now() + 7s);
    EXPECT_GT(*ctx.deadline(), Context::Clock::now() + 6s);
    stop.request_stop();  // arrives while A1 is acknowledged and B1 in flight
    EXPECT_TRUE(ctx.Cancelled());
    std::vector<Result> results = {Result::Delivered(), Cancelled()};
    results.resize(batch.size(), Cancelled());
    return results;
  });
  const RoundStats stats = Make(options).RunOnce(stop.get_token());
  EXPECT_THAT(broker_.Waves(), ElementsAre(ElementsAre("A1", "B1")));
  EXPECT_EQ(stats.published, 1u);
  EXPECT_EQ(stats.released, 2u);
  EXPECT_EQ(stats.retried, 0u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(b1, a2));
  EXPECT_EQ(store_.Row(b1).row.attempts, 0);
  EXPECT_FALSE(store_.ClaimOpen());
}

TEST_F(DispatcherTest, RoundStartedAfterAStopClaimsNothing) {
  store_.Append("A", "A1");
  std::stop_source stop;
  stop.request_stop();
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce(stop.get_token());
  EXPECT_EQ(stats.claimed, 0u);
  EXPECT_EQ(store_.Claims(), 0);
  EXPECT_THAT(broker_.Sent(), IsEmpty());
}

// A publisher that holds its wave until the context ends, as a publisher
// with brokers down does.
Answer HoldUntilContextEnds(std::atomic<bool>& entered) {
  return [&entered](const Context& ctx, std::span<const Message> batch) {
    entered = true;
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait_until(lock, ctx.stop_token(), *ctx.deadline(), [] { return false; });
    return std::vector<Result>(batch.size(), ctx.Cancelled() ? Cancelled() : Retriable());
  };
}

TEST_F(DispatcherTest, RunReturnsPromptlyWhenStoppedMidWaveAndMarksNothing) {
  const auto a1 = store_.Append("A", "A1");
  std::atomic<bool> entered = false;
  broker_.Script(HoldUntilContextEnds(entered));
  DispatcherOptions options;
  options.publish_timeout = 30s;
  Dispatcher dispatcher = Make(options);
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  ASSERT_TRUE(WaitFor([&] { return entered.load(); }));
  const auto requested = SteadyClock::now();
  run.request_stop();
  ASSERT_TRUE(WaitFor([&] { return returned.load(); }, 5s)) << "Run ignored the stop";
  EXPECT_LT(SteadyClock::now() - requested, 1s);
  run.join();
  EXPECT_THAT(store_.Ids(State::kPublished), IsEmpty());
  EXPECT_EQ(store_.Row(a1).row.attempts, 0);
}

TEST_F(DispatcherTest, RunWakesFromItsPollPauseAtOnceOnStop) {
  store_.SetWakesOnNewRows(false);  // polled; a wait on a store that wakes: dispatcher_wake_test
  DispatcherOptions options;
  options.poll_min = 1h;
  options.poll_max = 1h;
  Dispatcher dispatcher = Make(options);
  std::atomic<bool> returned = false;
  std::jthread run = RunInBackground(dispatcher, returned);
  ASSERT_TRUE(WaitFor([&] { return store_.Claims() == 1; }));
  run.request_stop();
  EXPECT_TRUE(WaitFor([&] { return returned.load(); }, 2s)) << "Run slept through the stop";
}

// --- Polling ----------------------------------------------------------------

TEST_F(DispatcherTest, RunPausesTwiceAsLongAfterEachEmptyRoundUpToPollMax) {
  store_.SetWakesOnNewRows(false);  // a store that wakes is waited on instead
  DispatcherOptions options;
  options.poll_min = 20ms;
  options.poll_max = 80ms;
  std::vector<SteadyClock::time_point> claims;
  std::stop_source stop;
  store_.OnClaim([&] {
    claims.push_back(SteadyClock::now());
    if (claims.size() == 6) stop.request_stop();
  });
  Make(options).Run(stop.get_token());
  ASSERT_EQ(claims.size(), 6u);
  const std::vector<std::chrono::milliseconds> pauses = {20ms, 40ms, 80ms, 80ms, 80ms};
  for (std::size_t i = 0; i < pauses.size(); ++i) {
    EXPECT_GE(claims[i + 1] - claims[i], pauses[i]) << "pause " << i;
  }
  // Capped: the last pause is nowhere near the 320 ms that doubling would give.
  EXPECT_LT(claims[5] - claims[4], 300ms);
}

TEST_F(DispatcherTest, RunGoesStraightOnAfterARoundThatFoundRows) {
  DispatcherOptions options;
  options.batch_size = 1;
  options.poll_min = 1h;
  options.poll_max = 1h;
  for (int i = 0; i < 5; ++i) store_.Append("k" + std::to_string(i), "v");
  Dispatcher dispatcher = Make(options);
  // Five rounds of one row each with no pause between them.
  EXPECT_TRUE(RunUntilPublished(dispatcher, 5));
}

// --- Store errors -----------------------------------------------------------

TEST_F(DispatcherTest, StoreErrorOnFinishRecordsNothingReleasesTheClaimAndTheRowsGoOutAgain) {
  const auto a1 = store_.Append("A", "A1");
  const auto b1 = store_.Append("B", "fail-B1");
  store_.FailFinishes(1);
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_TRUE(stats.round_failed);
  EXPECT_EQ(stats.last_error, "memory store: Finish failed");
  EXPECT_EQ(stats.published, 0u);
  EXPECT_EQ(stats.retried, 0u);
  EXPECT_EQ(stats.released, 2u);
  EXPECT_FALSE(store_.ClaimOpen());
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a1, b1));
  EXPECT_EQ(store_.Row(b1).row.attempts, 0);
  EXPECT_EQ(dispatcher.Metrics().store_errors, 1u);
  EXPECT_EQ(dispatcher.Metrics().published, 0u);

  // At least once: A1 reached the broker but was never marked, so it goes out again.
  EXPECT_EQ(dispatcher.RunOnce().published, 1u);
  EXPECT_THAT(broker_.Sent(), ElementsAre("A1", "fail-B1", "A1", "fail-B1"));
}

TEST_F(DispatcherTest, StoreErrorOnClaimIsCountedAndTheClaimReleased) {
  store_.Append("A", "A1");
  store_.FailClaims(1);
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_TRUE(stats.round_failed);
  EXPECT_EQ(stats.last_error, "memory store: Claim failed");
  EXPECT_EQ(store_.Releases(), 1);
  EXPECT_EQ(dispatcher.Metrics().store_errors, 1u);
  EXPECT_EQ(dispatcher.RunOnce().published, 1u);
}

TEST_F(DispatcherTest, RunKeepsGoingAfterStoreErrors) {
  store_.Append("A", "A1");
  store_.FailClaims(2);
  store_.FailFinishes(1);
  Dispatcher dispatcher = Make(QuickRetries());
  ASSERT_TRUE(RunUntilPublished(dispatcher, 1));
  EXPECT_EQ(dispatcher.Metrics().store_errors, 3u);
}

// --- Metrics ----------------------------------------------------------------

TEST_F(DispatcherTest, MetricsCountRoundsOutcomesAndTheOldestPendingAge) {
  OutboxRow old_row;
  old_row.key = "A";
  old_row.topic = "orders";
  old_row.payload = "fail-A1";
  old_row.created_at = SystemClock::now() - 1h;
  store_.Append(old_row);
  store_.Append("B", "B1");
  store_.Append("C", "poison-C1");
  // fail-A1 backs off past the second round, so it is retried once, not twice.
  DispatcherOptions options;
  options.retry_base = 1h;
  options.retry_cap = 1h;
  Dispatcher dispatcher = Make(options);
  EXPECT_EQ(dispatcher.Metrics().rounds, 0u);
  dispatcher.RunOnce();
  dispatcher.RunOnce();
  const DispatcherMetrics m = dispatcher.Metrics();
  EXPECT_EQ(m.rounds, 2u);
  EXPECT_EQ(m.published, 1u);
  EXPECT_EQ(m.retried, 1u);
  EXPECT_EQ(m.parked, 1u);
  EXPECT_EQ(m.store_errors, 0u);
  EXPECT_GE(m.oldest_pending_age, 1h);
  EXPECT_LT(m.oldest_pending_age, 1h + 1min);
  EXPECT_GT(m.rows_per_second, 0);
}

TEST_F(DispatcherTest, OldestPendingAgeIsZeroOnceNothingIsPending) {
  store_.Append("A", "A1");
  Dispatcher dispatcher = Make();
  dispatcher.RunOnce();
  EXPECT_EQ(dispatcher.Metrics().oldest_pending_age, 0ms);
}

// --- Options ----------------------------------------------------------------

TEST_F(DispatcherTest, BadOptionsAreRejectedNamingTheFieldAndTheValue) {
  const auto message = [&](DispatcherOptions options) -> std::string {
    try {
      Make(std::move(options));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  DispatcherOptions o;
  o.batch_size = 0;
  EXPECT_THAT(message(o), HasSubstr("DispatcherOptions::batch_size = 0"));
  o = {};
  o.publish_timeout = 0ms;
  EXPECT_THAT(message(o), HasSubstr("publish_timeout = 0 ms"));
  o = {};
  o.retry_base = 2s;
  o.retry_cap = 1s;
  EXPECT_THAT(message(o), HasSubstr("retry_cap = 1000 ms: must be at least retry_base (2000 ms)"));
  o = {};
  o.poll_max = 1ms;
  EXPECT_THAT(message(o), HasSubstr("poll_max = 1 ms"));
  o = {};
  o.id_header.clear();
  EXPECT_THAT(message(o), HasSubstr("id_header"));
  EXPECT_THROW(Dispatcher(store_, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace dispatch
