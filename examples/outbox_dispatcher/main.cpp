// outbox_demo: a transactional outbox in SQLite (or PostgreSQL), dispatched
// to Kafka by dispatch::Dispatcher over dispatch::SqliteStore (or
// dispatch::PostgresStore) and a KafkaPublisher.
//
//   outbox_demo                         seed 5000 events, publish them to an
//                                       embedded Kafka cluster, verify
//   outbox_demo --brokers host:9092     the same on a real cluster (topics
//                                       "orders" and "payments" are created
//                                       when missing)
//   outbox_demo --db FILE --events N    keep the outbox in FILE, seed N events
//   outbox_demo --json                  end with a JSON summary line
//   outbox_demo --postgres CONNINFO     the outbox in PostgreSQL instead (when
//                                       built with libpq)
//
// The check at the end reads back what the run wrote to Kafka (from where the
// topics ended when it began) and finds there each row that the run marked
// published, once, in id order per key. Run it twice on one cluster, or on
// an outbox that an earlier run left half done: each run checks its own.
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dispatch/dispatcher.h"
#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/stores/sqlite_store.h"
#if DISPATCH_DEMO_POSTGRES
#include "dispatch/stores/postgres_store.h"
#endif
#include "dispatch/testing/embedded_kafka.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  std::string brokers;
  std::string db;
  std::string postgres;
  long events = 5000;
  bool json = false;
};

constexpr const char* kUsage =
    "usage: outbox_demo [--brokers host:port[,host:port...]] [--db FILE | --postgres CONNINFO] "
    "[--events N] [--json]";

// Parses the command line; on a problem prints one line and exits 2.
Options Parse(int argc, char** argv) {
  Options o;
  const auto fail = [](const std::string& why) {
    std::fprintf(stderr, "outbox_demo: %s\n%s\n", why.c_str(), kUsage);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--brokers") {
      o.brokers = value();
      if (o.brokers.empty()) fail("--brokers: empty; give host:port[,host:port...]");
    } else if (a == "--db") {
      o.db = value();
      if (o.db.empty()) fail("--db: empty file name");
    } else if (a == "--postgres") {
#if DISPATCH_DEMO_POSTGRES
      o.postgres = value();
      if (o.postgres.empty()) fail("--postgres: empty connection string");
#else
      fail("--postgres: this outbox_demo was built without libpq");
#endif
    } else if (a == "--events") {
      const std::string v = value();
      char* end = nullptr;
      o.events = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || o.events < 0 || o.events > 10'000'000) {
        fail("--events: \"" + v + "\" is not a whole number from 0 to 10000000");
      }
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "-h" || a == "--help") {
      std::printf("%s\n", kUsage);
      std::exit(0);
    } else {
      fail("unknown argument \"" + a + "\"");
    }
  }
  if (!o.db.empty() && !o.postgres.empty()) fail("--db and --postgres: give one of them");
  return o;
}

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  for (std::size_t start = 0, comma; start <= list.size(); start = comma + 1) {
    comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    out.push_back(list.substr(start, comma - start));
  }
  return out;
}

// Sample events: orders and payments of many aggregates, interleaved, with
// one oversized (poison) payment row per 1000 events to show parking.
std::vector<dispatch::OutboxRow> SampleEvents(long n) {
  static const char* kOrderEvents[] = {"OrderCreated", "OrderPaid", "OrderShipped",
                                       "OrderDelivered"};
  std::vector<dispatch::OutboxRow> rows;
  const long aggregates = std::max(1L, n / 8);
  for (long i = 0; i < n; ++i) {
    dispatch::OutboxRow r;
    const long agg = (i * 7919) % aggregates;
    const bool payment = i % 5 == 4;
    r.key = (payment ? "payment-" : "order-") + std::to_string(agg);
    r.topic = payment ? "payments" : "orders";
    const char* type = payment ? "PaymentCaptured" : kOrderEvents[i % 4];
    r.payload = "{\"aggregate\":\"" + r.key + "\",\"event\":\"" + type +
                "\",\"seq\":" + std::to_string(i) + "}";
    if (i % 1000 == 999) r.payload.append(2'000'000, ' ');  // larger than message.max.bytes
    r.headers = {{"event-type", type}, {"trace-id", std::to_string(0x9e3779b9L * (i + 1))}};
    rows.push_back(std::move(r));
  }
  return rows;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

const std::vector<std::string> kTopics = {"orders", "payments"};

// Where the demo's topics end before it publishes: Verify reads from there,
// so records of earlier runs (whose outbox ids may repeat) are not read.
using TopicOffsets = std::map<std::string, std::vector<std::int64_t>>;

TopicOffsets EndOffsets(const std::string& bootstrap) {
  TopicOffsets ends;
  for (const auto& topic : kTopics) {
    ends[topic] = dispatch::testing::EndOffsets(bootstrap, topic, 30s);
  }
  return ends;
}

template <typename Store>
std::set<std::int64_t> PublishedIds(Store& store) {
  const std::vector<std::int64_t> ids = store.Ids(dispatch::RowState::kPublished);
  return {ids.begin(), ids.end()};
}

// Reads both topics back from `since` and checks that every row that this
// run published (published now, not in `published_before`) is there once,
// and in id order per key. Returns the problems found (empty: verified).
template <typename Store>
std::vector<std::string> Verify(Store& store, const std::string& bootstrap,
                                const std::set<std::int64_t>& published_before,
                                const TopicOffsets& since, std::size_t* checked) {
  std::vector<std::string> problems;
  std::set<std::int64_t> published;
  for (std::int64_t id : PublishedIds(store)) {
    if (published_before.count(id) == 0) published.insert(id);
  }
  std::map<std::int64_t, int> seen;
  for (const auto& topic : kTopics) {
    std::vector<dispatch::testing::Record> records;
    try {
      records = dispatch::testing::ReadTopicSince(bootstrap, topic, since.at(topic), 60s);
    } catch (const std::runtime_error& e) {
      problems.push_back(std::string("reading ") + topic + " back: " + e.what());
      continue;
    }
    std::map<std::string, std::int64_t> last_id_of_key;
    for (const auto& rec : records) {
      std::optional<std::int64_t> id;
      for (const auto& h : rec.headers) {
        if (h.key == "outbox-id") id = std::stoll(h.value);
      }
      if (!id || published.count(*id) == 0) continue;  // another process's data
      ++seen[*id];
      const std::string key = topic + "/" + rec.key.value_or("");
      auto [it, fresh] = last_id_of_key.emplace(key, *id);
      if (!fresh) {
        if (*id < it->second) {
          problems.push_back("key " + key + ": row " + std::to_string(*id) + " after row " +
                             std::to_string(it->second));
        }
        it->second = std::max(it->second, *id);
      }
    }
  }
  std::size_t missing = 0;
  std::size_t duplicated = 0;
  for (std::int64_t id : published) {
    const auto it = seen.find(id);
    if (it == seen.end()) {
      ++missing;
    } else if (it->second > 1) {
      ++duplicated;
    }
  }
  if (missing > 0) problems.push_back(std::to_string(missing) + " published rows missing");
  if (duplicated > 0) problems.push_back(std::to_string(duplicated) + " rows duplicated");
  *checked = published.size();
  return problems;
}

// Times each wave for the summary's latency percentiles; the dispatcher
// publishes through PublishBatch only.
class TimedPublisher : public dispatch::Publisher {
 public:
  TimedPublisher(std::unique_ptr<dispatch::Publisher> inner, std::vector<double>& latencies_ms)
      : inner_(std::move(inner)), latencies_ms_(latencies_ms) {}

  dispatch::Result Publish(const dispatch::Context& ctx, const dispatch::Message& m) override {
    return inner_->Publish(ctx, m);
  }
  std::vector<dispatch::Result> PublishBatch(const dispatch::Context& ctx,
                                             std::span<const dispatch::Message> batch) override {
    const auto start = Clock::now();
    std::vector<dispatch::Result> results = inner_->PublishBatch(ctx, batch);
    const double took_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    latencies_ms_.insert(latencies_ms_.end(), batch.size(), took_ms);
    return results;
  }

 private:
  std::unique_ptr<dispatch::Publisher> inner_;
  std::vector<double>& latencies_ms_;
};

// Seeds `store` (described as `where`), dispatches it to `bootstrap` round by
// round with progress lines, prints the summary and verifies what landed.
// Returns the exit code. Throws StoreError and ConfigError.
template <typename Store>
int Dispatch(Store& store, const std::string& where, const Options& opt,
             const std::string& bootstrap) {
  if (opt.events > 0) store.Append(SampleEvents(opt.events));
  const auto initial = store.Count();
  std::printf("outbox %s: %lld pending rows\n", where.c_str(),
              static_cast<long long>(initial.pending));

  dispatch::kafka::KafkaConfig config = dispatch::kafka::DefaultKafkaConfig(Split(bootstrap));
  config.write_timeout = 10s;
  std::mutex log_mu;
  std::string last_kafka_error;
  config.log = [&](const dispatch::kafka::LogEntry& e) {
    if (e.level <= dispatch::kafka::LogLevel::kError) {
      std::lock_guard lock(log_mu);
      last_kafka_error = std::string(e.message);
    }
  };
  // Made here, so a bad configuration ends the demo at once (exit 2); the
  // dispatcher makes the next ones if this one turns fatal.
  auto first_publisher = std::make_unique<dispatch::kafka::KafkaPublisher>(config);
  // The demo knows its topics: a missing one is reported here, not on the
  // first row, and the first publish to each does not wait for metadata.
  const auto prepared = first_publisher->Prepare(dispatch::Context::WithTimeout(30s), kTopics);
  for (std::size_t i = 0; i < kTopics.size(); ++i) {
    if (!prepared[i].ok()) {
      std::fprintf(stderr, "outbox_demo: topic %s: %s\n", kTopics[i].c_str(),
                   prepared[i].message.c_str());
      return 1;
    }
  }
  TopicOffsets since;
  try {
    since = EndOffsets(bootstrap);
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "outbox_demo: %s\n", e.what());
    return 1;
  }
  const std::set<std::int64_t> published_before = PublishedIds(store);
  std::vector<double> latencies;
  const dispatch::PublisherFactory factory = [&]() -> std::unique_ptr<dispatch::Publisher> {
    std::unique_ptr<dispatch::Publisher> kafka = std::move(first_publisher);
    if (!kafka) kafka = std::make_unique<dispatch::kafka::KafkaPublisher>(config);
    return std::make_unique<TimedPublisher>(std::move(kafka), latencies);
  };
  const dispatch::DispatcherOptions options{
      .batch_size = 500, .publish_timeout = 5s, .retry_base = 100ms, .retry_cap = 2s};
  dispatch::Dispatcher dispatcher(store, factory, options);

  const auto start = Clock::now();
  auto last_progress = start;
  std::size_t published = 0, retried = 0, parked = 0;
  int rounds_without_progress = 0;
  std::string last_error;
  for (;;) {
    const dispatch::RoundStats round = dispatcher.RunOnce();
    published += round.published;
    retried += round.retried;
    parked += round.parked;
    if (!round.last_error.empty()) last_error = round.last_error;
    if (round.claimed == 0 && !round.round_failed) {
      if (store.Count().pending == 0) break;
      // Every pending row waits out its retry backoff.
      std::this_thread::sleep_for(options.poll_min);
      continue;
    }
    rounds_without_progress = round.published + round.parked == 0 ? rounds_without_progress + 1 : 0;
    const auto now = Clock::now();
    if (now - last_progress >= 1s) {
      const double secs = std::chrono::duration<double>(now - start).count();
      std::printf("progress: %.0f rows/s, published %zu, retried %zu, parked %zu\n",
                  static_cast<double>(published) / secs, published, retried, parked);
      std::fflush(stdout);
      last_progress = now;
    }
    if (rounds_without_progress >= 2) {
      std::lock_guard lock(log_mu);
      std::fprintf(
          stderr, "outbox_demo: no progress against brokers %s: %s%s%s\n", bootstrap.c_str(),
          last_error.c_str(),
          last_kafka_error.empty() ? "" : "; last client error: ", last_kafka_error.c_str());
      return 1;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const auto counts = store.Count();
  const double rows_per_s = secs > 0 ? static_cast<double>(published + parked) / secs : 0;
  std::printf(
      "summary: rows %lld, published %zu, parked %zu, still pending %lld, %.0f rows/s, "
      "publish latency p50 %.2f ms p99 %.2f ms\n",
      static_cast<long long>(initial.pending), published, parked,
      static_cast<long long>(counts.pending), rows_per_s, Percentile(latencies, 0.50),
      Percentile(latencies, 0.99));
  if (parked > 0) std::printf("parked (dead letter), last reason: %s\n", last_error.c_str());

  int exit_code = 0;
  std::size_t checked = 0;
  const std::vector<std::string> problems =
      Verify(store, bootstrap, published_before, since, &checked);
  if (problems.empty()) {
    std::printf(
        "verified: the %zu rows published by this run are in Kafka, each once, in order "
        "per key\n",
        checked);
  } else {
    exit_code = 1;
    for (const auto& p : problems) std::printf("NOT verified: %s\n", p.c_str());
  }
  if (opt.json) {
    std::printf(
        "{\"rows\": %lld, \"published\": %zu, \"parked\": %zu, \"demo_rows_per_s\": %.0f, "
        "\"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, \"verified\": %s}\n",
        static_cast<long long>(initial.pending), published, parked, rows_per_s,
        Percentile(latencies, 0.50), Percentile(latencies, 0.99),
        problems.empty() ? "true" : "false");
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = Parse(argc, argv);

  std::unique_ptr<dispatch::testing::EmbeddedKafkaCluster> embedded;
  std::string bootstrap = opt.brokers;
  if (bootstrap.empty()) {
    embedded = std::make_unique<dispatch::testing::EmbeddedKafkaCluster>(3);
    embedded->CreateTopic("orders", 6, 1);
    embedded->CreateTopic("payments", 3, 1);
    bootstrap = embedded->Bootstrap();
    std::printf("embedded Kafka cluster: 3 brokers at %s\n", bootstrap.c_str());
    // The publisher never auto-creates topics (allow.auto.create.topics=false).
  } else if (const std::string problem =
                 dispatch::testing::CreateTopics(bootstrap, {{"orders", 6}, {"payments", 3}}, 30s);
             !problem.empty()) {
    std::fprintf(stderr, "outbox_demo: creating the topics on %s: %s\n", bootstrap.c_str(),
                 problem.c_str());
    return 1;
  }

  std::string db_path = opt.db;
  const bool temporary_db = db_path.empty() && opt.postgres.empty();
  if (temporary_db) {
    db_path = (std::filesystem::temp_directory_path() /
               ("outbox_demo_" + std::to_string(::getpid()) + ".db"))
                  .string();
  }

  int exit_code = 0;
  try {
#if DISPATCH_DEMO_POSTGRES
    if (!opt.postgres.empty()) {
      dispatch::PostgresStore store(opt.postgres);
      exit_code = Dispatch(store, "in PostgreSQL", opt, bootstrap);
    }
#endif
    if (opt.postgres.empty()) {
      dispatch::SqliteStore store(db_path);
      exit_code = Dispatch(store, db_path, opt, bootstrap);
    }
  } catch (const dispatch::StoreError& e) {
    std::fprintf(stderr, "outbox_demo: %s\n", e.what());
    exit_code = 1;
  } catch (const dispatch::kafka::ConfigError& e) {
    std::fprintf(stderr, "outbox_demo: bad Kafka configuration: %s\n", e.what());
    exit_code = 2;
  }
  if (temporary_db) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_path + suffix);
  }
  return exit_code;
}
