// Several PostgresStore objects, each on its own connection, in threads:
// what several dispatchers sharing one outbox table rely on.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "postgres/claim_worker.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;
using State = RowState;
constexpr auto kPromptly = std::chrono::seconds(10);

// Two dispatchers' stores, each on its own connection, on one outbox.
class PostgresTwoDispatchers : public ::testing::Test {
 protected:
  ScratchDatabase db_;
  PostgresStore first_{db_.Conninfo()};
  PostgresStore second_{db_.Conninfo()};
};

TEST_F(PostgresTwoDispatchers, AKeyHeldByOneClaimIsNotHandedToAnother) {
  const auto ids = first_.Append({Row("a"), Row("b"), Row("a"), Row("c")});
  ASSERT_EQ(IdsOf(first_.Claim(2, Clock::now())), (std::vector<std::int64_t>{ids[0], ids[1]}));
  // Key a's second row waits for the first claim; c is free.
  EXPECT_EQ(IdsOf(second_.Claim(10, Clock::now())), (std::vector<std::int64_t>{ids[3]}));
}

TEST_F(PostgresTwoDispatchers, AClaimLooksPastKeysHeldElsewhereForItsLimit) {
  const auto ids = first_.Append({Row("a"), Row("b"), Row("c"), Row("d")});
  ASSERT_EQ(first_.Claim(2, Clock::now()).size(), 2u);
  EXPECT_EQ(IdsOf(second_.Claim(2, Clock::now())), (std::vector<std::int64_t>{ids[2], ids[3]}));
}

TEST_F(PostgresTwoDispatchers, AClaimLeavesTheKeysItCannotFillToTheOthers) {
  const auto ids = first_.Append({Row("a"), Row("a"), Row("a"), Row("b")});
  ASSERT_EQ(IdsOf(first_.Claim(2, Clock::now())), (std::vector<std::int64_t>{ids[0], ids[1]}));
  EXPECT_EQ(IdsOf(second_.Claim(10, Clock::now())), (std::vector<std::int64_t>{ids[3]}));
}

TEST_F(PostgresTwoDispatchers, AKeyIsReadAfterItsLockSoRowsFinishedMeanwhileAreNotHandedOut) {
  const auto ids = first_.Append({Row("a"), Row("a"), Row("a")});
  ASSERT_EQ(first_.Claim(2, Clock::now()).size(), 2u);
  EXPECT_TRUE(second_.Claim(10, Clock::now()).empty());
  first_.Finish({ids[0]},
                {RowFailure{ids[1], "down", false, Clock::now() + std::chrono::hours(1)}});
  // Row 2 backs off: the key's head is not due, so row 3 waits too.
  EXPECT_TRUE(second_.Claim(10, Clock::now()).empty());
  EXPECT_EQ(IdsOf(second_.Claim(10, Clock::now() + std::chrono::hours(2))),
            (std::vector<std::int64_t>{ids[1], ids[2]}));
}

TEST(PostgresSeveralDispatchers, ConcurrentClaimersPublishEveryRowOnceAndEachKeyInIdOrder) {
  ScratchDatabase db;
  CreateBookkeeping(db.Conninfo());
  AppendRowsOfKeys(db.Conninfo(), 600, 23);

  constexpr int kClaimers = 4;
  std::vector<std::future<DrainReport>> claimers;
  for (int i = 0; i < kClaimers; ++i) {
    claimers.push_back(
        std::async(std::launch::async, [&] { return DrainOutbox(db.Conninfo(), 20, 5); }));
  }
  std::int64_t published = 0;
  for (auto& c : claimers) {
    const DrainReport report = c.get();
    EXPECT_EQ(report.overlaps, 0);
    published += report.published;
  }
  EXPECT_EQ(published, 600);
  EXPECT_EQ(PublicationProblems(db.Conninfo(), 600), "");
}

TEST(PostgresSeveralDispatchers, AClaimWhoseConnectionIsTerminatedGoesBackToTheOthersUnmarked) {
  ScratchDatabase db;
  PostgresStore doomed(db.Conninfo("doomed"));
  PostgresStore other(db.Conninfo());
  const auto ids = doomed.Append({Row("a"), Row("a"), Row("b")});
  ASSERT_EQ(doomed.Claim(10, Clock::now()).size(), 3u);
  ASSERT_TRUE(other.Claim(10, Clock::now()).empty());

  db.TerminateSessions("doomed");
  EXPECT_EQ(ClaimWhenFree(other, kPromptly), ids);

  EXPECT_THROW(doomed.Finish(ids, {}), StoreError);
  other.Release();
  EXPECT_EQ(other.Ids(State::kPending), ids);
  EXPECT_EQ(Query(db.Conninfo(), "SELECT sum(attempts) FROM outbox"), "0");
}

TEST(PostgresSeveralDispatchers, AStoreWhoseConnectionWasLostReconnectsOnItsNextClaim) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo("reconnecting"));
  const auto ids = store.Append({Row("a")});
  db.TerminateSessions("reconnecting");
  // The first call after the loss learns of it; a later one connects again.
  EXPECT_EQ(ClaimWhenFree(store, kPromptly), ids);
  store.Finish(ids, {});
  EXPECT_EQ(store.Count().published, 1);
}

TEST(PostgresSeveralDispatchers, AClaimIdleBeyondTheTimeoutIsEndedByTheServer) {
  ScratchDatabase db;
  PostgresStore hung(db.Conninfo(),
                     PostgresStoreOptions{.claim_idle_timeout = std::chrono::milliseconds(200)});
  PostgresStore other(db.Conninfo());
  const auto ids = hung.Append({Row("a")});
  ASSERT_EQ(hung.Claim(10, Clock::now()).size(), 1u);
  EXPECT_EQ(ClaimWhenFree(other, kPromptly), ids);
  other.Release();
  EXPECT_THROW(hung.Finish(ids, {}), StoreError);
  EXPECT_EQ(other.Ids(State::kPending), ids);
}

}  // namespace
}  // namespace dispatch::test
