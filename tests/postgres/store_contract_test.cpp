// The OutboxStore contract (include/dispatch/outbox_store.h) on one
// PostgresStore, what a single dispatcher sees: the suite every store runs
// (<dispatch/testing/outbox_store_contract.h>), then what PostgreSQL adds to it.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/outbox_store_contract.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {

// Named outside an anonymous namespace: CTest names each contract test after
// the harness type.
// Rows are appended through a second connection, as a service's are.
class PostgresHarness {
 public:
  OutboxStore& Store() { return store_; }
  std::int64_t Append(const OutboxRow& row) { return service_.Append({row}).at(0); }
  std::vector<std::int64_t> Ids(RowState state) { return store_.Ids(state); }

 private:
  ScratchDatabase db_;
  PostgresStore store_{db_.Conninfo()};
  PostgresStore service_{db_.Conninfo(), PostgresStoreOptions{.migrate = false, .listen = false}};
};

}  // namespace dispatch::test

namespace dispatch::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, OutboxStoreContract, test::PostgresHarness);
}  // namespace dispatch::testing

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;
using State = RowState;

class PostgresStoreContract : public ::testing::Test {
 protected:
  ScratchDatabase db_;
  PostgresStore store_{db_.Conninfo()};
};

TEST_F(PostgresStoreContract, ClaimReturnsDueRowsOfEveryKeyInIdOrderUpToTheLimit) {
  const auto ids = store_.Append({Row("a"), Row("b"), Row("a"), Row("c"), Row("b")});
  EXPECT_EQ(IdsOf(store_.Claim(4, Clock::now())),
            (std::vector<std::int64_t>{ids[0], ids[1], ids[2], ids[3]}));
  store_.Release();
  EXPECT_EQ(IdsOf(store_.Claim(100, Clock::now())), ids);
}

TEST_F(PostgresStoreContract, HeadersRoundTripWithANulByteInTheirKeys) {
  const std::string binary("\0\xff\x01zero\0", 9);
  const std::vector<Header> headers = {{std::string("k\0y", 3), binary},
                                       {std::string("\0", 1), ""}};
  store_.Append({Row("a", binary, headers)});
  const auto rows = store_.Claim(1, Clock::now());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].payload, binary);
  EXPECT_EQ(rows[0].headers, headers);
}

TEST_F(PostgresStoreContract, AKeyWithANulByteIsRejectedNotCutShort) {
  EXPECT_THROW(store_.Append({Row(std::string("a\0b", 3))}), StoreError);
  EXPECT_EQ(store_.Count().pending, 0);
}

TEST_F(PostgresStoreContract, FinishMarksPublishedRecordsFailuresAndLeavesTheRestPending) {
  const auto ids = store_.Append({Row("a"), Row("b"), Row("c"), Row("d")});
  const auto now = Clock::now();
  ASSERT_EQ(store_.Claim(10, now).size(), 4u);
  store_.Finish({ids[0]}, {RowFailure{ids[1], "too large", true, {}},
                           RowFailure{ids[2], "timed out", false, now}});

  EXPECT_EQ(store_.Ids(State::kPublished), (std::vector<std::int64_t>{ids[0]}));
  EXPECT_EQ(store_.Ids(State::kParked), (std::vector<std::int64_t>{ids[1]}));
  EXPECT_EQ(store_.Ids(State::kPending), (std::vector<std::int64_t>{ids[2], ids[3]}));
  const std::string conninfo = db_.Conninfo();
  EXPECT_EQ(Query(conninfo, "SELECT last_error FROM outbox WHERE id = " + std::to_string(ids[1])),
            "too large");
  EXPECT_EQ(Query(conninfo, "SELECT attempts FROM outbox WHERE id = " + std::to_string(ids[2])),
            "1");
  EXPECT_EQ(Query(conninfo, "SELECT attempts FROM outbox WHERE id = " + std::to_string(ids[3])),
            "0");
}

TEST_F(PostgresStoreContract, FinishThatFailsMidwayRecordsNothing) {
  const auto ids = store_.Append({Row("a"), Row("b")});
  ASSERT_EQ(store_.Claim(10, Clock::now()).size(), 2u);
  // The rows are marked first; then the error text, not valid UTF-8, is
  // refused by the server.
  EXPECT_THROW(store_.Finish({ids[0]}, {RowFailure{ids[1], "bad \xff byte", false, Clock::now()}}),
               StoreError);
  EXPECT_EQ(store_.Ids(State::kPending), ids);
  // The claim is over, and the rows are claimable again.
  EXPECT_EQ(IdsOf(store_.Claim(10, Clock::now())), ids);
}

TEST_F(PostgresStoreContract, FinishRefusesARowTheClaimDoesNotHold) {
  const auto ids = store_.Append({Row("a"), Row("a")});
  ASSERT_EQ(store_.Claim(1, Clock::now()).size(), 1u);
  EXPECT_THROW(store_.Finish({ids[0], ids[1]}, {}), StoreError);
  EXPECT_EQ(store_.Ids(State::kPending), ids);
}

TEST_F(PostgresStoreContract, CountAndIdsReportEachState) {
  const auto ids = store_.Append({Row("a", "p", {}, "orders"), Row("b", "p", {}, "payments")});
  ASSERT_EQ(store_.Claim(10, Clock::now()).size(), 2u);
  store_.Finish({ids[0]}, {RowFailure{ids[1], "poison", true, {}}});
  const auto counts = store_.Count();
  EXPECT_EQ(counts.pending, 0);
  EXPECT_EQ(counts.published, 1);
  EXPECT_EQ(counts.parked, 1);
  EXPECT_EQ(store_.Ids(State::kPublished, "orders"), (std::vector<std::int64_t>{ids[0]}));
  EXPECT_TRUE(store_.Ids(State::kPublished, "payments").empty());
}

}  // namespace
}  // namespace dispatch::test
