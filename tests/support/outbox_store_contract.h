// The OutboxStore contract (include/dispatch/outbox_store.h) as a typed
// GoogleTest suite that any store runs through. Self-contained: it needs
// GoogleTest and <dispatch/outbox_store.h> only.
//
// A store's test supplies a Harness type: default-constructible, on a fresh
// empty outbox, with
//
//   dispatch::OutboxStore& Store();                 the store under test
//   std::int64_t Append(const dispatch::OutboxRow&); writes a pending row as
//       the service would (key, topic, payload, headers; created_at when set,
//       else now) and returns its id
//   std::vector<std::int64_t> PendingIds();          ascending, per state
//   std::vector<std::int64_t> PublishedIds();
//   std::vector<std::int64_t> ParkedIds();
//
// and instantiates the suite:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, OutboxStoreContract, SqliteHarness);
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/outbox_store.h"

namespace dispatch::test {

template <typename Harness>
class OutboxStoreContract : public ::testing::Test {
 protected:
  using Clock = std::chrono::system_clock;

  std::int64_t Append(const std::string& key, const std::string& payload,
                      std::vector<Header> headers = {}) {
    OutboxRow row;
    row.key = key;
    row.topic = "orders";
    row.payload = payload;
    row.headers = std::move(headers);
    return harness_.Append(row);
  }
  static std::vector<std::int64_t> IdsOf(const std::vector<OutboxRow>& rows) {
    std::vector<std::int64_t> ids;
    for (const OutboxRow& r : rows) ids.push_back(r.id);
    return ids;
  }
  std::vector<std::int64_t> ClaimIds(Clock::time_point now = Clock::now(),
                                     std::size_t limit = 100) {
    return IdsOf(store().Claim(limit, now));
  }
  // A retriable failure of `id`, due again at `retry_at`.
  static RowFailure RetryAt(std::int64_t id, Clock::time_point retry_at) {
    return RowFailure{id, "broker down", false, retry_at};
  }

  OutboxStore& store() { return harness_.Store(); }
  Harness harness_;
};

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
  const std::vector<std::int64_t> pending = this->harness_.PendingIds();
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
  EXPECT_EQ(this->harness_.PublishedIds(), (std::vector<std::int64_t>{a, c}));
  EXPECT_EQ(this->harness_.PendingIds(), (std::vector<std::int64_t>{b}));
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
  EXPECT_EQ(this->harness_.ParkedIds(), (std::vector<std::int64_t>{a1}));
  EXPECT_EQ(this->ClaimIds(), (std::vector<std::int64_t>{a2}));
  this->store().Release();
}

TYPED_TEST_P(OutboxStoreContract, ReleaseLeavesEveryClaimedRowPendingAndUnchanged) {
  const auto a = this->Append("A", "A1");
  const auto rows = this->store().Claim(10, TestFixture::Clock::now());
  ASSERT_EQ(rows.size(), 1u);
  this->store().Release();
  EXPECT_EQ(this->harness_.PendingIds(), (std::vector<std::int64_t>{a}));
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

REGISTER_TYPED_TEST_SUITE_P(OutboxStoreContract,
                            ClaimHandsOutPendingRowsInIdOrderWithAllTheirFields,
                            ClaimTakesNoMoreThanTheLimitOldestFirst,
                            ClaimSkipsAKeyWhoseEarliestPendingRowIsNotDueAndNoOtherKey,
                            FinishMarksPublishedRowsAndLeavesUnlistedRowsPending,
                            FinishCountsAFailedAttemptOnTheRow,
                            AParkedRowIsNeverClaimedAgainAndNoLongerHoldsBackItsKey,
                            ReleaseLeavesEveryClaimedRowPendingAndUnchanged,
                            OldestPendingIsTheCreationTimeOfTheOldestPendingRow);

}  // namespace dispatch::test
