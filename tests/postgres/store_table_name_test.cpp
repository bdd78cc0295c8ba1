// PostgresStoreOptions::table and PostgresAdminOptions::table: the store
// and admin contracts on a table of another name beside a default `outbox`
// in the same database, what that table's migrations make, whose listeners
// its inserts wake, and the names that are refused.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_admin.h"
#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/outbox_admin_contract.h"
#include "dispatch/testing/outbox_store_contract.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {

PostgresStoreOptions OnTable(const std::string& table, bool service = false) {
  PostgresStoreOptions options;
  options.table = table;
  if (service) {
    options.migrate = false;
    options.listen = false;
  }
  return options;
}

PostgresAdminOptions AdminOnTable(const std::string& table) {
  PostgresAdminOptions options;
  options.table = table;
  return options;
}

// The default table `outbox`, beside the table under test, holding a
// published, a parked and two pending rows whose ids start at 1,000,000: a
// statement of the other table's store that read this one would hand out,
// count or list them, and the contracts, which expect their own ids, fail.
class DecoyOutbox {
 public:
  explicit DecoyOutbox(const std::string& conninfo) {
    PostgresStore outbox(conninfo);
    Query(conninfo, "ALTER TABLE outbox ALTER COLUMN id RESTART WITH 1000000");
    const auto ids = outbox.Append({Row("a"), Row("b"), Row("c"), Row("d")});
    if (outbox.Claim(10, std::chrono::system_clock::now()).size() != 4) {
      throw std::runtime_error("the decoy outbox did not claim its rows");
    }
    outbox.Finish({ids[0]}, {RowFailure{ids[1], "poison", true, {}}});
  }
};

// Named outside an anonymous namespace: CTest names each contract test after
// the harness type.
class PostgresOtherTableHarness {
 public:
  OutboxStore& Store() { return store_; }
  std::int64_t Append(const OutboxRow& row) { return service_.Append({row}).at(0); }
  std::vector<std::int64_t> Ids(RowState state) { return store_.Ids(state); }

 private:
  ScratchDatabase db_;
  DecoyOutbox decoy_{db_.Conninfo()};
  PostgresStore store_{db_.Conninfo(), OnTable("events")};
  PostgresStore service_{db_.Conninfo(), OnTable("events", true)};
};

class PostgresOtherTableAdminHarness {
 public:
  OutboxStore& Store() { return store_; }
  OutboxAdmin& Admin() { return admin_; }
  std::int64_t Append(const OutboxRow& row) { return service_.Append({row}).at(0); }
  std::vector<std::int64_t> Ids(RowState state) { return store_.Ids(state); }

 private:
  ScratchDatabase db_;
  DecoyOutbox decoy_{db_.Conninfo()};
  PostgresStore store_{db_.Conninfo(), OnTable("events")};
  PostgresStore service_{db_.Conninfo(), OnTable("events", true)};
  PostgresAdmin admin_{db_.Conninfo(), AdminOnTable("events")};
};

}  // namespace dispatch::test

namespace dispatch::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(PostgresOtherTable, OutboxStoreContract,
                               test::PostgresOtherTableHarness);
INSTANTIATE_TYPED_TEST_SUITE_P(PostgresOtherTable, OutboxAdminContract,
                               test::PostgresOtherTableAdminHarness);
}  // namespace dispatch::testing

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

// The non-internal objects a database holds whose names start with
// `prefix`: tables, indexes, functions and triggers, sorted, comma-joined.
std::string ObjectsNamed(const std::string& conninfo, const std::string& prefix) {
  return Query(conninfo,
               "SELECT string_agg(name, ',' ORDER BY name) FROM ("
               "  SELECT relname::text AS name FROM pg_class WHERE relname LIKE '" +
                   prefix +
                   "%' AND relkind IN ('r', 'i')"
                   "  UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE '" +
                   prefix +
                   "%'"
                   "  UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE '" +
                   prefix + "%' AND NOT tgisinternal) AS o");
}

TEST(PostgresTableName, AnotherTableAloneMakesOnlyObjectsOfItsOwnNameAndTheSharedFunctions) {
  ScratchDatabase db;
  PostgresStore store(db.Conninfo(), OnTable("events"));
  EXPECT_EQ(ObjectsNamed(db.Conninfo(), "events"),
            "events,events_parked_id,events_pending_id,events_pending_key_id,"
            "events_pending_retry,events_pkey,events_schema_migrations,"
            "events_schema_migrations_pkey,function events_notify,trigger events_notify");
  // The header functions serve every table under one name.
  EXPECT_EQ(ObjectsNamed(db.Conninfo(), "outbox"),
            "function outbox_headers,function outbox_headers_bytea");
  EXPECT_EQ(Query(db.Conninfo(),
                  "SELECT string_agg(version::text, ',' ORDER BY version) "
                  "FROM events_schema_migrations"),
            "1,2,3,4");
}

class TwoOutboxTables : public ::testing::Test {
 protected:
  ScratchDatabase db_;
  PostgresStore outbox_{db_.Conninfo()};
  PostgresStore events_{db_.Conninfo(), OnTable("events")};
};

TEST_F(TwoOutboxTables, EachRecordsItsOwnMigrationsAndTheDefaultKeepsItsNames) {
  const std::string versions = "SELECT string_agg(version::text, ',' ORDER BY version) FROM ";
  EXPECT_EQ(Query(db_.Conninfo(), versions + "outbox_schema_migrations"), "1,2,3,4");
  EXPECT_EQ(Query(db_.Conninfo(), versions + "events_schema_migrations"), "1,2,3,4");
  EXPECT_EQ(ObjectsNamed(db_.Conninfo(), "outbox"),
            "function outbox_headers,function outbox_headers_bytea,function outbox_notify,"
            "outbox,outbox_parked_id,outbox_pending_id,outbox_pending_key_id,"
            "outbox_pending_retry,outbox_pkey,outbox_schema_migrations,"
            "outbox_schema_migrations_pkey,trigger outbox_notify");
  // A second migration of either finds nothing to do.
  outbox_.Migrate();
  events_.Migrate();
  EXPECT_EQ(Query(db_.Conninfo(), versions + "events_schema_migrations"), "1,2,3,4");
}

TEST_F(TwoOutboxTables, AnInsertWakesTheListenersOfItsOwnTableOnly) {
  ASSERT_TRUE(outbox_.WakesOnNewRows());
  ASSERT_TRUE(events_.WakesOnNewRows());
  PostgresStore events_service(db_.Conninfo(), OnTable("events", true));
  PostgresStore outbox_service(db_.Conninfo(), OnTable("outbox", true));

  events_service.Append({Row("k")});
  EXPECT_TRUE(events_.WaitForRows(Steady::now() + std::chrono::seconds(10), {}));
  // The notification reached events_ above; the other table's listener
  // heard nothing in the same time.
  EXPECT_FALSE(outbox_.WaitForRows(Steady::now() + std::chrono::milliseconds(300), {}));

  outbox_service.Append({Row("k")});
  EXPECT_TRUE(outbox_.WaitForRows(Steady::now() + std::chrono::seconds(10), {}));
  EXPECT_FALSE(events_.WaitForRows(Steady::now() + std::chrono::milliseconds(300), {}));
}

TEST_F(TwoOutboxTables, ClaimsOfOneKeyInBothTablesHoldTheirOwnRowsAtOnce) {
  Query(db_.Conninfo(), "ALTER TABLE events ALTER COLUMN id RESTART WITH 500");
  const auto in_outbox = outbox_.Append({Row("k", "in outbox")});
  const auto in_events = events_.Append({Row("k", "in events")});

  // Each claim holds key k's lock of its own table: neither waits.
  const auto from_outbox = outbox_.Claim(10, Clock::now());
  const auto from_events = events_.Claim(10, Clock::now());
  ASSERT_EQ(from_outbox.size(), 1u);
  ASSERT_EQ(from_events.size(), 1u);
  EXPECT_EQ(from_outbox[0].id, in_outbox[0]);
  EXPECT_EQ(from_outbox[0].payload, "in outbox");
  EXPECT_EQ(from_events[0].id, in_events[0]);
  EXPECT_EQ(from_events[0].payload, "in events");

  events_.Finish({in_events[0]}, {});
  outbox_.Release();
  EXPECT_EQ(events_.Count().published, 1);
  EXPECT_EQ(outbox_.Count().pending, 1);
  EXPECT_EQ(outbox_.Count().published, 0);
}

TEST_F(TwoOutboxTables, TheAdminOfOneTableNeverTouchesTheOther) {
  const auto ids = outbox_.Append({Row("a"), Row("b")});
  ASSERT_EQ(outbox_.Claim(10, Clock::now()).size(), 2u);
  outbox_.Finish({ids[0]}, {RowFailure{ids[1], "poison", true, {}}});
  PostgresAdmin events_admin(db_.Conninfo(), AdminOnTable("events"));
  EXPECT_EQ(events_admin.Status().parked, 0);
  EXPECT_TRUE(events_admin.Parked(10).empty());
  EXPECT_EQ(events_admin.PurgeParked(Clock::now()), 0);
  EXPECT_EQ(events_admin.DeletePublished(Clock::now()), 0);
  EXPECT_EQ(outbox_.Count().parked, 1);
  EXPECT_EQ(outbox_.Count().published, 1);
}

TEST(PostgresTableName, ASchemaComesFromTheSearchPath) {
  ScratchDatabase db;
  Query(db.Conninfo(), "CREATE SCHEMA app");
  PostgresStore store(db.Conninfo() + " options=-csearch_path=app", OnTable("events"));
  store.Append({Row("k")});
  EXPECT_EQ(Query(db.Conninfo(), "SELECT count(*) FROM app.events"), "1");
  EXPECT_EQ(Query(db.Conninfo(), "SELECT to_regclass('public.events') IS NULL"), "t");
}

struct BadName {
  std::string table;
  std::string why;
};

TEST(PostgresTableName, ABadNameIsRefusedBeforeConnectingWithTheOptionAndWhatIsAllowed) {
  const std::vector<BadName> bad = {
      {"", "empty"},
      {"app.outbox", "a schema is not allowed"},
      {"Outbox", "holds 'O'"},
      {"out-box", "holds '-'"},
      {"1outbox", "starts with a digit"},
      {"select", "a reserved word"},
      {std::string(41, 'a'), "41 characters"},
  };
  // No server listens there: a name checked after connecting would give a
  // StoreError instead.
  const std::string nowhere = "host=/nonexistent-dispatch-test connect_timeout=1";
  for (const BadName& b : bad) {
    SCOPED_TRACE(b.table);
    try {
      PostgresStore store(nowhere, OnTable(b.table));
      ADD_FAILURE() << "the store took the table name";
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("PostgresStoreOptions::table \"" + b.table +
                             "\": expected an unquoted lower-case SQL identifier"),
                std::string::npos)
          << message;
      EXPECT_NE(message.find("; here: " + b.why), std::string::npos) << message;
    }
    try {
      PostgresAdmin admin(nowhere, AdminOnTable(b.table));
      ADD_FAILURE() << "the admin took the table name";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("PostgresAdminOptions::table \"" + b.table + "\""),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(PostgresTableNameError(std::string(40, 'a')), "");
  EXPECT_EQ(PostgresTableNameError("_order_events_2"), "");
}

TEST(PostgresTableName, EveryReservedWordOfTheServerIsRefusedAndNoOtherKeyWord) {
  ScratchDatabase db;
  const auto words = [&](const std::string& codes) {
    std::vector<std::string> list;
    std::istringstream in(Query(
        db.Conninfo(),
        "SELECT string_agg(word, ' ') FROM pg_get_keywords() WHERE catcode IN (" + codes + ")"));
    for (std::string word; in >> word;) list.push_back(word);
    return list;
  };
  const std::vector<std::string> reserved = words("'R', 'T'");
  ASSERT_GT(reserved.size(), 50u);
  for (const std::string& word : reserved) {
    EXPECT_NE(PostgresTableNameError(word), "") << word;
  }
  // Every other key word names a table unquoted: the allowed ones are not
  // refused, and a store runs its statements on such tables.
  for (const std::string& word : words("'U', 'C'")) {
    EXPECT_EQ(PostgresTableNameError(word), "") << word;
  }
  for (const std::string word : {"action", "values", "time"}) {
    SCOPED_TRACE(word);
    PostgresStore store(db.Conninfo(), OnTable(word));
    const auto ids = store.Append({Row("k")});
    EXPECT_EQ(IdsOf(store.Claim(10, Clock::now())), ids);
    store.Finish(ids, {});
    PostgresAdmin admin(db.Conninfo(), AdminOnTable(word));
    EXPECT_EQ(admin.Status().pending, 0);
  }
}

}  // namespace
}  // namespace dispatch::test
