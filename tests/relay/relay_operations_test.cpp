// dispatch-relay against a PostgreSQL server run as in production
// (fsync and synchronous_commit on, TLS with the suite's test CA): the
// fixture postgres_durable_server (tests/relay/operations.cmake) starts it
// with scripts/postgres_cluster.py --durable --tls, and these tests halt it
// as a crash would (pg_ctl stop -m immediate) and start it again.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "dispatch/testing/embedded_kafka.h"
#include "postgres/child_process.h"
#include "postgres/postgres_test_support.h"
#include "relay/http_test_support.h"
#include "relay_process_support.h"

namespace dispatch::relay::test {
namespace {

using dispatch::test::ChildProcess;
using dispatch::test::SqlSession;
using dispatch::test::WaitFor;
using namespace std::chrono_literals;

std::string ClusterDir() {
  const char* dir = std::getenv("DISPATCH_POSTGRES_DURABLE_DIR");
  if (dir == nullptr) throw std::runtime_error("DISPATCH_POSTGRES_DURABLE_DIR is not set");
  return dir;
}

std::string DurableConninfo() {
  std::ifstream in(ClusterDir() + "/conninfo");
  std::string conninfo;
  if (!std::getline(in, conninfo)) throw std::runtime_error("no conninfo of the durable server");
  return conninfo;
}

// scripts/postgres_cluster.py halt|resume on the fixture's server.
void Cluster(const std::string& command) {
  const std::string cmd = std::string("python3 ") + DISPATCH_POSTGRES_SCRIPT + " " + command +
                          " --dir " + ClusterDir() + " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// A database of its own on the durable server, dropped at the end.
class DurableDatabase {
 public:
  DurableDatabase() : name_("relay_ops_" + std::to_string(getpid()) + "_" + std::to_string(next_++)) {
    dispatch::test::Query(DurableConninfo(), "CREATE DATABASE " + name_);
  }
  ~DurableDatabase() {
    try {
      dispatch::test::Query(DurableConninfo(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {  // the server is gone; its data goes with it at stop
    }
  }
  DurableDatabase(const DurableDatabase&) = delete;
  DurableDatabase& operator=(const DurableDatabase&) = delete;
  // The superuser's conninfo on this database; `extra` is appended.
  std::string Conninfo(const std::string& extra = "") const {
    return DurableConninfo() + " dbname=" + name_ + " " + extra;
  }

 private:
  static inline int next_ = 0;
  std::string name_;
};

// The relay's config: the store's conninfo without its password (which goes
// through DISPATCH_RELAY_STORE_PASSWORD), the HTTP listener on `port`.
std::string RelayConfig(const std::string& conninfo, int port) {
  return "[store]\nconninfo = \"" + conninfo +
         "\"\n[kafka]\nbrokers = [\"127.0.0.1:1\"]\nclose_timeout = \"2s\"\n"
         "[dispatcher]\nbatch_size = 50\npublish_timeout = \"5s\"\npoll_max = \"200ms\"\n"
         "[http]\nlisten = \"127.0.0.1:" +
         std::to_string(port) + "\"\nmax_lag = \"1m\"\n";
}

// The ids of the records on `topic` in their order, per key, first copies only.
std::map<std::string, std::vector<std::int64_t>> FirstCopiesByKey(
    const std::vector<dispatch::testing::Record>& records) {
  std::map<std::string, std::vector<std::int64_t>> by_key;
  std::set<std::int64_t> seen;
  for (const dispatch::testing::Record& r : records) {
    for (const Header& h : r.headers) {
      if (h.key != "outbox-id") continue;
      const std::int64_t id = std::stoll(h.value);
      if (seen.insert(id).second) by_key[r.key.value_or("")].push_back(id);
    }
  }
  return by_key;
}

// The database crashes (an immediate shutdown) while a service commits rows
// one transaction each and the relay publishes them: /readyz turns 503 while
// it is down and 200 once it is back, every row whose commit was
// acknowledged lands in Kafka, and each key's first copies keep id order.
TEST(RelayOperations, ADatabaseCrashLosesNoCommittedRowAndReadyzFollowsIt) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 3);
  DurableDatabase db;
  { PostgresStore migrate(db.Conninfo()); }  // the schema, before the service writes
  const auto [conninfo, password] = SplitPassword(db.Conninfo("application_name=dispatch-relay"));
  const int port = FreePort();
  const std::string config = WriteTempFile("crash.toml", RelayConfig(conninfo, port));
  ChildProcess relay(DISPATCH_RELAY_BINARY, {"--config", config},
                     {"DISPATCH_RELAY_KAFKA_BROKERS=" + kafka.Bootstrap(),
                      "DISPATCH_RELAY_STORE_PASSWORD=" + password});
  const std::string running = relay.ReadLine(30s);
  ASSERT_NE(running.find("dispatch-relay: running"), std::string::npos) << running;
  ASSERT_TRUE(WaitFor([&] { return HttpGet(port, "/readyz").status == 200; }, 30s))
      << HttpGet(port, "/readyz").body;

  // The service: one row per transaction, 8 keys; a commit that returned
  // OK is acknowledged, whatever happens to the server afterwards.
  std::mutex mu;
  std::vector<std::int64_t> acknowledged;
  std::atomic<bool> writing{true};
  std::thread service([&] {
    for (int i = 0; writing.load(); ++i) {
      try {
        SqlSession s(db.Conninfo("connect_timeout=2"));
        for (; writing.load(); ++i) {
          const std::string id = s.Query(
              "INSERT INTO outbox (key, topic, payload) VALUES ('key-" + std::to_string(i % 8) +
              "', 'orders', 'event') RETURNING id");
          std::lock_guard lock(mu);
          acknowledged.push_back(std::stoll(id));
        }
      } catch (const std::exception&) {  // the server is down: connect again
        std::this_thread::sleep_for(50ms);
      }
    }
  });
  const auto acknowledged_count = [&] {
    std::lock_guard lock(mu);
    return acknowledged.size();
  };
  EXPECT_TRUE(WaitFor([&] { return acknowledged_count() >= 200; }, 60s));

  Cluster("halt");
  EXPECT_TRUE(WaitFor([&] { return HttpGet(port, "/readyz").status == 503; }, 30s))
      << "/readyz stayed ready with the database down";
  const HttpAnswer unready = HttpGet(port, "/readyz");
  EXPECT_EQ(unready.body.find(password), std::string::npos);
  Cluster("resume");
  EXPECT_TRUE(WaitFor([&] { return HttpGet(port, "/readyz").status == 200; }, 60s))
      << "/readyz did not come back: " << HttpGet(port, "/readyz").body;
  const std::size_t before_more = acknowledged_count();
  EXPECT_TRUE(WaitFor([&] { return acknowledged_count() >= before_more + 200; }, 60s));
  writing = false;
  service.join();

  // Everything acknowledged is published (and nothing is left pending).
  SqlSession sql(db.Conninfo());
  EXPECT_TRUE(WaitFor(
      [&] { return sql.Query("SELECT count(*) FROM outbox WHERE state = 'pending'") == "0"; },
      60s));
  relay.Signal(SIGTERM);
  const int status = relay.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  const auto by_key = FirstCopiesByKey(kafka.ReadWholeTopic("orders", 30s));
  std::set<std::int64_t> landed;
  for (const auto& [key, ids] : by_key) {
    landed.insert(ids.begin(), ids.end());
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "first copies of " << key << " out of order";
  }
  std::size_t missing = 0;
  for (std::int64_t id : acknowledged) missing += landed.count(id) == 0 ? 1 : 0;
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged rows";
  EXPECT_GE(acknowledged.size(), 400u);
}

// sslmode=verify-full with the suite's CA: the relay's session is encrypted
// and publishes; no endpoint shows the password.
TEST(RelayOperations, ReachesPostgresOverVerifiedTls) {
  dispatch::testing::EmbeddedKafkaCluster kafka;
  kafka.CreateTopic("orders", 3);
  DurableDatabase db;
  const std::string tls = "sslmode=verify-full sslrootcert=" + ClusterDir() + "/tls/ca.pem";
  const auto [conninfo, password] =
      SplitPassword(db.Conninfo("host=localhost application_name=dispatch-relay-tls " + tls));
  const int port = FreePort();
  const std::string config = WriteTempFile("tls.toml", RelayConfig(conninfo, port));
  ChildProcess relay(DISPATCH_RELAY_BINARY, {"--config", config},
                     {"DISPATCH_RELAY_KAFKA_BROKERS=" + kafka.Bootstrap(),
                      "DISPATCH_RELAY_STORE_PASSWORD=" + password});
  const std::string running = relay.ReadLine(30s);
  ASSERT_NE(running.find("dispatch-relay: running"), std::string::npos) << running;

  SqlSession sql(db.Conninfo());
  sql.Query("INSERT INTO outbox (key, topic, payload) SELECT 'k' || (g % 4), 'orders', 'e' "
            "FROM generate_series(1, 50) g");
  EXPECT_TRUE(WaitFor(
      [&] { return sql.Query("SELECT count(*) FROM outbox WHERE state = 'published'") == "50"; },
      60s));
  EXPECT_EQ(sql.Query("SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a "
                      "USING (pid) WHERE a.application_name = 'dispatch-relay-tls'"),
            "true");
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    const HttpAnswer answer = HttpGet(port, path);
    EXPECT_EQ(answer.status, 200) << path << ": " << answer.error;
    EXPECT_EQ(answer.body.find(password), std::string::npos) << path << " shows the password";
  }
  relay.Signal(SIGTERM);
  const int status = relay.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// The server's certificate names localhost and 127.0.0.1; a relay told to
// verify it for another name refuses to start (exit 1) and says why.
TEST(RelayOperations, RefusesAServerWhoseCertificateDoesNotMatch) {
  DurableDatabase db;
  const std::string tls = "sslmode=verify-full sslrootcert=" + ClusterDir() + "/tls/ca.pem";
  const auto [conninfo, password] =
      SplitPassword(db.Conninfo("host=db.invalid hostaddr=127.0.0.1 " + tls));
  const std::string config = WriteTempFile("tls_mismatch.toml", RelayConfig(conninfo, FreePort()));
  const Finished r = RunRelay({"--config", config}, {"DISPATCH_RELAY_STORE_PASSWORD=" + password},
                              60s);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("does not match host name"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(password), std::string::npos) << "the output shows the password";

  // And one that trusts another CA refuses it too.
  const auto [other_ca, unused] = SplitPassword(db.Conninfo(
      "host=localhost sslmode=verify-full sslrootcert=" + ClusterDir() + "/tls/wrong-ca.pem"));
  const std::string config2 = WriteTempFile("tls_wrong_ca.toml", RelayConfig(other_ca, FreePort()));
  const Finished r2 = RunRelay({"--config", config2},
                               {"DISPATCH_RELAY_STORE_PASSWORD=" + password}, 60s);
  EXPECT_EQ(r2.exit_code, 1) << r2.output;
  EXPECT_NE(r2.output.find("certificate verify failed"), std::string::npos) << r2.output;
}

}  // namespace
}  // namespace dispatch::relay::test
