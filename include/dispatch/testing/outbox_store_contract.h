/// @file
/// dispatch::testing::OutboxStoreContract: the OutboxStore contract
/// (<dispatch/outbox_store.h>) as a typed GoogleTest suite, the one that
/// SqliteStore, PostgresStore and MemoryOutboxStore run. A store of your own
/// proves itself with it: write a harness and instantiate the suite.
///
/// A harness is a default-constructible type that sets up a fresh, empty
/// outbox and gives the suite three things:
///
/// @code
///   class MyStoreHarness {
///    public:
///     // The store under test.
///     dispatch::OutboxStore& Store() { return store_; }
///     // Writes a pending row as the service would (key, topic, payload,
///     // headers; created_at when set, else now) and returns its id.
///     std::int64_t Append(const dispatch::OutboxRow& row) { return store_.Insert(row); }
///     // The ids of the rows in a state, ascending.
///     std::vector<std::int64_t> Ids(dispatch::RowState state) { return store_.IdsIn(state); }
///
///    private:
///     MyStore store_;
///   };
///
///   // In the namespace of the suite, as GoogleTest's typed suites require.
///   namespace dispatch::testing {
///   INSTANTIATE_TYPED_TEST_SUITE_P(MyStore, OutboxStoreContract, ::myapp::MyStoreHarness);
///   }
/// @endcode
///
/// A store that wakes on new rows (OutboxStore::WakesOnNewRows) also runs the
/// WaitForRows cases, which the others skip. For them the harness's Append
/// must write as a service would, through a connection of its own (a store
/// need not wake on its own commits), and may run on the test's thread while
/// another thread waits in the store's WaitForRows.
///
/// Give the harness a named namespace (not an anonymous one): the test
/// listing names each case after it. Link the test with dispatch::testing
/// (it brings GoogleTest) and a gtest main. New store operations come with
/// new cases here (docs/outbox-dispatcher.md, "How the store interface
/// grows"), so a store that passes today's suite is checked by tomorrow's.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dispatch/outbox_store.h"

namespace dispatch::testing {

/// The fixture of the suite: a fresh `Harness` per test, and helpers that the
/// cases share. Instantiate it with INSTANTIATE_TYPED_TEST_SUITE_P (see the
/// file's description).
template <typename Harness>
class OutboxStoreContract : public ::testing::Test {
 protected:
  /// The clock of the rows' times.
  using Clock = std::chrono::system_clock;

  /// Appends a pending row of `key` to topic "orders" through the harness.
  std::int64_t Append(const std::string& key, const std::string& payload,
                      std::vector<Header> headers = {}) {
    OutboxRow row;
    row.key = key;
    row.topic = "orders";
    row.payload = payload;
    row.headers = std::move(headers);
    return harness_.Append(row);
  }
  /// The ids of `rows`, in their order.
  static std::vector<std::int64_t> IdsOf(const std::vector<OutboxRow>& rows) {
    std::vector<std::int64_t> ids;
    for (const OutboxRow& r : rows) ids.push_back(r.id);
    return ids;
  }
  /// Claims up to `limit` rows due at `now` and returns their ids.
  std::vector<std::int64_t> ClaimIds(Clock::time_point now = Clock::now(),
                                     std::size_t limit = 100) {
    return IdsOf(store().Claim(limit, now));
  }
  /// A retriable failure of `id`, due again at `retry_at`.
  static RowFailure RetryAt(std::int64_t id, Clock::time_point retry_at) {
    return RowFailure{id, "broker down", false, retry_at};
  }

  /// The clock of WaitForRows.
  using Steady = std::chrono::steady_clock;
  /// A wait that must end long before it: the bound of a wake or a stop.
  static constexpr std::chrono::seconds kFar{30};

  /// Skips the test unless the store wakes on new rows; true when skipped.
  bool SkipUnlessWaking() { return !store().WakesOnNewRows(); }
  /// An empty claim, released: what the dispatcher does before it waits.
  void ClaimNothing() {
    EXPECT_TRUE(ClaimIds().empty());
    store().Release();
  }

  /// The store under test.
  OutboxStore& store() { return harness_.Store(); }
  /// The ids of the rows in `state`, ascending, as the harness reads them.
  std::vector<std::int64_t> Ids(RowState state) { return harness_.Ids(state); }

  Harness harness_;  ///< a fresh one per test
};

/// @cond
// The cases; a new store operation adds its own here.
TYPED_TEST_SUITE_P(OutboxStoreContract);

TYPED_TEST_P(OutboxStoreContract, ClaimHandsOutPendingRowsInIdOrderWithAllTheirFields) {
  const std::vector<Header> headers = {
      {"event-type", "OrderPaid"}, {"bin", std::string("\0\xff\x01", 3)}, {"bin", ""}};
  const auto before = std::chrono::floor<std::chrono::milliseconds>(TestFixture::Clock::now());
  const std::int64_t first = this->Append("order-1", std::string("{\"a\":\0}", 7), headers);
  const std::int64_t second = this->Append("order-2", "");
  const std::vector<OutboxRow> rows = this->store().Claim(10, TestFixture::Clock::now());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_LT(first, second);
  EXPECT_EQ(rows[0].id, first);
  EXPECT_EQ(rows[0].key, "order-1");
  EXPECT_EQ(rows[0].topic, "orders");
  EXPECT_EQ(rows[0].payload, std::string("{\"a\":\0}", 7));
  EXPECT_EQ(rows[0].headers, headers);
  EXPECT_EQ(rows[0].attempts, 0);
  EXPECT_GE(rows[0].created_at, before);
  EXPECT_LE(rows[0].created_at, TestFixture::Clock::now());
  EXPECT_EQ(rows[1].id, second);
  EXPECT_EQ(rows[1].payload, "");
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, ClaimTakesNoMoreThanTheLimitOldestFirst) {
  for (int i = 0; i < 5; ++i) this->Append("k" + std::to_string(i), "v");
  const std::vector<std::int64_t> pending = this->Ids(RowState::kPending);
  ASSERT_EQ(pending.size(), 5u);
  EXPECT_EQ(this->ClaimIds(TestFixture::Clock::now(), 3),
            std::vector<std::int64_t>(pending.begin(), pending.begin() + 3));
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, ClaimSkipsAKeyWhoseEarliestPendingRowIsNotDueAndNoOtherKey) {
  const auto a1 = this->Append("A", "A1");
  const auto b1 = this->Append("B", "B1");
  const auto a2 = this->Append("A", "A2");
  const auto now = TestFixture::Clock::now();
  ASSERT_EQ(this->ClaimIds(now), (std::vector<std::int64_t>{a1, b1, a2}));
  this->store().Finish({}, {TestFixture::RetryAt(a1, now + std::chrono::minutes(1))});
  // A2 must not overtake A1, which is not due; B goes on.
  EXPECT_EQ(this->ClaimIds(now), (std::vector<std::int64_t>{b1}));
  this->store().Release();
  // Once A1 is due, the key comes back whole, in order.
  EXPECT_EQ(this->ClaimIds(now + std::chrono::minutes(2)), (std::vector<std::int64_t>{a1, b1, a2}));
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, FinishMarksPublishedRowsAndLeavesUnlistedRowsPending) {
  const auto a = this->Append("A", "A1");
  const auto b = this->Append("B", "B1");
  const auto c = this->Append("C", "C1");
  ASSERT_EQ(this->ClaimIds().size(), 3u);
  this->store().Finish({a, c}, {});
  EXPECT_EQ(this->Ids(RowState::kPublished), (std::vector<std::int64_t>{a, c}));
  EXPECT_EQ(this->Ids(RowState::kPending), (std::vector<std::int64_t>{b}));
  // A published row is never handed out again.
  EXPECT_EQ(this->ClaimIds(), (std::vector<std::int64_t>{b}));
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, FinishCountsAFailedAttemptOnTheRow) {
  const auto a = this->Append("A", "A1");
  const auto now = TestFixture::Clock::now();
  ASSERT_EQ(this->ClaimIds(now).size(), 1u);
  this->store().Finish({}, {TestFixture::RetryAt(a, now)});
  const auto rows = this->store().Claim(10, now + std::chrono::seconds(1));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].attempts, 1);
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, AParkedRowIsNeverClaimedAgainAndNoLongerHoldsBackItsKey) {
  const auto a1 = this->Append("A", "A1");
  const auto a2 = this->Append("A", "A2");
  ASSERT_EQ(this->ClaimIds().size(), 2u);
  this->store().Finish({}, {RowFailure{a1, "message too large", true, {}}});
  EXPECT_EQ(this->Ids(RowState::kParked), (std::vector<std::int64_t>{a1}));
  EXPECT_EQ(this->ClaimIds(), (std::vector<std::int64_t>{a2}));
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, ReleaseLeavesEveryClaimedRowPendingAndUnchanged) {
  const auto a = this->Append("A", "A1");
  const auto rows = this->store().Claim(10, TestFixture::Clock::now());
  ASSERT_EQ(rows.size(), 1u);
  this->store().Release();
  EXPECT_EQ(this->Ids(RowState::kPending), (std::vector<std::int64_t>{a}));
  const auto again = this->store().Claim(10, TestFixture::Clock::now());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 0);
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, OldestPendingIsTheCreationTimeOfTheOldestPendingRow) {
  EXPECT_EQ(this->store().OldestPending(), std::nullopt);
  const auto old_time = std::chrono::floor<std::chrono::milliseconds>(TestFixture::Clock::now()) -
                        std::chrono::hours(1);
  OutboxRow old_row;
  old_row.key = "A";
  old_row.topic = "orders";
  old_row.payload = "old";
  old_row.created_at = old_time;
  const auto old_id = this->harness_.Append(old_row);
  this->Append("B", "new");
  EXPECT_EQ(this->store().OldestPending(), old_time);
  ASSERT_EQ(this->ClaimIds().size(), 2u);
  this->store().Finish({old_id}, {});
  const auto oldest = this->store().OldestPending();
  ASSERT_TRUE(oldest.has_value());
  EXPECT_GT(*oldest, old_time);
}

TYPED_TEST_P(OutboxStoreContract, WaitForRowsWakesWhenARowIsAppendedWhileItWaits) {
  if (this->SkipUnlessWaking()) GTEST_SKIP() << "the store does not wake on new rows";
  this->ClaimNothing();
  std::atomic<bool> entered = false;
  bool woken = false;
  const auto started = TestFixture::Steady::now();
  std::thread waiter([&] {
    entered = true;
    woken = this->store().WaitForRows(started + TestFixture::kFar, {});
  });
  while (!entered) std::this_thread::yield();
  this->Append("A", "A1");
  waiter.join();
  EXPECT_TRUE(woken);
  EXPECT_LT(TestFixture::Steady::now() - started, TestFixture::kFar / 2);
}

TYPED_TEST_P(OutboxStoreContract, WaitForRowsWakesAtOnceForARowAppendedSinceTheLastClaim) {
  if (this->SkipUnlessWaking()) GTEST_SKIP() << "the store does not wake on new rows";
  this->ClaimNothing();
  this->Append("A", "A1");  // between a claim and the wait: must not be missed
  const auto started = TestFixture::Steady::now();
  EXPECT_TRUE(this->store().WaitForRows(started + TestFixture::kFar, {}));
  EXPECT_LT(TestFixture::Steady::now() - started, TestFixture::kFar / 2);
}

TYPED_TEST_P(OutboxStoreContract, WaitForRowsReturnsFalseAtUntilWhenNothingIsAppended) {
  if (this->SkipUnlessWaking()) GTEST_SKIP() << "the store does not wake on new rows";
  this->ClaimNothing();
  const auto until = TestFixture::Steady::now() + std::chrono::milliseconds(50);
  EXPECT_FALSE(this->store().WaitForRows(until, {}));
  EXPECT_GE(TestFixture::Steady::now(), until);
  EXPECT_LT(TestFixture::Steady::now() - until, TestFixture::kFar / 2);
}

TYPED_TEST_P(OutboxStoreContract, WaitForRowsReturnsFalseAtOnceOnAStopRequest) {
  if (this->SkipUnlessWaking()) GTEST_SKIP() << "the store does not wake on new rows";
  this->ClaimNothing();
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_FALSE(this->store().WaitForRows(TestFixture::Steady::now() + TestFixture::kFar,
                                         stopped.get_token()));

  std::stop_source stop;
  std::atomic<bool> entered = false;
  bool woken = true;
  std::thread waiter([&] {
    entered = true;
    woken =
        this->store().WaitForRows(TestFixture::Steady::now() + TestFixture::kFar, stop.get_token());
  });
  while (!entered) std::this_thread::yield();
  const auto requested = TestFixture::Steady::now();
  stop.request_stop();
  waiter.join();
  EXPECT_FALSE(woken);
  EXPECT_LT(TestFixture::Steady::now() - requested, TestFixture::kFar / 2);
}

REGISTER_TYPED_TEST_SUITE_P(OutboxStoreContract,
                            ClaimHandsOutPendingRowsInIdOrderWithAllTheirFields,
                            ClaimTakesNoMoreThanTheLimitOldestFirst,
                            ClaimSkipsAKeyWhoseEarliestPendingRowIsNotDueAndNoOtherKey,
                            FinishMarksPublishedRowsAndLeavesUnlistedRowsPending,
                            FinishCountsAFailedAttemptOnTheRow,
                            AParkedRowIsNeverClaimedAgainAndNoLongerHoldsBackItsKey,
                            ReleaseLeavesEveryClaimedRowPendingAndUnchanged,
                            OldestPendingIsTheCreationTimeOfTheOldestPendingRow,
                            WaitForRowsWakesWhenARowIsAppendedWhileItWaits,
                            WaitForRowsWakesAtOnceForARowAppendedSinceTheLastClaim,
                            WaitForRowsReturnsFalseAtUntilWhenNothingIsAppended,
                            WaitForRowsReturnsFalseAtOnceOnAStopRequest);
/// @endcond

}  // namespace dispatch::testing
