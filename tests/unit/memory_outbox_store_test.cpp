// dispatch::testing::MemoryOutboxStore keeps the OutboxStore contract, so what
// the dispatcher tests show with it holds for a real store too; and its test
// helpers do what they say.
#include "dispatch/testing/memory_outbox_store.h"

#include <gtest/gtest.h>

#include "dispatch/testing/outbox_store_contract.h"

namespace dispatch::test {

// Named outside an anonymous namespace: CTest names each contract test after
// the harness type.
class MemoryHarness {
 public:
  OutboxStore& Store() { return store_; }
  std::int64_t Append(const OutboxRow& row) { return store_.Append(row); }
  std::vector<std::int64_t> Ids(RowState state) { return store_.Ids(state); }

 private:
  testing::MemoryOutboxStore store_;
};

}  // namespace dispatch::test

namespace dispatch::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, OutboxStoreContract, test::MemoryHarness);
}  // namespace dispatch::testing

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;

TEST(MemoryOutboxStore, FinishRecordsStateErrorRetryTimeAndPublicationTime) {
  testing::MemoryOutboxStore store;
  const auto a = store.Append("A", "A1");
  const auto b = store.Append("B", "B1", "payments");
  const auto c = store.Append("C", "C1");
  const auto retry_at = Clock::now() + std::chrono::minutes(1);
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 3u);
  store.Finish({a}, {RowFailure{b, "too large", true, {}}, RowFailure{c, "down", false, retry_at}});
  EXPECT_EQ(store.Row(a).state, RowState::kPublished);
  EXPECT_TRUE(store.Row(a).published_at.has_value());
  EXPECT_EQ(store.Row(b).state, RowState::kParked);
  EXPECT_EQ(store.Row(b).last_error, "too large");
  EXPECT_EQ(store.Row(c).row.attempts, 1);
  EXPECT_EQ(store.Row(c).retry_at, retry_at);
  EXPECT_EQ(store.Ids(RowState::kParked, "payments"), (std::vector<std::int64_t>{b}));
  EXPECT_TRUE(store.Ids(RowState::kParked, "orders").empty());
  const OutboxCounts counts = store.Count();
  EXPECT_EQ(counts.pending, 1);
  EXPECT_EQ(counts.published, 1);
  EXPECT_EQ(counts.parked, 1);
}

TEST(MemoryOutboxStore, InjectedFaultsThrowStoreErrorAndCountTheCalls) {
  testing::MemoryOutboxStore store;
  const auto a = store.Append("A", "A1");
  store.FailClaims(1);
  EXPECT_THROW(store.Claim(10, Clock::now()), StoreError);
  EXPECT_FALSE(store.ClaimOpen());
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 1u);
  store.FailFinishes(1);
  EXPECT_THROW(store.Finish({a}, {}), StoreError);
  EXPECT_EQ(store.Row(a).state, RowState::kPending);
  store.Release();
  EXPECT_EQ(store.Claims(), 2);
  EXPECT_EQ(store.Finishes(), 1);
  EXPECT_EQ(store.Releases(), 1);
}

TEST(MemoryOutboxStore, ClaimWhileAClaimIsOpenIsAStoreError) {
  testing::MemoryOutboxStore store;
  store.Append("A", "A1");
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 1u);
  EXPECT_THROW(store.Claim(10, Clock::now()), StoreError);
  store.Release();
  EXPECT_EQ(store.Claim(10, Clock::now()).size(), 1u);
}

}  // namespace
}  // namespace dispatch::test
