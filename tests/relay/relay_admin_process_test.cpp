// dispatch-relay's operator side as an operator uses it: the built binary
// runs against the fixture's PostgreSQL and an embedded Kafka cluster (which
// listens on loopback, so the child reaches it), and the commands `parked`,
// `requeue`, `status` and `purge` run as separate processes beside it; its
// retention job deletes old published rows; a real Prometheus server scrapes
// its /metrics. Rows are parked by a broker that refuses their produce
// request with MESSAGE_TOO_LARGE (10), as Kafka does for a message over the
// topic's max.message.bytes: a permanent refusal (kMessageTooLarge). The
// error is injected once, so its end stands for the operator raising the
// limit. RequeueAfterCreatingAMissingTopicPublishes parks a row whose topic
// is missing, and publishes it after the topic is created.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/embedded_kafka.h"
#include "http_test_support.h"
#include "postgres/child_process.h"
#include "postgres/postgres_test_support.h"
#include "relay_process_support.h"

namespace dispatch::relay::test {
namespace {

using namespace std::chrono_literals;
using dispatch::test::ChildProcess;
using dispatch::test::Row;
using dispatch::test::ScratchDatabase;
using dispatch::test::SqlSession;
using dispatch::test::WaitFor;

// The fields of `id`'s line in `parked`'s table (id, key, topic, attempts,
// parked_at, last_error); empty when the id is not listed.
std::vector<std::string> ParkedLine(const std::string& table, std::int64_t id) {
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::istringstream in(line);
    for (std::string f; std::getline(in, f, '\t');) fields.push_back(f);
    if (!fields.empty() && fields[0] == std::to_string(id)) return fields;
  }
  return {};
}

// The number after "<name> " at the start of a line of `text` (Prometheus's
// exposition, `status`'s output).
std::optional<double> ValueOf(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

std::string OutboxId(const dispatch::testing::Record& record) {
  for (const Header& h : record.headers) {
    if (h.key == "outbox-id") return h.value;
  }
  return "";
}

class RelayAdmin : public ::testing::Test {
 protected:
  RelayAdmin() : store_(db_.Conninfo()), sql_(db_.Conninfo()) {
    kafka_.CreateTopic("orders", 1);
    auto [conninfo, password] = SplitPassword(db_.Conninfo("dispatch-relay"));
    conninfo_ = conninfo;
    env_ = {"DISPATCH_RELAY_STORE_PASSWORD=" + password};
  }

  // The config file: the fixture's database and cluster, then `extra`.
  // write_timeout 4 s: librdkafka's verdict on a missing topic comes in 2-3 s.
  void WriteConfig(const std::string& extra) {
    config_ = WriteTempFile("admin.toml",
                            "[store]\nconninfo = \"" + conninfo_ + "\"\n[kafka]\nbrokers = [\"" +
                                kafka_.Bootstrap() +
                                "\"]\nwrite_timeout = \"4s\"\nclose_timeout = \"2s\"\n"
                                "[dispatcher]\npublish_timeout = \"10s\"\nretry_cap = \"1s\"\n" +
                                extra);
  }

  void StartRelay() {
    relay_ = std::make_unique<ChildProcess>(DISPATCH_RELAY_BINARY,
                                            std::vector<std::string>{"--config", config_}, env_);
    const std::string running = relay_->ReadLine(30s);
    ASSERT_NE(running.find("dispatch-relay: running"), std::string::npos) << running;
  }

  // SIGTERM; it stops within publish_timeout + close_timeout, exit code 0.
  void StopRelay() {
    relay_->Signal(SIGTERM);
    const std::string summary = relay_->ReadLine(60s);
    const int status = relay_->Wait();
    relay_.reset();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_NE(summary.find("dispatch-relay: stopped;"), std::string::npos) << summary;
  }

  // `dispatch-relay <command> --config F <args>`, as its own process.
  Finished Command(const std::string& command, const std::vector<std::string>& args = {}) {
    std::vector<std::string> all = {command, "--config", config_};
    all.insert(all.end(), args.begin(), args.end());
    return RunRelay(all, env_, 60s);
  }

  // "<state> <attempts>" of row `id`, "" when it is gone.
  std::string StateOf(std::int64_t id) {
    return sql_.Query("SELECT state || ' ' || attempts FROM outbox WHERE id = " +
                      std::to_string(id));
  }
  std::int64_t CountSql(const std::string& state) {
    return std::stoll(sql_.Query("SELECT count(*) FROM outbox WHERE state = '" + state + "'"));
  }

  dispatch::testing::EmbeddedKafkaCluster kafka_;
  ScratchDatabase db_;
  PostgresStore store_;
  SqlSession sql_;
  std::string conninfo_;
  std::vector<std::string> env_;
  std::string config_;
  std::unique_ptr<ChildProcess> relay_;
};

// The broker refuses the next produce request for good (see the top).
void RefuseNextProduce(dispatch::testing::EmbeddedKafkaCluster& kafka) {
  kafka.PushRequestErrors(dispatch::testing::ApiKey::kProduce,
                          {dispatch::testing::kafka_error::kMessageTooLarge});
}

TEST_F(RelayAdmin, RequeueMakesAParkedRowPublishOnceItsCauseIsGone) {
  WriteConfig(kAnyHttpPort);
  RefuseNextProduce(kafka_);
  const std::int64_t id = store_.Append({Row("k-big", "big event")})[0];
  ASSERT_NO_FATAL_FAILURE(StartRelay());
  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "parked 1"; }, 60s)) << StateOf(id);

  const Finished parked = Command("parked");
  EXPECT_EQ(parked.exit_code, 0) << parked.output;
  const std::vector<std::string> line = ParkedLine(parked.output, id);
  ASSERT_EQ(line.size(), 6u) << parked.output;
  EXPECT_EQ(line[1], "k-big");
  EXPECT_EQ(line[2], "orders");
  EXPECT_EQ(line[3], "1");
  EXPECT_NE(line[4], "unknown") << "parked_at not recorded";
  EXPECT_NE(line[5].find("too large"), std::string::npos) << parked.output;
  EXPECT_EQ(line[5], sql_.Query("SELECT last_error FROM outbox WHERE id = " + std::to_string(id)));

  const Finished requeue = Command("requeue", {"--ids", std::to_string(id)});
  EXPECT_EQ(requeue.exit_code, 0) << requeue.output;
  EXPECT_NE(requeue.output.find("requeued 1 row(s): " + std::to_string(id)), std::string::npos)
      << requeue.output;
  // The running relay publishes it: attempts started again from 0.
  EXPECT_TRUE(WaitFor([&] { return StateOf(id) == "published 0"; }, 60s)) << StateOf(id);
  const auto records = kafka_.ReadTopic("orders", 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(OutboxId(records[0]), std::to_string(id));
  EXPECT_EQ(records[0].key, "k-big");
  EXPECT_EQ(records[0].value, "big event");
  const Finished after = Command("parked");
  EXPECT_EQ(after.exit_code, 0) << after.output;
  EXPECT_TRUE(ParkedLine(after.output, id).empty()) << after.output;
  StopRelay();
}

TEST_F(RelayAdmin, RequeueRefusesARowWhoseKeyWentOnUnlessAllowed) {
  WriteConfig(kAnyHttpPort);
  kafka_.CreateTopic("audit", 1);
  RefuseNextProduce(kafka_);
  // Same key, two topics: the first row goes alone in the first produce
  // request and is parked; its key goes on with the second.
  const auto ids =
      store_.Append({Row("k", "first", {}, "audit"), Row("k", "second", {}, "orders")});
  const std::string first = std::to_string(ids[0]);
  ASSERT_NO_FATAL_FAILURE(StartRelay());
  ASSERT_TRUE(WaitFor([&] { return StateOf(ids[0]) == "parked 1"; }, 60s)) << StateOf(ids[0]);
  ASSERT_TRUE(WaitFor([&] { return StateOf(ids[1]) == "published 0"; }, 60s)) << StateOf(ids[1]);

  const Finished refused = Command("requeue", {"--ids", first});
  EXPECT_EQ(refused.exit_code, 3) << refused.output;
  EXPECT_NE(
      refused.output.find("rows " + first + " have later rows of their key already published"),
      std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("Nothing changed"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--allow-out-of-order"), std::string::npos) << refused.output;
  // Still parked with its attempt: a requeue would have set attempts to 0.
  EXPECT_EQ(StateOf(ids[0]), "parked 1");

  const Finished allowed = Command("requeue", {"--ids", first, "--allow-out-of-order"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_NE(allowed.output.find("requeued 1 row(s): " + first), std::string::npos)
      << allowed.output;
  EXPECT_NE(allowed.output.find("note: rows " + first + " reach Kafka after later rows"),
            std::string::npos)
      << allowed.output;
  EXPECT_TRUE(WaitFor([&] { return StateOf(ids[0]) == "published 0"; }, 60s)) << StateOf(ids[0]);
  const auto records = kafka_.ReadTopic("audit", 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(OutboxId(records[0]), first);
  StopRelay();
}

// A row parked because its topic did not exist publishes once the topic is
// created and the row requeued, by the same relay process: its publisher
// looks a topic that librdkafka holds missing up again before it answers
// unknown topic (src/kafka/topics.cpp).
TEST_F(RelayAdmin, RequeueAfterCreatingAMissingTopicPublishes) {
  WriteConfig(kAnyHttpPort);
  const std::int64_t id = store_.Append({Row("k-late", "late event", {}, "late-topic")})[0];
  ASSERT_NO_FATAL_FAILURE(StartRelay());
  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "parked 1"; }, 60s)) << StateOf(id);
  kafka_.CreateTopic("late-topic", 1);
  const Finished requeue = Command("requeue", {"--ids", std::to_string(id)});
  EXPECT_EQ(requeue.exit_code, 0) << requeue.output;
  EXPECT_TRUE(WaitFor([&] { return StateOf(id) == "published 0"; }, 60s)) << StateOf(id);
  StopRelay();
}

TEST_F(RelayAdmin, RetentionDeletesOldPublishedRowsOnlyAndStatusAndPurgeAgree) {
  // Rows of a partition without a leader stay pending, retried.
  kafka_.CreateTopic("stalled", 1);
  kafka_.SetPartitionLeader("stalled", 0, -1);
  const int port = FreePort();
  // published_age 1h, and some rows made older by hand: the ones younger
  // than the age must stay too. Batches of 2, so a pass takes several.
  WriteConfig(
      "[retention]\nenabled = true\npublished_age = \"1h\"\ninterval = \"200ms\"\n"
      "batch = 2\n[http]\nlisten = \"127.0.0.1:" +
      std::to_string(port) + "\"\n");
  std::vector<OutboxRow> rows;
  for (int i = 0; i < 6; ++i) rows.push_back(Row("o-" + std::to_string(i)));
  const std::vector<std::int64_t> published = store_.Append(rows);
  const std::vector<std::int64_t> parked =
      store_.Append({Row("p-0", "x", {}, "late-topic"), Row("p-1", "x", {}, "late-topic")});
  const std::vector<std::int64_t> pending =
      store_.Append({Row("s-0", "x", {}, "stalled"), Row("s-1", "x", {}, "stalled")});
  ASSERT_NO_FATAL_FAILURE(StartRelay());
  ASSERT_TRUE(WaitFor([&] { return CountSql("published") == 6 && CountSql("parked") == 2; }, 60s));

  // Every row created 2 h ago; the first three published 2 h ago, the first
  // parked row parked 2 h ago.
  sql_.Query("UPDATE outbox SET created_at = now() - interval '2 hours'");
  sql_.Query("UPDATE outbox SET published_at = now() - interval '2 hours' WHERE id <= " +
             std::to_string(published[2]));
  sql_.Query("UPDATE outbox SET parked_at = now() - interval '2 hours' WHERE id = " +
             std::to_string(parked[0]));
  EXPECT_TRUE(WaitFor([&] { return CountSql("published") == 3; }, 30s)) << CountSql("published");
  // Two more passes after the one that deleted them (read from /metrics):
  // the younger published rows, the pending and the parked ones stay.
  const auto batches = [&] {
    return ValueOf(HttpGet(port, "/metrics").body, "dispatch_relay_retention_batches_total")
        .value_or(-1);
  };
  const double seen = batches();
  ASSERT_GE(seen, 2) << HttpGet(port, "/metrics").body;
  EXPECT_TRUE(WaitFor([&] { return batches() >= seen + 2; }, 30s));
  EXPECT_EQ(sql_.Query("SELECT string_agg(id::text, ',' ORDER BY id) FROM outbox WHERE state = "
                       "'published'"),
            std::to_string(published[3]) + "," + std::to_string(published[4]) + "," +
                std::to_string(published[5]));
  EXPECT_EQ(CountSql("pending"), 2);
  EXPECT_EQ(CountSql("parked"), 2);
  EXPECT_EQ(ValueOf(HttpGet(port, "/metrics").body, "dispatch_relay_retention_rows_deleted_total"),
            3);

  // status: pending and parked exact. Published is an estimate from
  // pg_stat_user_tables.n_live_tup, which in one run of four still counted
  // the 3 deleted rows after 60 s (reported): only its presence is checked.
  const Finished status = Command("status");
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_EQ(ValueOf(status.output, "pending"), CountSql("pending")) << status.output;
  EXPECT_EQ(ValueOf(status.output, "parked"), CountSql("parked")) << status.output;
  EXPECT_EQ(ValueOf(status.output, "pending"), 2) << status.output;
  EXPECT_EQ(ValueOf(status.output, "parked"), 2) << status.output;
  EXPECT_TRUE(ValueOf(status.output, "published").has_value()) << status.output;
  EXPECT_NE(status.output.find(" (estimate)\n"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("oldest_pending_age 2h"), std::string::npos) << status.output;

  // purge: the row parked 2 h ago goes, the one parked minutes ago stays.
  const Finished purge = Command("purge", {"--older-than", "1h"});
  EXPECT_EQ(purge.exit_code, 0) << purge.output;
  EXPECT_NE(purge.output.find("purged 1 parked row(s)"), std::string::npos) << purge.output;
  EXPECT_EQ(StateOf(parked[0]), "");
  EXPECT_EQ(StateOf(parked[1]), "parked 1");
  EXPECT_EQ(CountSql("pending"), 2);
  EXPECT_EQ(CountSql("published"), 3);
  EXPECT_EQ(std::stoll(sql_.Query("SELECT count(*) FROM outbox WHERE id IN (" +
                                  std::to_string(pending[0]) + "," + std::to_string(pending[1]) +
                                  ") AND state = 'pending'")),
            2);
  StopRelay();
}

TEST_F(RelayAdmin, ARealPrometheusScrapesThePublishedCountFromTheBinary) {
  if (access(DISPATCH_PROMETHEUS, X_OK) != 0 || access(DISPATCH_PROMTOOL, X_OK) != 0) {
    GTEST_SKIP() << DISPATCH_PROMETHEUS << " or " << DISPATCH_PROMTOOL
                 << " is missing (Debian package prometheus)";
  }
  const int port = FreePort();
  WriteConfig("[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  constexpr int kRows = 25;
  std::vector<OutboxRow> rows;
  for (int i = 0; i < kRows; ++i) rows.push_back(Row("key-" + std::to_string(i % 4)));
  store_.Append(rows);
  ASSERT_NO_FATAL_FAILURE(StartRelay());
  ASSERT_TRUE(WaitFor([&] { return CountSql("published") == kRows; }, 60s));

  // The round counts its rows once their marks are committed, so the
  // counter can trail the table by a moment.
  HttpAnswer metrics;
  EXPECT_TRUE(WaitFor([&] {
    metrics = HttpGet(port, "/metrics");
    return ValueOf(metrics.body, "dispatch_relay_rows_published_total") == kRows;
  }, 60s)) << metrics.body;
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  const RunResult check = RunWithInput(DISPATCH_PROMTOOL, {"check", "metrics"}, metrics.body, 60s);
  EXPECT_EQ(check.exit_code, 0) << check.output;

  TempDir dir;
  PrometheusServer prometheus(DISPATCH_PROMETHEUS, dir.path(), port);
  // Up in a few seconds, then a scrape every second; 60 s catches a hang.
  std::string value;
  std::string last_answer;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (value != std::to_string(kRows) && std::chrono::steady_clock::now() < until) {
    ASSERT_FALSE(prometheus.Exited()) << "prometheus exited:\n" << prometheus.Log();
    std::this_thread::sleep_for(200ms);
    value = prometheus.QueryValue("dispatch_relay_rows_published_total", last_answer);
  }
  EXPECT_EQ(value, std::to_string(kRows)) << last_answer << "\n" << prometheus.Log();
  EXPECT_EQ(prometheus.QueryValue("up%7Bjob%3D%22dispatch-relay%22%7D", last_answer), "1")
      << last_answer;
  StopRelay();
}

}  // namespace
}  // namespace dispatch::relay::test
