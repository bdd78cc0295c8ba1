// Runs of a key: dispatch::Dispatcher sends several rows of one key in one
// PublishBatch when the publisher orders a key's messages within a batch
// (Publisher::OrdersKeysInBatch), and keeps the per-key rule of
// docs/outbox-dispatcher.md ("A key's order through failures") when a run fails
// part way. Against the scripted broker of dispatcher_script.h and
// dispatch::testing::MemoryOutboxStore.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <stop_token>
#include <thread>

#include "dispatch/dispatcher.h"
#include "dispatch/testing/memory_outbox_store.h"
#include "dispatcher_script.h"

namespace dispatch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using State = RowState;
using test::Answer;
using test::Broker;

Result Unknown() {
  return Result::Error(ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true,
                       "context deadline passed while the message was queued or in flight");
}

// A store that notes, at each Finish, how many publishers the broker had
// made and how many of them were still alive: the rule needs a publisher
// that left a run unknown to be gone before the round is recorded.
class WatchedStore : public testing::MemoryOutboxStore {
 public:
  explicit WatchedStore(const std::atomic<int>& alive) : alive_(alive) {}
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<RowFailure>& failures) override {
    alive_at_finish.push_back(alive_.load());
    MemoryOutboxStore::Finish(published, failures);
  }
  std::vector<int> alive_at_finish;

 private:
  const std::atomic<int>& alive_;
};

class DispatcherRunsTest : public ::testing::Test {
 protected:
  DispatcherRunsTest() { broker_.OrderKeys(true); }
  // The broker's factory, counting the publishers alive.
  PublisherFactory Factory() {
    return [this, make = broker_.Factory()]() -> std::unique_ptr<Publisher> {
      return std::make_unique<Counted>(make(), alive_);
    };
  }
  Dispatcher Make(DispatcherOptions options = {}) {
    return Dispatcher(store_, Factory(), std::move(options));
  }

  // Forwards to a broker's publisher and counts itself in `alive`.
  class Counted : public Publisher {
   public:
    Counted(std::unique_ptr<Publisher> inner, std::atomic<int>& alive)
        : inner_(std::move(inner)), alive_(alive) {
      ++alive_;
    }
    ~Counted() override { --alive_; }
    Result Publish(const Context& ctx, const Message& m) override {
      return inner_->Publish(ctx, m);
    }
    std::vector<Result> PublishBatch(const Context& ctx,
                                     std::span<const Message> messages) override {
      return inner_->PublishBatch(ctx, messages);
    }
    bool OrdersKeysInBatch() const override { return inner_->OrdersKeysInBatch(); }

   private:
    std::unique_ptr<Publisher> inner_;
    std::atomic<int>& alive_;
  };

  std::atomic<int> alive_{0};
  WatchedStore store_{alive_};
  Broker broker_;
};

// --- Which rows travel together ----------------------------------------------

TEST_F(DispatcherRunsTest, AKeysRowsTravelTogetherInIdOrderWhenThePublisherOrdersKeys) {
  store_.Append("A", "A1");
  store_.Append("A", "A2");
  store_.Append("B", "B1");
  store_.Append("A", "A3");
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_THAT(broker_.Waves(), ElementsAre(ElementsAre("A1", "A2", "B1", "A3")));
  EXPECT_EQ(stats.published, 4u);
  EXPECT_EQ(dispatcher.Metrics().waves, 1u);
  EXPECT_EQ(store_.Finishes(), 1);
}

TEST_F(DispatcherRunsTest, WithoutThePromiseEachWaveHoldsOneRowPerKey) {
  broker_.OrderKeys(false);
  store_.Append("A", "A1");
  store_.Append("A", "A2");
  Dispatcher dispatcher = Make();
  (void)dispatcher.RunOnce();
  EXPECT_THAT(broker_.Waves(), ElementsAre(ElementsAre("A1"), ElementsAre("A2")));
  EXPECT_EQ(dispatcher.Metrics().waves, 2u);
}

TEST_F(DispatcherRunsTest, ARunEndsWhereItsKeyChangesTopicAndTheRestWaitsForTheNextWave) {
  auto append = [&](const std::string& key, const std::string& topic, const std::string& value) {
    OutboxRow row;
    row.key = key;
    row.topic = topic;
    row.payload = value;
    return store_.Append(row);
  };
  append("A", "orders", "A1");
  append("A", "orders", "A2");
  append("A", "payments", "A3");
  append("A", "orders", "A4");
  append("B", "orders", "B1");
  const RoundStats stats = Make().RunOnce();
  // A4 has A1's topic, but A3 (another partition) must be acknowledged first.
  EXPECT_THAT(broker_.Waves(),
              ElementsAre(ElementsAre("A1", "A2", "B1"), ElementsAre("A3"), ElementsAre("A4")));
  EXPECT_EQ(stats.published, 5u);
}

// --- A run that fails part way ---------------------------------------------

TEST_F(DispatcherRunsTest, RetriableFailureMidRunRetriesThatRowAndReleasesTheRestOfItsKey) {
  const auto a1 = store_.Append("A", "A1");
  const auto a2 = store_.Append("A", "fail-A2");
  const auto a3 = store_.Append("A", "A3");
  const auto b1 = store_.Append("B", "B1");
  const RoundStats stats = Make().RunOnce();
  EXPECT_THAT(broker_.Waves(), ElementsAre(ElementsAre("A1", "fail-A2", "A3", "B1")));
  EXPECT_EQ(stats.published, 2u);
  EXPECT_EQ(stats.retried, 1u);
  EXPECT_EQ(stats.deferred, 1u);
  EXPECT_EQ(stats.released, 0u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1, b1));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a2, a3));
  EXPECT_EQ(store_.Row(a2).row.attempts, 1);
  // A3 did not fail on its own: no attempt, no error.
  EXPECT_EQ(store_.Row(a3).row.attempts, 0);
  EXPECT_EQ(store_.Row(a3).last_error, "");
}

TEST_F(DispatcherRunsTest, PermanentFailureMidRunParksThatRowAndTheRunGoesOn) {
  const auto a1 = store_.Append("A", "A1");
  const auto a2 = store_.Append("A", "poison-A2");
  const auto a3 = store_.Append("A", "A3");
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_THAT(broker_.Waves(), ElementsAre(ElementsAre("A1", "poison-A2", "A3")));
  EXPECT_EQ(stats.parked, 1u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1, a3));
  EXPECT_THAT(store_.Ids(State::kParked), ElementsAre(a2));
  EXPECT_EQ(broker_.Made(), 1);
}

TEST_F(DispatcherRunsTest, RowOfARunThatCameBackOkIsMarkedEvenAfterAnEarlierRowsFailure) {
  // A2 is in Kafka (ok) though A1's answer was lost: mark it, retry A1.
  broker_.Script([](const Context&, std::span<const Message> batch) {
    std::vector<Result> results;
    for (const Message& m : batch) {
      results.push_back(m.value == "A1" ? Unknown() : Result::Delivered());
    }
    return results;
  });
  const auto a1 = store_.Append("A", "A1");
  const auto a2 = store_.Append("A", "A2");
  const RoundStats stats = Make().RunOnce();
  EXPECT_EQ(stats.published, 1u);
  EXPECT_EQ(stats.retried, 1u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a2));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a1));
}

TEST_F(DispatcherRunsTest, RunLeftUnknownEndsThePublisherBeforeTheRoundIsRecorded) {
  broker_.Script([](const Context&, std::span<const Message> batch) {
    std::vector<Result> results;
    for (const Message& m : batch) {
      results.push_back(m.value == "A1" ? Result::Delivered() : Unknown());
    }
    return results;
  });
  const auto a1 = store_.Append("A", "A1");
  const auto a2 = store_.Append("A", "A2");
  const auto a3 = store_.Append("A", "A3");
  const auto b1 = store_.Append("B", "B1");
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  // The publisher that may still hold A2 and A3 was gone at Finish; a new
  // one waits for the next round.
  EXPECT_THAT(store_.alive_at_finish, ElementsAre(0));
  EXPECT_EQ(broker_.Made(), 2);
  EXPECT_EQ(alive_.load(), 1);
  EXPECT_EQ(dispatcher.Metrics().publisher_recreated, 1u);
  EXPECT_FALSE(stats.round_failed);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1));
  // A2 retried, A3 released after it, B1 retried on its own.
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a2, a3, b1));
  EXPECT_EQ(store_.Row(a2).row.attempts, 1);
  EXPECT_EQ(store_.Row(a3).row.attempts, 0);
  EXPECT_EQ(store_.Row(b1).row.attempts, 1);
}

TEST_F(DispatcherRunsTest, UnknownRowInAWaveWithoutARunKeepsThePublisher) {
  broker_.Script([](const Context&, std::span<const Message> batch) {
    return std::vector<Result>(batch.size(), Unknown());
  });
  store_.Append("A", "A1");
  store_.Append("B", "B1");
  Dispatcher dispatcher = Make();
  (void)dispatcher.RunOnce();
  EXPECT_EQ(broker_.Made(), 1);
  EXPECT_EQ(dispatcher.Metrics().publisher_recreated, 0u);
}

TEST_F(DispatcherRunsTest, FatalMidRunReleasesTheRestAndRecreatesThePublisher) {
  const auto a1 = store_.Append("A", "A1");
  const auto a2 = store_.Append("A", "fatal-A2");
  const auto a3 = store_.Append("A", "A3");
  broker_.Script([](const Context&, std::span<const Message> batch) {
    std::vector<Result> results;
    bool fatal = false;
    for (const Message& m : batch) {
      fatal = fatal || m.value.starts_with("fatal");
      results.push_back(fatal ? test::Fatal() : Result::Delivered());
    }
    return results;
  });
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_TRUE(stats.round_failed);
  EXPECT_EQ(stats.released, 2u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a2, a3));
  EXPECT_EQ(store_.Row(a2).row.attempts, 0);
  EXPECT_EQ(broker_.Made(), 2);
}

TEST_F(DispatcherRunsTest, StopDuringARunReleasesItsRowsAndEndsThePublisher) {
  std::stop_source stop;
  broker_.Script([&](const Context& ctx, std::span<const Message> batch) {
    stop.request_stop();  // as a SIGTERM would, while the run is in flight
    std::vector<Result> results;
    for (const Message& m : batch) {
      results.push_back(m.value == "A1" ? Result::Delivered() : test::Cancelled());
    }
    EXPECT_TRUE(ctx.Cancelled());
    return results;
  });
  const auto a1 = store_.Append("A", "A1");
  const auto a2 = store_.Append("A", "A2");
  const auto a3 = store_.Append("A", "A3");
  Dispatcher dispatcher = Make();
  const RoundStats stats = dispatcher.RunOnce(stop.get_token());
  EXPECT_EQ(stats.published, 1u);
  EXPECT_EQ(stats.released, 2u);
  EXPECT_THAT(store_.Ids(State::kPublished), ElementsAre(a1));
  EXPECT_THAT(store_.Ids(State::kPending), ElementsAre(a2, a3));
  EXPECT_EQ(store_.Row(a2).row.attempts, 0);
  EXPECT_THAT(store_.alive_at_finish, ElementsAre(0));
}

TEST_F(DispatcherRunsTest, AHotKeyDrainsAtABatchPerRound) {
  for (int i = 0; i < 1000; ++i) store_.Append("hot", "row-" + std::to_string(i));
  DispatcherOptions options;
  options.batch_size = 500;
  Dispatcher dispatcher = Make(options);
  (void)dispatcher.RunOnce();
  (void)dispatcher.RunOnce();
  EXPECT_EQ(dispatcher.Metrics().published, 1000u);
  EXPECT_EQ(dispatcher.Metrics().waves, 2u);
  const auto sent = broker_.Sent();
  ASSERT_EQ(sent.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sent[i], "row-" + std::to_string(i));
}

}  // namespace
}  // namespace dispatch
