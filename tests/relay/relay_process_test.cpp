// dispatch-relay as an operator runs it: from a config file, against the
// fixture's PostgreSQL and an embedded Kafka cluster (which listens on
// loopback, so the child reaches it), stopped by SIGTERM.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <set>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/embedded_kafka.h"
#include "postgres/child_process.h"
#include "postgres/postgres_test_support.h"
#include "relay_process_support.h"

namespace dispatch::relay::test {
namespace {

using dispatch::test::ChildProcess;
using dispatch::test::Row;
using dispatch::test::ScratchDatabase;
using dispatch::test::WaitFor;

std::vector<std::int64_t> AppendRows(PostgresStore& store, int first, int rows) {
  std::vector<OutboxRow> batch;
  for (int i = first; i < first + rows; ++i) {
    batch.push_back(Row("key-" + std::to_string(i % 7), "event " + std::to_string(i)));
  }
  return store.Append(batch);
}

TEST(RelayProcess, PublishesRowsFromAConfigFileAndStopsOnSigtermWithCountsRight) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 3);
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  std::vector<std::int64_t> ids = AppendRows(store, 0, 60);

  // The password goes through a file, the brokers through the environment.
  const auto [conninfo, password] = SplitPassword(db.Conninfo("dispatch-relay"));
  ASSERT_FALSE(password.empty()) << "the fixture's conninfo has no password to keep out";
  const std::string password_file = WriteTempFile("pgpassword", password + "\n");
  const std::string config = WriteTempFile(
      "relay.toml", "[store]\nconninfo = \"" + conninfo + "\"\npassword_file = \"" + password_file +
                        "\"\n[kafka]\nbrokers = [\"127.0.0.1:1\"]\nclose_timeout = \"2s\"\n"
                        "[dispatcher]\nbatch_size = 25\npublish_timeout = \"5s\"\n" +
                        kAnyHttpPort);
  ChildProcess relay(DISPATCH_RELAY_BINARY, {"--config", config},
                     {"DISPATCH_RELAY_KAFKA_BROKERS=" + kafka.Bootstrap()});
  const std::string running = relay.ReadLine(std::chrono::seconds(30));
  ASSERT_NE(running.find("dispatch-relay: running"), std::string::npos) << running;

  EXPECT_TRUE(WaitFor([&] { return store.Count().published == 60; }, std::chrono::seconds(60)));
  // Rows committed while it runs (it waits on LISTEN between rounds).
  const auto more = AppendRows(store, 60, 20);
  ids.insert(ids.end(), more.begin(), more.end());
  EXPECT_TRUE(WaitFor([&] { return store.Count().published == 80; }, std::chrono::seconds(60)));

  const auto signalled = std::chrono::steady_clock::now();
  relay.Signal(SIGTERM);
  const std::string summary = relay.ReadLine(std::chrono::seconds(60));
  const int status = relay.Wait();
  // publish_timeout + close_timeout is 7 s; a generous bound that catches a hang.
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(summary.find("dispatch-relay: stopped;"), std::string::npos) << summary;
  EXPECT_NE(summary.find("published 80 "), std::string::npos) << summary;

  const OutboxCounts counts = store.Count();
  EXPECT_EQ(counts.published, 80);
  EXPECT_EQ(counts.pending, 0);
  EXPECT_EQ(counts.parked, 0);
  // Each row on the topic once, under its own id.
  std::set<std::string> seen;
  for (const dispatch::testing::Record& r : kafka.ReadTopic("orders", 80)) {
    for (const Header& h : r.headers) {
      if (h.key == "outbox-id") seen.insert(h.value);
    }
  }
  std::set<std::string> expected;
  for (std::int64_t id : ids) expected.insert(std::to_string(id));
  EXPECT_EQ(seen, expected);
}

TEST(RelayProcess, StopsWithinItsBoundWhileKafkaIsDownAndMarksNothing) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 3);
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  AppendRows(store, 0, 30);
  kafka.BrokerDown(-1);

  const auto [conninfo, password] = SplitPassword(db.Conninfo("dispatch-relay"));
  const std::string config = WriteTempFile(
      "relay_down.toml", "[store]\nconninfo = \"" + conninfo +
                             "\"\n[kafka]\nclose_timeout = \"1s\"\nwrite_timeout = \"0\"\n"
                             "[dispatcher]\npublish_timeout = \"3s\"\n" +
                             kAnyHttpPort);
  ChildProcess relay(DISPATCH_RELAY_BINARY, {"--config", config},
                     {"DISPATCH_RELAY_KAFKA_BROKERS=" + kafka.Bootstrap(),
                      "DISPATCH_RELAY_STORE_PASSWORD=" + password});
  const std::string running = relay.ReadLine(std::chrono::seconds(30));
  ASSERT_NE(running.find("dispatch-relay: running"), std::string::npos) << running;
  // A round is in flight: its rows are claimed and waiting for Kafka.
  dispatch::test::SqlSession sql(db.Conninfo());
  EXPECT_TRUE(WaitFor(
      [&] {
        return sql.Query(
                   "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = "
                   "l.database WHERE l.locktype = 'advisory' AND d.datname = "
                   "current_database()") != "0";
      },
      std::chrono::seconds(30)));

  const auto signalled = std::chrono::steady_clock::now();
  relay.Signal(SIGTERM);
  const std::string summary = relay.ReadLine(std::chrono::seconds(60));
  const int status = relay.Wait();
  // publish_timeout + close_timeout is 4 s; a generous bound that catches a hang.
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(20));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(summary.find("published 0 "), std::string::npos) << summary;
  const OutboxCounts counts = store.Count();
  EXPECT_EQ(counts.published, 0);
  EXPECT_EQ(counts.pending, 30);
}

TEST(RelayProcess, RefusesToStartWhenTheStoreIsUnreachable) {
  const std::string config =
      WriteTempFile("unreachable.toml",
                    "[store]\nconninfo = \"host=127.0.0.1 port=1 dbname=x connect_timeout=2\"\n"
                    "[kafka]\nbrokers = [\"127.0.0.1:1\"]\n" +
                        kAnyHttpPort);
  const Finished r = RunRelay({"--config", config}, {}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.output;
}

}  // namespace
}  // namespace dispatch::relay::test
