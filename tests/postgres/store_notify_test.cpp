// How a PostgresStore hears of new rows (sql/postgres/002_notify.sql): when
// it wakes, when it does not, and a lost connection. The WaitForRows cases
// every waking store runs are in the contract suite (store_contract_test.cpp).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "dispatch/stores/postgres_store.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

TEST(PostgresNotify, AListeningStoreWakesWhenTheTriggerIsEnabled) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  EXPECT_TRUE(store.WakesOnNewRows());
}

TEST(PostgresNotify, AStoreConnectingWhileTheTriggerIsDisabledDoesNotWake) {
  ScratchDatabase db;
  PostgresStore first(db.Conninfo());
  Query(db.Conninfo(), "ALTER TABLE outbox DISABLE TRIGGER outbox_notify");
  PostgresStore store(db.Conninfo());
  EXPECT_FALSE(store.WakesOnNewRows());
  // Its wait is the default one: it sleeps to `until`, rows or not.
  store.Append({Row("a")});
  const auto until = Steady::now() + 50ms;
  EXPECT_FALSE(store.WaitForRows(until, {}));
  EXPECT_GE(Steady::now(), until);
}

TEST(PostgresNotify, AStoreWithListeningOffDoesNotWake) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo(), PostgresStoreOptions{.listen = false});
  EXPECT_FALSE(store.WakesOnNewRows());
}

TEST(PostgresNotify, ATransactionOfManyRowsSendsOneNotification) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  PostgresStore service(db.Conninfo(), PostgresStoreOptions{.migrate = false, .listen = false});
  (void)store.Claim(10, Clock::now());
  store.Release();
  service.Append({Row("a"), Row("b"), Row("c")});
  EXPECT_TRUE(store.WaitForRows(Steady::now() + 30s, {}));
  // PostgreSQL folded the three statements' notifications into one.
  EXPECT_FALSE(store.WaitForRows(Steady::now() + 50ms, {}));
}

TEST(PostgresNotify, AfterALostConnectionTheWaitEndsAndTheNextClaimListensAgain) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo("notify-lost"));
  PostgresStore service(db.Conninfo(), PostgresStoreOptions{.migrate = false, .listen = false});
  (void)store.Claim(10, Clock::now());
  store.Release();
  db.TerminateSessions("notify-lost");
  const auto started = Steady::now();
  EXPECT_FALSE(store.WaitForRows(started + 30s, {}));
  EXPECT_LT(Steady::now() - started, 15s) << "the wait did not notice the lost connection";
  // The next round's Claim reconnects, and the new session listens.
  EXPECT_TRUE(store.Claim(10, Clock::now()).empty());
  store.Release();
  EXPECT_TRUE(store.WakesOnNewRows());
  service.Append({Row("a")});
  EXPECT_TRUE(store.WaitForRows(Steady::now() + 30s, {}));
}

}  // namespace
}  // namespace dispatch::test
