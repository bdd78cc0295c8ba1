// What a round costs the database, and the choices that change it: the
// finish that records several failures in one statement, published rows
// deleted on request, statements prepared or not, and the counters of keys
// a claim found held by another.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;

TEST(PostgresLoad, OneFinishRecordsEveryFailureWithItsOwnErrorAndTime) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  const auto ids = store.Append({Row("a"), Row("b"), Row("c"), Row("d")});
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 4u);
  const auto later = std::chrono::floor<std::chrono::seconds>(Clock::now()) + std::chrono::hours(1);
  // Errors with the characters an array literal must escape, and a NUL.
  store.Finish({ids[0]}, {RowFailure{ids[1], R"(broker "b1" said {no}, \ retry)", false, later},
                          RowFailure{ids[2], std::string("too large\0!", 11), true, {}},
                          RowFailure{ids[3], "", false, later + std::chrono::seconds(1)}});
  EXPECT_EQ(Query(db.Conninfo(),
                  "SELECT string_agg(concat_ws('|', state, attempts, last_error, "
                  "extract(epoch FROM retry_at)::bigint), ';' ORDER BY id) FROM outbox"),
            "published|0;pending|1|broker \"b1\" said {no}, \\ retry|" +
                std::to_string(Clock::to_time_t(later)) + ";parked|1|too large?!;pending|1||" +
                std::to_string(Clock::to_time_t(later) + 1));
}

TEST(PostgresLoad, AFinishWhoseFailedRowIsNoLongerPendingRecordsNothing) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  const auto ids = store.Append({Row("a"), Row("b")});
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 2u);
  // Changed behind the claim's back (by hand): the lock does not stop that.
  Query(db.Conninfo(), "UPDATE outbox SET state = 'parked' WHERE id = " + std::to_string(ids[1]));
  EXPECT_THROW(store.Finish({ids[0]}, {RowFailure{ids[1], "x", false, Clock::now()}}), StoreError);
  EXPECT_EQ(Query(db.Conninfo(), "SELECT count(*) FROM outbox WHERE state = 'published'"), "0");
}

TEST(PostgresLoad, DeletedPublishedRowsLeaveOnlyPendingAndParkedRows) {
  ScratchDatabase db;
  PostgresStoreOptions options;
  options.published_rows = PublishedRows::kDelete;
  PostgresStore store(db.Conninfo(), options);
  const auto ids = store.Append({Row("a"), Row("a"), Row("b"), Row("c")});
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 4u);
  store.Finish({ids[0], ids[2]}, {RowFailure{ids[3], "too large", true, {}}});
  const OutboxCounts counts = store.Count();
  EXPECT_EQ(counts.published, 0);
  EXPECT_EQ(counts.pending, 1);
  EXPECT_EQ(counts.parked, 1);
  EXPECT_EQ(Query(db.Conninfo(), "SELECT string_agg(id::text, ',' ORDER BY id) FROM outbox"),
            std::to_string(ids[1]) + "," + std::to_string(ids[3]));
  // The key goes on from its next row.
  EXPECT_EQ(IdsOf(store.Claim(10, Clock::now())), (std::vector<std::int64_t>{ids[1]}));
}

TEST(PostgresLoad, StatementsRunUnpreparedWhenAskedAsBehindAPooler) {
  ScratchDatabase db;
  PostgresStoreOptions options;
  options.prepare_statements = false;
  PostgresStore store(db.Conninfo("unprepared"), options);
  const auto ids = store.Append({Row("a"), Row("b")});
  ASSERT_EQ(IdsOf(store.Claim(10, Clock::now())), ids);
  store.Finish(ids, {});
  EXPECT_EQ(store.Count().published, 2);
}

TEST(PostgresLoad, ClaimStatsCountTheKeysLockedAndThoseHeldByAnotherClaim) {
  ScratchDatabase db;
  PostgresStore first(db.Conninfo());
  PostgresStore second(db.Conninfo());
  first.Append({Row("a"), Row("b"), Row("c")});
  ASSERT_EQ(first.Claim(2, Clock::now()).size(), 2u);    // a and b
  ASSERT_EQ(second.Claim(10, Clock::now()).size(), 1u);  // c
  EXPECT_EQ(first.ClaimStats().claims, 1u);
  EXPECT_EQ(first.ClaimStats().keys_locked, 2u);
  EXPECT_EQ(first.ClaimStats().keys_skipped, 0u);
  EXPECT_EQ(second.ClaimStats().keys_locked, 1u);
  EXPECT_EQ(second.ClaimStats().keys_skipped, 2u);
}

TEST(PostgresLoad, AClaimThatFindsNothingDueLeavesNoTransactionOpen) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo("empty-claim"));
  const auto ids = store.Append({Row("a")});
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 1u);
  store.Finish({}, {RowFailure{ids[0], "down", false, Clock::now() + std::chrono::hours(1)}});
  EXPECT_TRUE(store.Claim(10, Clock::now()).empty());
  EXPECT_EQ(Query(db.Conninfo(),
                  "SELECT state FROM pg_stat_activity WHERE application_name = 'empty-claim'"),
            "idle");
}

}  // namespace
}  // namespace dispatch::test
