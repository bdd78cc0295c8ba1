// dispatch::SqliteStore: the store contract, its schema, Finish's atomicity,
// and the errors a service sees.
#include "dispatch/stores/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "dispatch/dispatcher.h"
#include "dispatch/testing/mock_publisher.h"
#include "dispatch/testing/outbox_store_contract.h"

namespace dispatch {
namespace test {

// Named outside an anonymous namespace: CTest names each contract test after
// the harness type.
// A file in the test's temporary folder, named after the process too (two
// builds may test on one machine at once), removed (with its WAL files)
// before and after.
class SqliteFile {
 public:
  explicit SqliteFile(const std::string& name)
      : path_(
            (std::filesystem::path(::testing::TempDir()) / (std::to_string(getpid()) + "-" + name))
                .string()) {
    Remove();
  }
  ~SqliteFile() { Remove(); }
  const std::string& path() const { return path_; }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  std::string path_;
};

// The store under test, and a service's connection beside it that appends
// rows, so that WaitForRows sees them as commits of another connection.
class SqliteHarness {
 public:
  OutboxStore& Store() { return store_; }
  std::int64_t Append(const OutboxRow& row) { return service_.Append({row}).at(0); }
  std::vector<std::int64_t> Ids(RowState state) { return store_.Ids(state); }

 private:
  static std::string NextName() {
    static std::atomic<int> harnesses{0};
    return "contract-" + std::to_string(++harnesses) + ".db";
  }
  SqliteFile file_{NextName()};
  SqliteStore store_{file_.path()};
  SqliteStore service_{file_.path()};
};

}  // namespace test

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, OutboxStoreContract, test::SqliteHarness);
}  // namespace testing

namespace {

using test::SqliteFile;

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using SystemClock = std::chrono::system_clock;

OutboxRow Row(const std::string& key, const std::string& payload,
              const std::string& topic = "orders") {
  OutboxRow r;
  r.key = key;
  r.topic = topic;
  r.payload = payload;
  return r;
}

// A second connection to the file, as another process would hold it.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
  }
  ~RawConnection() { sqlite3_close(db_); }
  int Exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_exec(
        db_, sql.c_str(),
        [](void* data, int, char** values, char**) {
          static_cast<std::vector<std::string>*>(data)->push_back(values[0] ? values[0] : "NULL");
          return 0;
        },
        &out, nullptr);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST(SqliteStore, SchemaKeepsRetryAtAndCreatedAtInMillisecondsSinceTheEpoch) {
  SqliteFile file("schema_outbox.db");
  SqliteStore store(file.path());
  const auto before =
      std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::now().time_since_epoch())
          .count();
  const auto id = store.Append({Row("A", "A1")}).at(0);
  ASSERT_EQ(store.Claim(10, SystemClock::now()).size(), 1u);
  const auto retry_at = SystemClock::time_point(std::chrono::milliseconds(4'102'444'800'000));
  store.Finish({}, {RowFailure{id, "broker down", false, retry_at}});

  RawConnection raw(file.path());
  EXPECT_THAT(raw.Column("SELECT name FROM pragma_table_info('outbox') ORDER BY cid"),
              ElementsAre("id", "key", "topic", "payload", "headers", "created_at", "retry_at",
                          "published_at", "attempts", "last_error", "state", "parked_at"));
  EXPECT_THAT(raw.Column("SELECT retry_at FROM outbox"), ElementsAre("4102444800000"));
  EXPECT_GE(std::stoll(raw.Column("SELECT created_at FROM outbox").at(0)), before);
  EXPECT_THAT(raw.Column("SELECT attempts || ' ' || last_error || ' ' || state FROM outbox"),
              ElementsAre("1 broker down pending"));
}

TEST(SqliteStore, OpensAnOutboxMadeBeforeRetryAtExistedAndAddsTheColumn) {
  SqliteFile file("old_outbox.db");
  {
    RawConnection raw(file.path());
    ASSERT_EQ(raw.Exec("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "aggregate_id TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, "
                       "headers BLOB NOT NULL DEFAULT x'', created_at INTEGER NOT NULL, "
                       "published_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, "
                       "last_error TEXT, state TEXT NOT NULL DEFAULT 'pending');"
                       "INSERT INTO outbox (aggregate_id, topic, payload, created_at) "
                       "VALUES ('A', 'orders', 'A1', 1);"),
              SQLITE_OK);
  }
  SqliteStore store(file.path());
  const auto rows = store.Claim(10, SystemClock::now());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key, "A");
  EXPECT_EQ(rows[0].payload, "A1");
}

// The schema of SqliteStore before 0.2.0, as it created a file: the key
// column was aggregate_id.
constexpr const char* kLayoutBefore020 = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  aggregate_id TEXT    NOT NULL,
  topic        TEXT    NOT NULL,
  payload      BLOB    NOT NULL,
  headers      BLOB    NOT NULL DEFAULT x'',
  created_at   INTEGER NOT NULL,
  retry_at     INTEGER NOT NULL DEFAULT 0,
  published_at INTEGER,
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  state        TEXT    NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'published', 'parked'))
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_pending_key ON outbox (aggregate_id, id)
  WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_pending_created ON outbox (created_at)
  WHERE state = 'pending';
)sql";

TEST(SqliteStore, OpensAFileOfTheLayoutBefore020AndRenamesAggregateIdToKey) {
  SqliteFile file("layout_0_1_outbox.db");
  {
    // Rows as a service and an older dispatcher left them: ids with gaps,
    // some published or parked, one backing off.
    RawConnection raw(file.path());
    ASSERT_EQ(raw.Exec(kLayoutBefore020), SQLITE_OK);
    ASSERT_EQ(raw.Exec("INSERT INTO outbox (id, aggregate_id, topic, payload, created_at, state, "
                       "published_at, attempts, last_error, retry_at) VALUES "
                       "(3, 'A', 'orders', 'A1', 1000, 'published', 1500, 0, NULL, 0),"
                       "(5, 'B', 'orders', 'B1', 1001, 'parked', NULL, 1, 'too large', 0),"
                       "(8, 'A', 'orders', 'A2', 1002, 'pending', NULL, 2, 'broker down', 1),"
                       "(9, 'C', 'payments', 'C1', 1003, 'pending', NULL, 0, NULL, 0),"
                       "(12, 'A', 'orders', 'A3', 1004, 'pending', NULL, 0, NULL, 0)"),
              SQLITE_OK);
  }
  SqliteStore store(file.path());
  EXPECT_THAT(store.Ids(RowState::kPublished), ElementsAre(3));
  EXPECT_THAT(store.Ids(RowState::kParked), ElementsAre(5));
  EXPECT_THAT(store.Ids(RowState::kPending), ElementsAre(8, 9, 12));
  const std::vector<OutboxRow> rows = store.Claim(10, SystemClock::now());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, 8);
  EXPECT_EQ(rows[0].key, "A");
  EXPECT_EQ(rows[0].payload, "A2");
  EXPECT_EQ(rows[0].attempts, 2);
  EXPECT_EQ(rows[0].created_at, SystemClock::time_point(std::chrono::milliseconds(1002)));
  EXPECT_EQ(rows[1].id, 9);
  EXPECT_EQ(rows[1].key, "C");
  EXPECT_EQ(rows[1].topic, "payments");
  EXPECT_EQ(rows[2].id, 12);
  EXPECT_EQ(rows[2].key, "A");
  store.Finish({8, 9, 12}, {});
  // New rows follow the old ones.
  EXPECT_GT(store.Append({Row("D", "D1")}).at(0), 12);

  RawConnection raw(file.path());
  EXPECT_THAT(raw.Column("SELECT name FROM pragma_table_info('outbox') ORDER BY cid"),
              ElementsAre("id", "key", "topic", "payload", "headers", "created_at", "retry_at",
                          "published_at", "attempts", "last_error", "state", "parked_at"));
  // The key index follows the column.
  EXPECT_THAT(raw.Column("SELECT sql FROM sqlite_master WHERE name = 'outbox_pending_key'"),
              ElementsAre(HasSubstr("(key, id)")));
  // The claim's index of the rows waiting for a retry is added to an old file too.
  EXPECT_THAT(raw.Column("SELECT sql FROM sqlite_master WHERE name = 'outbox_pending_retry'"),
              ElementsAre(HasSubstr("retry_at > 0")));
  EXPECT_THAT(raw.Column("SELECT last_error FROM outbox WHERE id = 5"), ElementsAre("too large"));
  // A service writes the new name; the old one is gone.
  EXPECT_EQ(raw.Exec("INSERT INTO outbox (key, topic, payload, created_at) "
                     "VALUES ('E', 'orders', 'E1', 2000)"),
            SQLITE_OK);
  EXPECT_NE(raw.Exec("INSERT INTO outbox (aggregate_id, topic, payload, created_at) "
                     "VALUES ('E', 'orders', 'E2', 2000)"),
            SQLITE_OK);
}

TEST(SqliteStore, OpeningAnUpgradedFileAgainChangesNothing) {
  SqliteFile file("reopened_0_1_outbox.db");
  {
    RawConnection raw(file.path());
    ASSERT_EQ(raw.Exec(kLayoutBefore020), SQLITE_OK);
    ASSERT_EQ(raw.Exec("INSERT INTO outbox (aggregate_id, topic, payload, created_at) "
                       "VALUES ('A', 'orders', 'A1', 1000)"),
              SQLITE_OK);
  }
  { SqliteStore first(file.path()); }
  RawConnection raw(file.path());
  const auto schema = raw.Column("SELECT sql FROM sqlite_master ORDER BY name");
  SqliteStore second(file.path());
  EXPECT_EQ(raw.Column("SELECT sql FROM sqlite_master ORDER BY name"), schema);
  EXPECT_THAT(second.Ids(RowState::kPending), ElementsAre(1));
}

TEST(SqliteStore, ClaimHandsOutRowsInIdOrderAcrossKeysAndTopics) {
  SqliteStore store(":memory:");
  const auto ids = store.Append({Row("B", "B1"), Row("A", "A1", "payments"), Row("B", "B2")});
  std::vector<std::int64_t> claimed;
  for (const OutboxRow& r : store.Claim(10, SystemClock::now())) claimed.push_back(r.id);
  EXPECT_EQ(claimed, ids);
  store.Release();
}

TEST(SqliteStore, ClaimWhileAClaimIsOpenIsAStoreError) {
  SqliteStore store(":memory:");
  store.Append({Row("A", "A1")});
  ASSERT_EQ(store.Claim(10, SystemClock::now()).size(), 1u);
  EXPECT_THROW(store.Claim(10, SystemClock::now()), StoreError);
  store.Release();
  EXPECT_EQ(store.Claim(10, SystemClock::now()).size(), 1u);
}

TEST(SqliteStore, FinishRecordsNothingWhenOneOfItsUpdatesFails) {
  SqliteFile file("atomic_outbox.db");
  SqliteStore store(file.path());
  const auto ids = store.Append({Row("A", "A1"), Row("B", "B1"), Row("C", "C1")});
  ASSERT_EQ(store.Claim(10, SystemClock::now()).size(), 3u);
  {
    // The last update of the transaction fails, after the first two succeeded.
    RawConnection raw(file.path());
    ASSERT_EQ(raw.Exec("CREATE TRIGGER refuse BEFORE UPDATE ON outbox WHEN OLD.id = " +
                       std::to_string(ids[2]) + " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"),
              SQLITE_OK);
  }
  try {
    store.Finish({ids[0], ids[1]}, {RowFailure{ids[2], "broker down", false, SystemClock::now()}});
    FAIL() << "Finish succeeded";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), HasSubstr("disk on fire"));
    EXPECT_THAT(e.what(), HasSubstr(file.path()));
  }
  EXPECT_EQ(store.Ids(RowState::kPending), ids);
  EXPECT_EQ(store.Count().published, 0);
}

TEST(SqliteStore, FinishRejectsARowOutsideTheClaimAndRecordsNothing) {
  SqliteStore store(":memory:");
  const auto ids = store.Append({Row("A", "A1"), Row("A", "A2")});
  ASSERT_EQ(store.Claim(1, SystemClock::now()).size(), 1u);
  try {
    store.Finish({ids[0], ids[1]}, {});
    FAIL() << "Finish marked a row it was not given";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), HasSubstr("row " + std::to_string(ids[1]) + " is not in the open claim"));
  }
  EXPECT_EQ(store.Count().pending, 2);
}

TEST(SqliteStore, AppendCountAndIdsByStateAndTopic) {
  SqliteStore store(":memory:");
  const auto ids = store.Append({Row("A", "A1"), Row("P", "P1", "payments"), Row("B", "poison")});
  ASSERT_EQ(store.Claim(10, SystemClock::now()).size(), 3u);
  store.Finish({ids[0], ids[1]}, {RowFailure{ids[2], "too large", true, {}}});
  EXPECT_THAT(store.Ids(RowState::kPublished), ElementsAre(ids[0], ids[1]));
  EXPECT_THAT(store.Ids(RowState::kPublished, "payments"), ElementsAre(ids[1]));
  EXPECT_THAT(store.Ids(RowState::kParked), ElementsAre(ids[2]));
  const OutboxCounts counts = store.Count();
  EXPECT_EQ(counts.pending, 0);
  EXPECT_EQ(counts.published, 2);
  EXPECT_EQ(counts.parked, 1);
}

TEST(SqliteStore, RowsClaimedByAProcessThatDiedArePendingWhenTheFileIsReopened) {
  SqliteFile file("crash_outbox.db");
  {
    SqliteStore store(file.path());
    store.Append({Row("A", "A1"), Row("B", "B1")});
    ASSERT_EQ(store.Claim(10, SystemClock::now()).size(), 2u);
    // Published, then the process dies before Finish.
  }
  SqliteStore reopened(file.path());
  EXPECT_EQ(reopened.Claim(10, SystemClock::now()).size(), 2u);
  reopened.Release();
}

TEST(SqliteStore, MissingDirectoryIsAClearError) {
  try {
    SqliteStore store("/nonexistent-dir/outbox.db");
    FAIL() << "opened a database in a missing directory";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot open database \"/nonexistent-dir/outbox.db\""));
  }
}

TEST(SqliteStore, DatabaseLockedByAnotherWriterIsAClearError) {
  SqliteFile file("locked_outbox.db");
  { SqliteStore create(file.path()); }
  RawConnection other(file.path());
  ASSERT_EQ(other.Exec("BEGIN IMMEDIATE"), SQLITE_OK);
  try {
    SqliteStore store(file.path());
    ADD_FAILURE() << "opened a database that another writer holds";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), HasSubstr("locked by another process"));
  }
  other.Exec("ROLLBACK");
}

TEST(SqliteStore, DispatcherPublishesMarksAndBacksOffThroughIt) {
  SqliteStore store(":memory:");
  const auto ids = store.Append({Row("A", "fail-A1"), Row("A", "A2"), Row("B", "B1")});
  const auto factory = [] {
    auto publisher = std::make_unique<::testing::NiceMock<testing::MockPublisher>>();
    ON_CALL(*publisher, Publish).WillByDefault([](const Context&, const Message& m) {
      return m.value.starts_with("fail")
                 ? Result::Error(ErrorCode::kBrokerUnavailable, Delivery::kNotDelivered, true,
                                 "broker down")
                 : Result::Delivered();
    });
    return publisher;
  };
  DispatcherOptions options;
  options.retry_base = 1h;
  options.retry_cap = 1h;
  Dispatcher dispatcher(store, factory, options);
  const RoundStats stats = dispatcher.RunOnce();
  EXPECT_EQ(stats.published, 1u);
  EXPECT_EQ(stats.retried, 1u);
  EXPECT_EQ(stats.deferred, 1u);
  EXPECT_THAT(store.Ids(RowState::kPublished), ElementsAre(ids[2]));
  // A1 backs off, and A2 waits behind it.
  EXPECT_EQ(dispatcher.RunOnce().claimed, 0u);
}

}  // namespace
}  // namespace dispatch
