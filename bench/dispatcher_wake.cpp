// B9 dispatcher_wake: how late a quiet dispatcher publishes a row, on each
// store, waking on new rows (ours) beside polling (the baseline), in the
// same run. Issue 20's target: after 2 s of quiet, a row is published within
// 50 ms (p99), on both stores.
//
//   dispatcher_wake [--brokers host:port,...] [--postgres CONNINFO]
//                   [--rounds R] [--quiet SECONDS] [--quick]
//
// Per store and side, a dispatch::Dispatcher with default options and a
// KafkaPublisher runs Run on a thread over a fresh database (a SQLite file;
// a PostgreSQL database created for it). After one warm-up row (the
// producer's start and the topic's metadata), R rounds (default 20, --quick
// 5): Q seconds of quiet (default 2), then one row inserted and committed
// by another connection, as a service does (plain SQL: BEGIN, INSERT,
// COMMIT). A round's latency runs from just before the COMMIT to the moment
// the dispatcher's Metrics().published counts the row: a copy of a struct
// under a mutex, read every 100 us (its own cost is printed), that the
// dispatcher updates right after the round that marked the row (Finish, then
// one OldestPending query). At the end of each side the inserting connection
// checks that every row is 'published'.
//
// Ours: SqliteStore (PRAGMA data_version every 5 ms) and PostgresStore
// (LISTEN, the insert trigger's NOTIFY). Polling: the same stores with
// waking off, poll_min 10 ms doubling to poll_max 1 s: a SqliteStore behind
// a delegating store whose WakesOnNewRows() is false, and PostgresStore
// with PostgresStoreOptions::listen = false (the trigger still notifies, so
// an insert costs the same on both sides). Without --postgres, the benchmark
// starts a throwaway server with scripts/postgres_cluster.py and stops it.
// The PostgreSQL part is built when libpq was found. The last line is one
// JSON object.
#include <librdkafka/rdkafka.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "dispatch/dispatcher.h"
#include "dispatch/stores/sqlite_store.h"
#include "json_line.h"
#ifdef DISPATCH_WAKE_POSTGRES
#include "dispatch/stores/postgres_store.h"
#include "postgres_sql.h"
#endif

namespace {

using namespace std::chrono_literals;
using bench::Clock;

const char* const kTopic = "bench-wake";
constexpr double kTargetP99Ms = 50;
constexpr auto kProbeEvery = 100us;

struct Options {
  std::string brokers;
  std::string postgres;
  int rounds = 20;
  double quiet_s = 2;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "dispatcher_wake: %s\nusage: dispatcher_wake [--brokers host:port,...] "
               "[--postgres CONNINFO] [--rounds R] [--quiet SECONDS] [--quick]\n",
               why.c_str());
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      o.rounds = 5;
      continue;
    }
    if (i + 1 >= argc) Usage(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--brokers") {
      o.brokers = value;
    } else if (arg == "--postgres") {
      o.postgres = value;
    } else if (arg == "--rounds") {
      o.rounds = std::atoi(value.c_str());
    } else if (arg == "--quiet") {
      o.quiet_s = std::atof(value.c_str());
    } else {
      Usage("unknown option " + arg);
    }
  }
  if (o.rounds < 1 || o.quiet_s < 0) Usage("--rounds at least 1, --quiet not negative");
  return o;
}

// The baseline's SQLite store: SqliteStore with waking off, so that Run
// polls as it did before WaitForRows (and as any store that does not wake).
class PollingStore final : public dispatch::OutboxStore {
 public:
  explicit PollingStore(dispatch::OutboxStore& inner) : inner_(inner) {}
  std::vector<dispatch::OutboxRow> Claim(std::size_t limit,
                                         std::chrono::system_clock::time_point now) override {
    return inner_.Claim(limit, now);
  }
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<dispatch::RowFailure>& failures) override {
    inner_.Finish(published, failures);
  }
  void Release() noexcept override { inner_.Release(); }
  std::optional<std::chrono::system_clock::time_point> OldestPending() override {
    return inner_.OldestPending();
  }

 private:
  dispatch::OutboxStore& inner_;
};

// The service's side: a connection of its own that inserts one row per call
// in a transaction (`begin`, `insert`, COMMIT) and reads back how many rows
// are published.
class Inserter {
 public:
  Inserter(const char* begin, const char* insert) : begin_(begin), insert_(insert) {}
  virtual ~Inserter() = default;
  // Inserts and commits one row; returns the time just before the COMMIT.
  Clock::time_point Insert() {
    Exec(begin_);
    Exec(insert_);
    const auto before_commit = Clock::now();
    Exec("COMMIT");
    return before_commit;
  }
  long Published() {
    return std::atol(Exec("SELECT count(*) FROM outbox WHERE state = 'published'").c_str());
  }

 protected:
  // Runs one statement; returns its first value ("" when none). Throws.
  virtual std::string Exec(const char* sql) = 0;

 private:
  const char* begin_;
  const char* insert_;
};

class SqliteInserter final : public Inserter {
 public:
  explicit SqliteInserter(const std::string& path)
      : Inserter("BEGIN IMMEDIATE",
                 "INSERT INTO outbox (key, topic, payload, created_at) VALUES ('key', "
                 "'bench-wake', zeroblob(100), "
                 "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))") {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open " + path);
    sqlite3_busy_timeout(db_, 5000);  // the dispatcher's Finish may hold the write lock
  }
  ~SqliteInserter() override { sqlite3_close(db_); }

 private:
  std::string Exec(const char* sql) override {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    std::string value;
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      rc = SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
    return value;
  }
  sqlite3* db_ = nullptr;
};

#ifdef DISPATCH_WAKE_POSTGRES
class PostgresInserter final : public Inserter {
 public:
  explicit PostgresInserter(const std::string& conninfo)
      : Inserter("BEGIN",
                 "INSERT INTO outbox (key, topic, payload) VALUES ('key', 'bench-wake', "
                 "convert_to(repeat('.', 100), 'UTF8'))"),
        conn_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn_));
  }
  ~PostgresInserter() override { PQfinish(conn_); }

 private:
  std::string Exec(const char* sql) override { return bench::Exec(conn_, sql); }
  PGconn* conn_;
};
#endif

struct Latencies {
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  bool verified = false;  // every row 'published', read through the inserting connection
};

// Waits until the dispatcher has published `count` rows; false after 30 s.
bool WaitPublished(const dispatch::Dispatcher& dispatcher, std::uint64_t count) {
  const auto bound = Clock::now() + 30s;
  while (dispatcher.Metrics().published < count) {
    if (Clock::now() > bound) return false;
    std::this_thread::sleep_for(kProbeEvery);
  }
  return true;
}

// One side: a dispatcher over `store` running Run on a thread, a warm-up
// row, then the rounds.
Latencies Measure(const Options& o, const std::string& brokers, dispatch::OutboxStore& store,
                  Inserter& inserter) {
  dispatch::Dispatcher dispatcher(store, [&brokers] {
    return std::make_unique<dispatch::kafka::KafkaPublisher>(bench::OurConfig(brokers));
  });
  std::jthread runner([&dispatcher](std::stop_token stop) { dispatcher.Run(stop); });
  inserter.Insert();
  if (!WaitPublished(dispatcher, 1)) throw std::runtime_error("the warm-up row was not published");
  std::vector<double> ms;
  for (int r = 0; r < o.rounds; ++r) {
    std::this_thread::sleep_for(std::chrono::duration<double>(o.quiet_s));
    const auto before_commit = inserter.Insert();
    if (!WaitPublished(dispatcher, static_cast<std::uint64_t>(r) + 2)) {
      throw std::runtime_error("round " + std::to_string(r + 1) + ": not published within 30 s");
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - before_commit).count());
  }
  runner.request_stop();
  runner.join();
  return {bench::Percentile(ms, 0.5), bench::Percentile(ms, 0.99), bench::Percentile(ms, 1.0),
          inserter.Published() == o.rounds + 1};
}

// Prints one store's two sides and adds them to `line` under `name`_.
void Report(const std::string& name, const Latencies& ours, const Latencies& polling,
            bench::Json& line) {
  const bool holds = ours.p99_ms <= kTargetP99Ms;
  std::printf(
      "%-10s waking:  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (verified: %s)\n"
      "%-10s polling: p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (verified: %s)\n"
      "%-10s ratio waking/polling: p50 %.3f, p99 %.3f; target p99 <= %.0f ms: %s\n",
      name.c_str(), ours.p50_ms, ours.p99_ms, ours.max_ms, ours.verified ? "yes" : "no",
      name.c_str(), polling.p50_ms, polling.p99_ms, polling.max_ms, polling.verified ? "yes" : "no",
      name.c_str(), ours.p50_ms / polling.p50_ms, ours.p99_ms / polling.p99_ms, kTargetP99Ms,
      holds ? "holds" : "MISSED");
  std::fflush(stdout);
  for (const auto& [side, l] : {std::pair{"wake", ours}, std::pair{"poll", polling}}) {
    const std::string key = name + "_" + side;
    line.Num(key + "_p50_ms", l.p50_ms, 2).Num(key + "_p99_ms", l.p99_ms, 2);
    line.Num(key + "_max_ms", l.max_ms, 2).Bool(key + "_verified", l.verified);
  }
  line.Num(name + "_p50_ratio", ours.p50_ms / polling.p50_ms);
  line.Num(name + "_p99_ratio", ours.p99_ms / polling.p99_ms);
  line.Bool(name + "_target_holds", holds);
}

// What one read of Metrics() costs the probe, in microseconds.
double ProbeCostUs() {
  dispatch::SqliteStore store(":memory:");
  const dispatch::Dispatcher dispatcher(store,
                                        [] { return std::unique_ptr<dispatch::Publisher>(); });
  constexpr int kReads = 100'000;
  [[maybe_unused]] volatile std::uint64_t sink = 0;  // keeps the reads
  const auto t0 = Clock::now();
  for (int i = 0; i < kReads; ++i) sink = dispatcher.Metrics().published;
  return bench::SecondsSince(t0) * 1e6 / kReads;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  try {
    bench::Broker broker(o.brokers, kTopic, 1);  // before any thread: it forks
    std::printf(
        "B9 dispatcher_wake: %d rounds of %.1f s quiet then one row, %s broker, librdkafka %s\n",
        o.rounds, o.quiet_s, broker.kind(), rd_kafka_version_str());
    const double probe_us = ProbeCostUs();
    std::printf("probe: Metrics() every %lld us, %.3f us a read\n",
                static_cast<long long>(kProbeEvery.count()), probe_us);
    bench::Json line;
    line.Str("scenario", "B9").Int("rounds", o.rounds).Num("quiet_s", o.quiet_s, 1);
    line.Num("probe_us", probe_us);

    char dir[] = "/tmp/dispatch-bench-wake-XXXXXX";
    if (mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    Latencies sqlite[2];
    for (int side = 0; side < 2; ++side) {
      const std::string path = std::string(dir) + (side == 0 ? "/wake.db" : "/poll.db");
      dispatch::SqliteStore store(path);
      PollingStore polling(store);
      SqliteInserter inserter(path);
      sqlite[side] =
          Measure(o, broker.bootstrap(),
                  side == 0 ? static_cast<dispatch::OutboxStore&>(store) : polling, inserter);
    }
    int status = 0;
    bench::RunToEnd({"/bin/rm", "-rf", dir}, status);
    Report("sqlite", sqlite[0], sqlite[1], line);

#ifdef DISPATCH_WAKE_POSTGRES
    const bench::PostgresServer server(o.postgres, DISPATCH_PYTHON, DISPATCH_POSTGRES_CLUSTER);
    Latencies postgres[2];
    for (int side = 0; side < 2; ++side) {
      const std::string database = std::string("dispatch_bench_wake_") +
                                   (side == 0 ? "listen" : "poll") + "_" + std::to_string(getpid());
      bench::Sql(server.conninfo(), "CREATE DATABASE " + database);
      const std::string conninfo = server.conninfo() + " dbname=" + database;
      {
        dispatch::PostgresStoreOptions options;
        options.listen = side == 0;
        dispatch::PostgresStore store(conninfo, options);
        PostgresInserter inserter(conninfo);
        postgres[side] = Measure(o, broker.bootstrap(), store, inserter);
      }
      bench::Sql(server.conninfo(), "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
    }
    Report("postgres", postgres[0], postgres[1], line);
#else
    std::printf("postgres: not built (libpq not found)\n");
#endif
    line.Str("broker", broker.kind()).Str("librdkafka", rd_kafka_version_str()).Print();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dispatcher_wake: %s\n", e.what());
    return 1;
  }
}
