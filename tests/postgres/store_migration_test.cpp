// The schema migrations: applied once, recorded, safe when processes start at once.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

TEST(PostgresMigration, ConstructionAppliesTheMigrationAndRecordsItsVersion) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  EXPECT_EQ(Query(db.Conninfo(),
                  "SELECT string_agg(version || ' ' || name, ',' ORDER BY version) "
                  "FROM outbox_schema_migrations"),
            "1 001_outbox.sql,2 002_notify.sql,3 003_claim.sql,4 004_operator.sql");
  EXPECT_EQ(Query(db.Conninfo(), "SELECT count(*) FROM pg_indexes WHERE tablename = 'outbox'"),
            "5");
}

TEST(PostgresMigration, MigratingAgainChangesNothing) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  store.Append({Row("a")});
  store.Migrate();
  PostgresStore second(db.Conninfo());
  EXPECT_EQ(Query(db.Conninfo(), "SELECT count(*) FROM outbox_schema_migrations"), "4");
  EXPECT_EQ(store.Count().pending, 1);
}

TEST(PostgresMigration, StoresStartingAtOnceOnAnEmptyDatabaseApplyItOnce) {
  ScratchDatabase db;
  constexpr int kStores = 8;
  std::atomic<int> ready{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&] {
      ++ready;
      while (ready < kStores) std::this_thread::yield();  // start together
      try {
        PostgresStore store(db.Conninfo());
      } catch (const StoreError& e) {
        ADD_FAILURE() << e.what();
        ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(Query(db.Conninfo(), "SELECT count(*) FROM outbox_schema_migrations"), "4");
}

TEST(PostgresMigration, AStoreWithoutMigrationNamesTheMissingTable) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo(), PostgresStoreOptions{.migrate = false});
  try {
    (void)store.Claim(1, std::chrono::system_clock::now());
    FAIL() << "Claim on a database without the outbox table did not throw";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("claim"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"outbox\" does not exist"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dispatch::test
