// outbox_worker (examples/outbox_worker): a dispatcher process over a
// PostgreSQL outbox, publishing to a Kafka cluster (here the embedded one,
// which listens on loopback, so another process reaches it).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/embedded_kafka.h"
#include "postgres/child_process.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

std::vector<std::int64_t> AppendRows(PostgresStore& store, int rows, int keys) {
  std::vector<OutboxRow> batch;
  for (int i = 0; i < rows; ++i) {
    batch.push_back(Row("key-" + std::to_string(i % keys), "event " + std::to_string(i)));
  }
  return store.Append(batch);
}

std::unique_ptr<ChildProcess> StartWorker(const ScratchDatabase& db,
                                          const dispatch::testing::EmbeddedKafkaCluster& kafka) {
  auto worker = std::make_unique<ChildProcess>(
      DISPATCH_OUTBOX_WORKER,
      std::vector<std::string>{"--postgres", db.Conninfo(), "--brokers", kafka.Bootstrap(),
                               "--batch", "50"},
      std::vector<std::string>{});
  EXPECT_NE(worker->ReadLine(std::chrono::seconds(30)).find("running"), std::string::npos);
  return worker;
}

// What is wrong with the records read back: a row missing, or, counting
// each row at its first record (consumers drop the later duplicates), a key
// whose rows arrived out of id order. Empty when nothing is.
std::string RecordProblems(const std::vector<dispatch::testing::Record>& records,
                           const std::vector<std::int64_t>& ids) {
  std::map<std::string, std::int64_t> last_id;
  std::set<std::int64_t> seen;
  std::string problems;
  for (const dispatch::testing::Record& r : records) {
    std::int64_t id = 0;
    for (const Header& h : r.headers) {
      if (h.key == "outbox-id") id = std::stoll(h.value);
    }
    if (!seen.insert(id).second) continue;
    const std::string key = r.key.value_or("(null)");
    if (id <= last_id[key]) problems += "row " + std::to_string(id) + " of " + key + " late; ";
    last_id[key] = id;
  }
  if (seen != std::set<std::int64_t>(ids.begin(), ids.end())) {
    problems += std::to_string(ids.size() - seen.size()) + " rows missing or foreign; ";
  }
  return problems;
}

TEST(OutboxWorker, PublishesEveryRowInKeyOrderAndStopsCleanlyOnSigterm) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 3);
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  const auto ids = AppendRows(store, 60, 7);

  const auto worker = StartWorker(db, kafka);
  EXPECT_TRUE(WaitFor([&] { return store.Count().published == 60; }, std::chrono::seconds(60)));

  worker->Signal(SIGTERM);
  const std::string summary = worker->ReadLine(std::chrono::seconds(30));
  EXPECT_NE(summary.find("published 60"), std::string::npos) << summary;
  const int status = worker->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  const auto records = kafka.ReadTopic("orders", 60);
  EXPECT_EQ(records.size(), 60u);
  EXPECT_EQ(RecordProblems(records, ids), "");
}

TEST(OutboxWorker, AWorkerKilledMidRunLeavesItsRowsToTheOtherWithNoKeyOutOfOrder) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 3);
  // A worker sends a round's rows in one wave (a key's rows travel
  // together), so each round costs one answer of 50 ms: 1,100 rows in
  // rounds of 50 take each worker a second or more, and the kill lands
  // mid-run.
  kafka.SetRtt(-1, std::chrono::milliseconds(50));
  ScratchDatabase db;
  PostgresStore store(db.Conninfo());
  const auto ids = AppendRows(store, 1100, 11);

  const auto doomed = StartWorker(db, kafka);
  const auto survivor = StartWorker(db, kafka);
  EXPECT_TRUE(WaitFor([&] { return store.Count().published >= 200; }, std::chrono::seconds(60)));
  doomed->Signal(SIGKILL);
  doomed->Wait();
  EXPECT_LT(store.Count().published, 1100) << "the kill came after the end: the test proves less";

  EXPECT_TRUE(WaitFor([&] { return store.Count().published == 1100; }, std::chrono::seconds(120)));
  survivor->Signal(SIGTERM);
  const int status = survivor->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  // At least once: rows the killed worker sent but never marked come again.
  const auto records = kafka.ReadWholeTopic("orders");
  EXPECT_GE(records.size(), 1100u);
  EXPECT_EQ(RecordProblems(records, ids), "");
}

}  // namespace
}  // namespace dispatch::test
