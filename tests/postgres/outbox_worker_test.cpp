// outbox_worker (examples/outbox_worker): a dispatcher process over a
// PostgreSQL outbox, publishing to a Kafka cluster (here the embedded one,
// which listens on loopback, so another process reaches it).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/embedded_kafka.h"
#include "postgres/child_process.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

TEST(OutboxWorker, PublishesEveryRowInKeyOrderAndStopsCleanlyOnSigterm) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 3);
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  std::vector<OutboxRow> rows;
  for (int i = 0; i < 60; ++i) {
    rows.push_back(Row("key-" + std::to_string(i % 7), "event " + std::to_string(i)));
  }
  const auto ids = store.Append(rows);

  ChildProcess worker(DISPATCH_OUTBOX_WORKER,
                      {"--postgres", db.Conninfo(), "--brokers", kafka.Bootstrap()}, {});
  EXPECT_NE(worker.ReadLine(std::chrono::seconds(30)).find("running"), std::string::npos);
  EXPECT_TRUE(WaitFor([&] { return store.Count().published == 60; }, std::chrono::seconds(60)));

  worker.Signal(SIGTERM);
  const std::string summary = worker.ReadLine(std::chrono::seconds(30));
  EXPECT_NE(summary.find("published 60"), std::string::npos) << summary;
  const int status = worker.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  // Per key, the records carry the row ids in ascending order.
  const std::vector<dispatch::testing::Record> records = kafka.ReadTopic("orders", 60);
  ASSERT_EQ(records.size(), 60u);
  std::map<std::string, std::int64_t> last_id;
  std::set<std::int64_t> seen;
  for (const dispatch::testing::Record& r : records) {
    std::int64_t id = 0;
    for (const Header& h : r.headers) {
      if (h.key == "outbox-id") id = std::stoll(h.value);
    }
    ASSERT_TRUE(r.key.has_value());
    EXPECT_GT(id, last_id[*r.key]) << "key " << *r.key;
    last_id[*r.key] = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen, std::set<std::int64_t>(ids.begin(), ids.end()));
}

}  // namespace
}  // namespace dispatch::test
