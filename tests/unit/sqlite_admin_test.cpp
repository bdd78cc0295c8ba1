// dispatch::SqliteAdmin: the operator contract
// (<dispatch/testing/outbox_admin_contract.h>), then what SQLite adds: the
// exact published count and the upgrade of a file without parked_at.
#include "dispatch/stores/sqlite_admin.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "dispatch/stores/sqlite_store.h"
#include "dispatch/testing/outbox_admin_contract.h"

namespace dispatch {
namespace test {

// A database file in the test's temporary folder, removed (with its WAL
// files) before and after.
class SqliteAdminFile {
 public:
  SqliteAdminFile() {
    static std::atomic<int> files{0};
    path_ = (std::filesystem::path(::testing::TempDir()) /
             (std::to_string(getpid()) + "-admin-" + std::to_string(++files) + ".db"))
                .string();
    Remove();
  }
  ~SqliteAdminFile() { Remove(); }
  const std::string& path() const { return path_; }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  std::string path_;
};

// Named outside an anonymous namespace: CTest names each contract test after
// the harness type. The service, the dispatcher's store and the admin each
// have a connection of their own.
class SqliteAdminHarness {
 public:
  OutboxStore& Store() { return store_; }
  OutboxAdmin& Admin() { return admin_; }
  std::int64_t Append(const OutboxRow& row) { return service_.Append({row}).at(0); }
  std::vector<std::int64_t> Ids(RowState state) { return store_.Ids(state); }

 private:
  SqliteAdminFile file_;
  SqliteStore store_{file_.path()};
  SqliteStore service_{file_.path()};
  SqliteAdmin admin_{file_.path()};
};

}  // namespace test

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, OutboxAdminContract, test::SqliteAdminHarness);
}  // namespace testing

namespace {

using Clock = std::chrono::system_clock;

OutboxRow Row(const std::string& key) {
  OutboxRow r;
  r.key = key;
  r.topic = "orders";
  r.payload = "p";
  return r;
}

TEST(SqliteAdmin, StatusCountsThePublishedRowsExactly) {
  test::SqliteAdminFile file;
  SqliteStore store(file.path());
  SqliteAdmin admin(file.path());
  const auto ids = store.Append({Row("a"), Row("b"), Row("c")});
  ASSERT_EQ(store.Claim(10, Clock::now()).size(), 3u);
  store.Finish({ids[0], ids[1]}, {});
  const OutboxStatus status = admin.Status();
  EXPECT_FALSE(status.published_is_estimate);
  EXPECT_EQ(status.published, 2);
  EXPECT_EQ(status.pending, 1);
}

TEST(SqliteAdmin, AFileWithoutParkedAtIsUpgradedAndItsParkedRowsListedWithoutATime) {
  test::SqliteAdminFile file;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.path().c_str(), &db), SQLITE_OK);
    // The table as a version before parked_at made it, with a parked row.
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "key TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, "
                           "headers BLOB NOT NULL DEFAULT x'', created_at INTEGER NOT NULL, "
                           "retry_at INTEGER NOT NULL DEFAULT 0, published_at INTEGER, "
                           "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, "
                           "state TEXT NOT NULL DEFAULT 'pending');"
                           "INSERT INTO outbox (key, topic, payload, created_at, attempts, "
                           "last_error, state) VALUES ('a', 'orders', x'', 1000, 1, 'poison', "
                           "'parked');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  SqliteAdmin admin(file.path());
  const auto parked = admin.Parked(10);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].parked_at, std::nullopt);
  EXPECT_EQ(parked[0].last_error, "poison");
  // Counted from its creation time, in 1970.
  EXPECT_EQ(admin.PurgeParked(Clock::now()), 1);
}

}  // namespace
}  // namespace dispatch
