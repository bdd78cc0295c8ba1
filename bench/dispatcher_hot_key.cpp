// B11 dispatcher_hot_key: how fast a dispatcher drains the rows of one key,
// beside the same number of rows spread over many keys, with runs of a key
// in one PublishBatch (ours) and with waves of one row per key (the
// baseline, the dispatcher before runs), in the same run. Issue 20's target:
// on the embedded cluster with a round trip of a few milliseconds, one key
// drains at least half as fast as many keys.
//
//   dispatcher_hot_key [--rows N] [--keys K] [--rtt MS] [--repeat R] [--quick]
//
// The embedded cluster runs in a child process (bench::Broker) and answers
// every request MS milliseconds late (default 5). Per repeat and case, a
// fresh SQLite file gets N rows (default 2,000) of about 200 bytes, either
// all of one key or round-robin over K keys (default 400), in one
// transaction; then a dispatch::Dispatcher with default options and a
// KafkaPublisher (acks All, its defaults) runs RunOnce until no row is
// pending, timed from the first round to the last. The baseline's publisher
// is the same KafkaPublisher behind a wrapper whose OrdersKeysInBatch() is
// false, so the dispatcher sends waves of at most one row per key, as it did
// before runs. Each case is checked: every row published, and the topic's
// first copies of each key in id order (read back with the embedded
// cluster's reader). Medians of R repeats (default 3; --quick 1 and N/4).
// The last line is one JSON object.
#include <librdkafka/rdkafka.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "dispatch/dispatcher.h"
#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/stores/sqlite_store.h"
#include "dispatch/testing/embedded_kafka.h"
#include "json_line.h"

namespace {

using namespace std::chrono_literals;
using bench::Clock;

struct Options {
  int rows = 2000;
  int keys = 400;
  int rtt_ms = 5;
  int repeat = 3;
};

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* name) {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(name) + " needs a value");
      const int v = std::atoi(argv[++i]);
      if (v <= 0) throw std::invalid_argument(std::string(name) + " must be a positive number");
      return v;
    };
    if (arg == "--rows") {
      o.rows = value("--rows");
    } else if (arg == "--keys") {
      o.keys = value("--keys");
    } else if (arg == "--rtt") {
      o.rtt_ms = value("--rtt");
    } else if (arg == "--repeat") {
      o.repeat = value("--repeat");
    } else if (arg == "--quick") {
      o.repeat = 1;
      o.rows = std::max(1, o.rows / 4);
    } else {
      throw std::invalid_argument("unknown argument " + arg +
                                  " (allowed: --rows, --keys, --rtt, --repeat, --quick)");
    }
  }
  return o;
}

// The dispatcher's publisher with runs turned off: the baseline.
class OneRowPerKey : public dispatch::Publisher {
 public:
  explicit OneRowPerKey(std::unique_ptr<dispatch::Publisher> inner) : inner_(std::move(inner)) {}
  dispatch::Result Publish(const dispatch::Context& ctx, const dispatch::Message& m) override {
    return inner_->Publish(ctx, m);
  }
  std::vector<dispatch::Result> PublishBatch(const dispatch::Context& ctx,
                                             std::span<const dispatch::Message> batch) override {
    return inner_->PublishBatch(ctx, batch);
  }
  bool OrdersKeysInBatch() const override { return false; }

 private:
  std::unique_ptr<dispatch::Publisher> inner_;
};

struct Drain {
  double rows_per_second = 0;
  std::uint64_t waves = 0;
  std::uint64_t rounds = 0;
};

void Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string text = error ? error : "?";
    sqlite3_free(error);
    throw std::runtime_error("sqlite: " + text + " in: " + sql.substr(0, 80));
  }
}

// N rows into a fresh outbox at `path` (the store's own schema), keys
// round-robin over `keys`.
void Seed(const std::string& path, const std::string& topic, int rows, int keys) {
  { dispatch::SqliteStore schema(path); }  // creates the table
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> closer(db, sqlite3_close);
  Exec(db, "BEGIN");
  const std::string payload(200, 'x');
  for (int i = 0; i < rows; ++i) {
    Exec(db, "INSERT INTO outbox (key, topic, payload, created_at) VALUES ('key-" +
                 std::to_string(i % keys) + "', '" + topic + "', '" + payload +
                 "', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))");
  }
  Exec(db, "COMMIT");
}

// Every row's first copy per key, in id order: the rows' ids are 1..N and
// key-(id-1 % keys) holds them.
void CheckOrder(const std::string& bootstrap, const std::string& topic, int rows) {
  const auto records = dispatch::testing::ReadWholeTopic(bootstrap, topic, 60s);
  std::map<std::string, std::int64_t> last;
  std::set<std::string> seen;
  for (const auto& r : records) {
    for (const auto& h : r.headers) {
      if (h.key != "outbox-id" || !seen.insert(h.value).second) continue;
      const std::int64_t id = std::stoll(h.value);
      std::int64_t& previous = last[r.key.value_or("")];
      if (id < previous) {
        throw std::runtime_error("key " + r.key.value_or("") + ": row " + h.value +
                                 " landed after row " + std::to_string(previous));
      }
      previous = id;
    }
  }
  if (static_cast<int>(seen.size()) != rows) {
    throw std::runtime_error("topic " + topic + " holds " + std::to_string(seen.size()) +
                             " distinct rows, not " + std::to_string(rows));
  }
}

Drain RunCase(bench::Broker& broker, int rows, int keys, bool runs, int n) {
  const std::string topic = "hot-" + std::to_string(::getpid()) + "-" + std::to_string(n);
  broker.CreateTopic({topic, 1});
  const std::string path = "/tmp/dispatch-hot-key-" + std::to_string(::getpid()) + ".db";
  std::remove(path.c_str());
  Seed(path, topic, rows, keys);
  dispatch::SqliteStore store(path);
  const dispatch::kafka::KafkaConfig config = bench::OurConfig(broker.bootstrap());
  dispatch::Dispatcher dispatcher(store, [&]() -> std::unique_ptr<dispatch::Publisher> {
    auto kafka = std::make_unique<dispatch::kafka::KafkaPublisher>(config);
    if (runs) return kafka;
    return std::make_unique<OneRowPerKey>(std::move(kafka));
  });
  const auto start = Clock::now();
  const auto bound = start + 300s;
  while (dispatcher.Metrics().published < static_cast<std::uint64_t>(rows)) {
    if (Clock::now() > bound) throw std::runtime_error("drain did not end within 300 s");
    (void)dispatcher.RunOnce();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto metrics = dispatcher.Metrics();
  CheckOrder(broker.bootstrap(), topic, rows);
  std::remove(path.c_str());
  return {rows / seconds, metrics.waves, metrics.rounds};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = Parse(argc, argv);
    bench::Broker broker("", std::vector<bench::TopicSpec>{});
    broker.SetRtt(std::chrono::milliseconds(o.rtt_ms));
    std::printf(
        "B11 dispatcher_hot_key: %d rows, one key vs %d keys, embedded cluster, rtt %d ms, "
        "SQLite, librdkafka %s, %d repeat(s)\n",
        o.rows, o.keys, o.rtt_ms, rd_kafka_version_str(), o.repeat);
    std::map<std::string, std::vector<double>> rates;
    int n = 0;
    for (int r = 0; r < o.repeat; ++r) {
      for (const bool runs : {true, false}) {
        for (const int keys : {1, o.keys}) {
          const Drain d = RunCase(broker, o.rows, keys, runs, n++);
          const std::string name =
              std::string(runs ? "runs" : "waves") + (keys == 1 ? "_one_key" : "_many_keys");
          rates[name].push_back(d.rows_per_second);
          std::printf("  repeat %d  %-16s %8.0f rows/s  (%llu waves, %llu rounds)\n", r + 1,
                      name.c_str(), d.rows_per_second, static_cast<unsigned long long>(d.waves),
                      static_cast<unsigned long long>(d.rounds));
        }
      }
    }
    const double runs_one = Median(rates["runs_one_key"]);
    const double runs_many = Median(rates["runs_many_keys"]);
    const double waves_one = Median(rates["waves_one_key"]);
    const double waves_many = Median(rates["waves_many_keys"]);
    std::printf("\nmedians, rows/s        one key    %d keys   one/many\n", o.keys);
    std::printf("  ours (runs)        %9.0f  %9.0f   %8.3f\n", runs_one, runs_many,
                runs_one / runs_many);
    std::printf("  baseline (waves)   %9.0f  %9.0f   %8.3f\n", waves_one, waves_many,
                waves_one / waves_many);
    std::printf("  ours / baseline    %9.2f  %9.2f\n", runs_one / waves_one,
                runs_many / waves_many);
    std::printf("target: one key at least half the many-key rate (ours): %s\n",
                runs_one >= runs_many / 2 ? "met" : "missed");
    bench::Json line;
    line.Str("scenario", "B11").Int("rows", o.rows).Int("keys", o.keys).Int("rtt_ms", o.rtt_ms);
    line.Int("repeat", o.repeat);
    line.Num("runs_one_key_rows_per_s", runs_one, 0).Num("runs_many_keys_rows_per_s", runs_many, 0);
    line.Num("waves_one_key_rows_per_s", waves_one, 0);
    line.Num("waves_many_keys_rows_per_s", waves_many, 0);
    line.Num("one_over_many_ratio", runs_one / runs_many);
    line.Num("hot_key_speedup_ratio", runs_one / waves_one);
    line.Str("broker", broker.kind()).Str("librdkafka", rd_kafka_version_str()).Print();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dispatcher_hot_key: %s\n", e.what());
    return 1;
  }
}
