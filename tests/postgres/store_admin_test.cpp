// PostgresAdmin: the operator contract (<dispatch/testing/outbox_admin_contract.h>),
// then what PostgreSQL adds: the header functions of migration 4, the
// estimate of published rows, the retention lock, a table that an older
// relay shares, and errors without the password.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_admin.h"
#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/outbox_admin_contract.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {

// Named outside an anonymous namespace: CTest names each contract test after
// the harness type. Rows are appended through a connection of their own, as
// a service's are; the admin has its own, as a relay's retention job does.
class PostgresAdminHarness {
 public:
  OutboxStore& Store() { return store_; }
  OutboxAdmin& Admin() { return admin_; }
  std::int64_t Append(const OutboxRow& row) { return service_.Append({row}).at(0); }
  std::vector<std::int64_t> Ids(RowState state) { return store_.Ids(state); }

 private:
  ScratchDatabase db_;
  PostgresStore store_{db_.Conninfo()};
  PostgresStore service_{db_.Conninfo(), PostgresStoreOptions{.migrate = false, .listen = false}};
  PostgresAdmin admin_{db_.Conninfo()};
};

}  // namespace dispatch::test

namespace dispatch::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, OutboxAdminContract, test::PostgresAdminHarness);
}  // namespace dispatch::testing

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;

std::string FromHex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return bytes;
}

// The bytes of a SQL expression of type bytea.
std::string Bytea(const std::string& conninfo, const std::string& expression) {
  return FromHex(Query(conninfo, "SELECT encode(" + expression + ", 'hex')"));
}

class PostgresAdminTest : public ::testing::Test {
 protected:
  ScratchDatabase db_;
  PostgresStore store_{db_.Conninfo()};
  PostgresAdmin admin_{db_.Conninfo()};
};

TEST_F(PostgresAdminTest, TheHeaderFunctionWritesWhatDecodeHeadersReads) {
  const std::string blob = Bytea(
      db_.Conninfo(), "outbox_headers('event-type', 'OrderPaid', 'empty', '', 'event-type', 'é')");
  EXPECT_EQ(blob, EncodeHeaders({{"event-type", "OrderPaid"}, {"empty", ""}, {"event-type", "é"}}));
  EXPECT_EQ(DecodeHeaders(blob),
            (std::vector<Header>{{"event-type", "OrderPaid"}, {"empty", ""}, {"event-type", "é"}}));
  EXPECT_EQ(Bytea(db_.Conninfo(), "outbox_headers(VARIADIC ARRAY[]::text[])"), "");
}

TEST_F(PostgresAdminTest, TheByteaVariantCarriesBinaryKeysAndValues) {
  const std::string blob =
      Bytea(db_.Conninfo(), "outbox_headers_bytea('\\x00ff'::bytea, '\\x01000000'::bytea)");
  EXPECT_EQ(DecodeHeaders(blob),
            (std::vector<Header>{{std::string("\0\xff", 2), std::string("\x01\0\0\0", 4)}}));
}

TEST_F(PostgresAdminTest, ARowInsertedWithPlainSqlAndTheFunctionIsClaimedWithItsHeaders) {
  // What a service in another language writes (docs/outbox-dispatcher.md).
  Query(db_.Conninfo(),
        "INSERT INTO outbox (key, topic, payload, headers) "
        "VALUES ('order-42', 'orders', convert_to('{\"total\": 12}', 'UTF8'), "
        "outbox_headers('event-type', 'OrderPaid', 'trace-id', 'abc'))");
  const auto rows = store_.Claim(10, Clock::now());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key, "order-42");
  EXPECT_EQ(rows[0].payload, "{\"total\": 12}");
  EXPECT_EQ(rows[0].headers,
            (std::vector<Header>{{"event-type", "OrderPaid"}, {"trace-id", "abc"}}));
}

TEST_F(PostgresAdminTest, TheHeaderFunctionRefusesAnOddNumberOfArgumentsOrANull) {
  try {
    Query(db_.Conninfo(), "SELECT outbox_headers('event-type', 'OrderPaid', 'trace-id')");
    ADD_FAILURE() << "three arguments were accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("3 arguments given; expected key, value pairs"),
              std::string::npos)
        << e.what();
  }
  try {
    Query(db_.Conninfo(), "SELECT outbox_headers('event-type', NULL)");
    ADD_FAILURE() << "a NULL value was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("argument 2 (the value of header 1) is NULL"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(PostgresAdminTest, StatusEstimatesThePublishedRowsFromTheTableStatistics) {
  std::vector<OutboxRow> rows;
  for (int i = 0; i < 50; ++i) rows.push_back(Row("k" + std::to_string(i)));
  const auto ids = store_.Append(rows);
  ASSERT_EQ(store_.Claim(100, Clock::now()).size(), 50u);
  store_.Finish(ids, {});
  // The statistics count a transaction's rows once its backend reports
  // them (within about a second, or when it goes idle).
  OutboxStatus status;
  EXPECT_TRUE(WaitFor(
      [&] {
        status = admin_.Status();
        return status.published == 50;
      },
      std::chrono::seconds(30)))
      << status.published;
  EXPECT_TRUE(status.published_is_estimate);
  EXPECT_EQ(status.pending, 0);
}

TEST_F(PostgresAdminTest, RetentionReturnsZeroWhileAnotherProcessHoldsItsLock) {
  const auto ids = store_.Append({Row("a"), Row("b")});
  ASSERT_EQ(store_.Claim(10, Clock::now()).size(), 2u);
  store_.Finish(ids, {});
  const auto cut = Clock::now() + std::chrono::milliseconds(0);
  {
    SqlSession other(db_.Conninfo());
    other.Query("BEGIN");
    EXPECT_EQ(other.Query("SELECT pg_try_advisory_xact_lock(8031453476610911602 # "
                          "'outbox'::regclass::oid::bigint)"),
              "t");
    EXPECT_EQ(admin_.DeletePublished(cut), 0);
    EXPECT_EQ(store_.Ids(RowState::kPublished), ids);
    other.Query("ROLLBACK");
  }
  EXPECT_EQ(admin_.DeletePublished(cut), 2);
}

TEST_F(PostgresAdminTest, RetentionHasNothingToDoWhenFinishDeletesPublishedRows) {
  PostgresStore deleting(db_.Conninfo(), {.published_rows = PublishedRows::kDelete});
  const auto ids = deleting.Append({Row("a"), Row("b")});
  ASSERT_EQ(deleting.Claim(10, Clock::now()).size(), 2u);
  deleting.Finish(ids, {});
  EXPECT_EQ(admin_.DeletePublished(Clock::now()), 0);
  EXPECT_EQ(deleting.Count().published, 0);
}

TEST_F(PostgresAdminTest, ARowParkedByAnOlderRelayIsListedWithoutAParkedTimeAndPurgedByAge) {
  const auto ids = store_.Append({Row("a")});
  // What a relay before migration 4 writes when it parks a row: no parked_at.
  Query(db_.Conninfo(),
        "UPDATE outbox SET state = 'parked', attempts = 1, last_error = 'too large', "
        "created_at = now() - interval '2 hours' WHERE id = " +
            std::to_string(ids[0]));
  const auto parked = admin_.Parked(10);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].parked_at, std::nullopt);
  EXPECT_EQ(parked[0].last_error, "too large");
  EXPECT_EQ(admin_.PurgeParked(Clock::now() - std::chrono::hours(3)), 0);
  EXPECT_EQ(admin_.PurgeParked(Clock::now() - std::chrono::hours(1)), 1);
}

TEST_F(PostgresAdminTest, FinishRecordsWhenItParksAndNothingMoreWhenItMarks) {
  const auto ids = store_.Append({Row("a"), Row("b")});
  ASSERT_EQ(store_.Claim(10, Clock::now()).size(), 2u);
  store_.Finish({ids[0]}, {RowFailure{ids[1], "poison", true, {}}});
  EXPECT_EQ(Query(db_.Conninfo(), "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL"), "1");
  EXPECT_EQ(Query(db_.Conninfo(),
                  "SELECT parked_at IS NULL FROM outbox WHERE id = " + std::to_string(ids[0])),
            "t");
}

TEST(PostgresAdminSecrets, AWrongPasswordIsReportedWithoutIt) {
  ScratchDatabase db;
  constexpr const char* kSecret = "adm1n-Pa55word";
  try {
    PostgresAdmin admin(db.Conninfo() + " password=" + kSecret + " user=nobody_here");
    ADD_FAILURE() << "connected";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()).find(kSecret), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dispatch::test
