// dispatch-relay on a SQLite outbox (store.kind = "sqlite"): one process,
// rows published to an embedded Kafka cluster, stopped by SIGTERM.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "dispatch/stores/sqlite_store.h"
#include "dispatch/testing/embedded_kafka.h"
#include "postgres/child_process.h"
#include "postgres/postgres_test_support.h"
#include "relay_process_support.h"

namespace dispatch::relay::test {
namespace {

TEST(RelaySqlite, PublishesASqliteOutboxAndStopsOnSigterm) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 2);
  const std::string db = WriteTempFile("outbox.db", "");
  std::remove(db.c_str());
  SqliteStore store(db);
  std::vector<OutboxRow> rows;
  for (int i = 0; i < 40; ++i) {
    rows.push_back(dispatch::test::Row("key-" + std::to_string(i % 5), "event"));
  }
  store.Append(rows);

  const std::string config = WriteTempFile(
      "sqlite.toml", "[store]\nkind = \"sqlite\"\npath = \"" + db + "\"\n[kafka]\nbrokers = [\"" +
                         kafka.Bootstrap() + "\"]\n" + kAnyHttpPort);
  dispatch::test::ChildProcess relay(DISPATCH_RELAY_BINARY, {"--config", config}, {});
  const std::string running = relay.ReadLine(std::chrono::seconds(30));
  ASSERT_NE(running.find("dispatch-relay: running"), std::string::npos) << running;
  EXPECT_TRUE(dispatch::test::WaitFor([&] { return store.Count().published == 40; },
                                      std::chrono::seconds(60)));
  relay.Signal(SIGTERM);
  const std::string summary = relay.ReadLine(std::chrono::seconds(60));
  const int status = relay.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(summary.find("published 40 "), std::string::npos) << summary;
  EXPECT_EQ(kafka.ReadTopic("orders", 40).size(), 40u);
  std::remove(db.c_str());
}

}  // namespace
}  // namespace dispatch::relay::test
