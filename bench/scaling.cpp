// How the cost of publishing grows with the work (issue 13): one curve per
// run, each point measured for KafkaPublisher and for raw librdkafka with the
// publisher's properties, on the same broker, in the same run. Within a
// point, rounds alternate between the two sides (and which goes first), so
// drift on a shared machine hits both alike.
//
//   scaling --curve size|callers|partitions|compression|memory
//           [--quick] [--brokers host:port,...]
//   scaling --curve memory --side ours|raw --in-flight N   (one memory point)
//
// Curves:
//   size         value size 100 B .. 1 MiB, PublishBatch against raw
//                produce-all-then-flush, MB/s (10^6 value bytes per second)
//                from the median batch. A batch moves about 8 MiB (at least
//                10 messages). Both sides set message.max.bytes to 2 MiB
//                (2097152; librdkafka's default, 1,000,000, refuses a 1 MiB
//                value) and, on a real cluster, the topic is created with
//                max.message.bytes 2 MiB (Kafka's default, 1 MiB + 12 bytes,
//                refuses a record batch holding a 1 MiB value).
//   callers      1..256 threads each calling blocking Publish, against
//                bench::RawThreadedProducer from as many threads: msg/s and
//                CPU us per message (user + system of the whole process).
//   partitions   PublishBatch of 1,000 keyed messages (1,000 distinct keys,
//                100 B values) to a topic of 1..1,000 partitions, msg/s from
//                the median batch.
//   compression  compression.type none, lz4, zstd on batches of 1,000
//                JSON-like order rows (about 300 bytes, realistic field
//                names and varying numbers: see OrderRow): CPU us per message
//                and bytes on the wire per message, from librdkafka's
//                statistics (top-level tx_bytes, every byte sent to the
//                brokers) taken after the warm-up and after the last round,
//                with statistics.interval.ms 1000 on both sides.
//   memory       resident memory with 10 .. 100,000 messages of 100 B in
//                flight. Each side of each point runs in a process of its
//                own (RSS does not shrink reliably), with an embedded cluster
//                of its own that holds every response back (SetRtt 30 s)
//                once the producer is warm, so the messages stay in flight.
//                Needs the embedded cluster: with --brokers it is not run.
//
// Output: a table for people, one JSON line per point, and a last JSON line
// holding the whole curve ({"curve": ..., "points": [...]}). A point that
// cannot run (its warm-up fails on either side) is printed as not run with
// librdkafka's reason, and its JSON has "run": false and "reason".
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <latch>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------- output

// A JSON object built field by field (numbers, strings, booleans, null).
class Json {
 public:
  Json& Num(const std::string& key, double v, int precision = 3) {
    if (!std::isfinite(v)) return Null(key);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", precision, v);
    return Raw(key, buf);
  }
  Json& Int(const std::string& key, long long v) { return Raw(key, std::to_string(v)); }
  Json& Str(const std::string& key, const std::string& v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      q += c;
    }
    return Raw(key, q + "\"");
  }
  Json& Bool(const std::string& key, bool v) { return Raw(key, v ? "true" : "false"); }
  Json& Null(const std::string& key) { return Raw(key, "null"); }
  Json& Raw(const std::string& key, const std::string& v) {
    body_ += (body_.empty() ? "" : ", ") + ("\"" + key + "\": ") + v;
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

std::vector<std::string> g_points;  // every point's JSON, for the curve's last line
int g_failures = 0;                 // failed messages in measured rounds
std::string g_first_failure;        // the first one's text, with its side

void EmitPoint(const Json& j) {
  g_points.push_back(j.str());
  std::printf("%s\n", j.str().c_str());
  std::fflush(stdout);
}

void EmitNotRun(const std::string& curve, double x, const std::string& reason) {
  std::printf("  %-10.0f not run: %s\n", x, reason.c_str());
  EmitPoint(Json().Str("curve", curve).Num("x", x, 0).Bool("run", false).Str("reason", reason));
}

void NoteFailure(const std::string& side, const std::string& text) {
  if (g_first_failure.empty() && !text.empty()) g_first_failure = side + ": " + text;
}

double Median(const std::vector<double>& v) { return bench::Percentile(v, 0.5); }
double Sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// Runs `rounds` rounds of both sides, raw first in even rounds.
template <typename Ours, typename Raw>
void Alternate(int rounds, Ours ours, Raw raw) {
  for (int r = 0; r < rounds; ++r) bench::InTurn(r, raw, ours);
}

// The first failure's text among `results`, empty when all are ok; counts
// the failures into `failed`.
std::string FirstError(const std::vector<dispatch::Result>& results, int& failed) {
  std::string first;
  for (const auto& r : results) {
    if (r.ok()) continue;
    ++failed;
    if (first.empty()) first = r.message;
  }
  return first;
}

// ---------------------------------------------------------------- batches

// One PublishBatch against one raw produce-all-then-flush per round; the
// seconds each batch took. Warms both up first; a warm-up failure is the
// point's reason for not running.
struct BatchTimes {
  std::vector<double> ours_s;
  std::vector<double> raw_s;
  std::string not_run;  // non-empty: the point did not run, and why
  int failures = 0;     // failed messages in the measured rounds, both sides
};

BatchTimes TimeBatches(dispatch::kafka::KafkaPublisher& publisher, bench::RawBatchProducer& raw,
                       const std::vector<dispatch::Message>& batch, int rounds) {
  BatchTimes t;
  int failed = 0;
  const std::string ours_err =
      FirstError(publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch), failed);
  if (!ours_err.empty()) {
    t.not_run = "dispatch-kafka: " + ours_err;
    return t;
  }
  if (raw.ProduceAll(batch) != 0) {
    t.not_run = "raw librdkafka: " + raw.last_error();
    return t;
  }
  const int failures_before = g_failures;
  Alternate(
      rounds,
      [&] {
        const auto t0 = bench::Clock::now();
        const auto results = publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch);
        t.ours_s.push_back(bench::SecondsSince(t0));
        NoteFailure("dispatch-kafka", FirstError(results, g_failures));
      },
      [&] {
        const auto t0 = bench::Clock::now();
        g_failures += raw.ProduceAll(batch);
        t.raw_s.push_back(bench::SecondsSince(t0));
        NoteFailure("raw librdkafka", raw.last_error());
      });
  t.failures = g_failures - failures_before;
  return t;
}

// ---------------------------------------------------------------- size

constexpr long kSizeBatchBytes = 8L << 20;
constexpr const char* kMaxMessageBytes = "2097152";

int CurveSize(const std::string& brokers, bool quick) {
  const std::string topic = "scaling-size";
  bench::Broker broker(brokers, {{topic, 1, {{"max.message.bytes", kMaxMessageBytes}}}});
  dispatch::kafka::KafkaConfig config = bench::OurConfig(broker.bootstrap());
  config.properties["message.max.bytes"] = kMaxMessageBytes;
  dispatch::kafka::KafkaPublisher publisher(config);
  bench::RawBatchProducer raw(bench::RawConf(config));
  const int rounds = quick ? 4 : 40;
  std::printf("size: PublishBatch of ~8 MiB against raw produce-all-then-flush, 1 partition, "
              "message.max.bytes %s on both sides, %d rounds, %s broker\n",
              kMaxMessageBytes, rounds, broker.kind());
  std::printf("  %-10s %8s %14s %14s %8s %14s %14s\n", "bytes", "msgs", "ours MB/s", "raw MB/s",
              "ratio", "ours mean", "raw mean");
  for (const long size : {100L, 1024L, 10240L, 102400L, 1048576L}) {
    const long n = std::max(10L, kSizeBatchBytes / size);
    std::vector<dispatch::Message> batch;
    batch.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
      batch.push_back({topic, "key-" + std::to_string(i % 64),
                       std::string(static_cast<std::size_t>(size), 'v'), {}});
    }
    const BatchTimes t = TimeBatches(publisher, raw, batch, rounds);
    if (!t.not_run.empty()) {
      EmitNotRun("size", static_cast<double>(size), t.not_run);
      continue;
    }
    const double mb = static_cast<double>(n * size) / 1e6;
    const double ours = mb / Median(t.ours_s);
    const double base = mb / Median(t.raw_s);
    const double ours_mean = mb * static_cast<double>(t.ours_s.size()) / Sum(t.ours_s);
    const double base_mean = mb * static_cast<double>(t.raw_s.size()) / Sum(t.raw_s);
    std::printf("  %-10ld %8ld %14.1f %14.1f %8.2f %14.1f %14.1f\n", size, n, ours, base,
                ours / base, ours_mean, base_mean);
    EmitPoint(Json()
                  .Str("curve", "size")
                  .Num("x", static_cast<double>(size), 0)
                  .Bool("run", true)
                  .Int("batch_msgs", n)
                  .Num("ours_mb_per_s", ours, 1)
                  .Num("raw_mb_per_s", base, 1)
                  .Num("ratio", ours / base)
                  .Num("ours_mean_mb_per_s", ours_mean, 1)
                  .Num("raw_mean_mb_per_s", base_mean, 1)
                  .Num("ours_msgs_per_s", static_cast<double>(n) / Median(t.ours_s), 0)
                  .Num("raw_msgs_per_s", static_cast<double>(n) / Median(t.raw_s), 0)
                  .Int("failures", t.failures));
  }
  return 0;
}

// ---------------------------------------------------------------- callers

struct Phase {
  double wall_s = 0;
  double cpu_s = 0;
  long messages = 0;
};

// Starts `threads` threads, each calling `one(thread, i)` `per_thread` times
// once all are started; adds the wall and CPU time from the start signal to
// the last join (thread creation excluded) to `phase`.
template <typename F>
void RunThreads(int threads, int per_thread, Phase& phase, F one) {
  std::latch ready(threads);
  std::latch go(1);
  std::atomic<int> failed{0};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.count_down();
      go.wait();
      for (int i = 0; i < per_thread; ++i) {
        if (!one(t, i)) failed.fetch_add(1);
      }
    });
  }
  ready.wait();
  const double cpu0 = bench::CpuSeconds();
  const auto t0 = bench::Clock::now();
  go.count_down();
  for (auto& th : pool) th.join();
  phase.wall_s += bench::SecondsSince(t0);
  phase.cpu_s += bench::CpuSeconds() - cpu0;
  phase.messages += static_cast<long>(threads) * per_thread;
  g_failures += failed.load();
}

int CurveCallers(const std::string& brokers, bool quick) {
  const std::string topic = "scaling-callers";
  bench::Broker broker(brokers, topic, 4);
  dispatch::kafka::KafkaPublisher publisher(bench::OurConfig(broker.bootstrap()));
  bench::RawThreadedProducer raw(broker.bootstrap());
  const std::string value(100, 'v');
  std::vector<std::string> keys;
  for (int i = 0; i < 64; ++i) keys.push_back("key-" + std::to_string(i));
  // A round lasts about this long on either side: the warm-up's rate sets
  // the messages per thread (at least 20), so a slow broker does not
  // stretch the curve and a fast one still gives each round enough messages.
  const double round_s = quick ? 0.2 : 0.8;
  const int rounds = quick ? 2 : 8;
  std::printf("callers: N threads of blocking Publish against raw (one shared producer, one "
              "report thread, a condition variable per message), 100 B, 4 partitions, rounds "
              "of ~%.1f s, %d rounds, %s broker\n",
              round_s, rounds, broker.kind());
  std::printf("  %-8s %12s %12s %8s %12s %12s %8s %8s %8s\n", "threads", "ours msg/s",
              "raw msg/s", "ratio", "ours us/msg", "raw us/msg", "ratio", "ours cor", "raw cor");
  {
    // Connections, metadata and producer ids, before any rate is taken.
    const auto warm = [&](int, int i) {
      return raw.ProduceAndWait(topic, keys[static_cast<std::size_t>(i % 64)], value) &&
             publisher.Publish(dispatch::Context::WithTimeout(30s), {topic, "warm", value, {}}).ok();
    };
    Phase ignored;
    RunThreads(1, 50, ignored, warm);
  }
  for (const int threads : {1, 4, 16, 64, 256}) {
    const auto raw_one = [&](int t, int i) {
      return raw.ProduceAndWait(topic, keys[static_cast<std::size_t>((t + i) % 64)], value);
    };
    const auto ours_one = [&](int t, int i) {
      return publisher
          .Publish(dispatch::Context::WithTimeout(30s),
                   {topic, keys[static_cast<std::size_t>((t + i) % 64)], value, {}})
          .ok();
    };
    Phase warm_raw;
    Phase warm_ours;
    const int before = g_failures;
    RunThreads(threads, 10, warm_raw, raw_one);
    RunThreads(threads, 10, warm_ours, ours_one);
    if (g_failures != before) {
      g_failures = before;
      EmitNotRun("callers", threads, "the warm-up publishes failed");
      continue;
    }
    const double warm_rate =
        static_cast<double>(warm_raw.messages + warm_ours.messages) /
        (warm_raw.wall_s + warm_ours.wall_s);
    const int per_thread = std::max(20, static_cast<int>(warm_rate * round_s / threads));
    Phase ours_phase;
    Phase raw_phase;
    Alternate(
        rounds, [&] { RunThreads(threads, per_thread, ours_phase, ours_one); },
        [&] { RunThreads(threads, per_thread, raw_phase, raw_one); });
    const double ours = static_cast<double>(ours_phase.messages) / ours_phase.wall_s;
    const double base = static_cast<double>(raw_phase.messages) / raw_phase.wall_s;
    const double ours_cpu = ours_phase.cpu_s * 1e6 / static_cast<double>(ours_phase.messages);
    const double raw_cpu = raw_phase.cpu_s * 1e6 / static_cast<double>(raw_phase.messages);
    std::printf("  %-8d %12.0f %12.0f %8.2f %12.1f %12.1f %8.2f %8.2f %8.2f\n", threads, ours,
                base, ours / base, ours_cpu, raw_cpu, ours_cpu / raw_cpu,
                ours_phase.cpu_s / ours_phase.wall_s, raw_phase.cpu_s / raw_phase.wall_s);
    EmitPoint(Json()
                  .Str("curve", "callers")
                  .Num("x", threads, 0)
                  .Bool("run", true)
                  .Int("msgs_per_thread_per_round", per_thread)
                  .Num("ours_msgs_per_s", ours, 0)
                  .Num("raw_msgs_per_s", base, 0)
                  .Num("ratio", ours / base)
                  .Num("ours_cpu_us_per_msg", ours_cpu, 1)
                  .Num("raw_cpu_us_per_msg", raw_cpu, 1)
                  .Num("cpu_ratio", ours_cpu / raw_cpu)
                  .Num("ours_cores_busy", ours_phase.cpu_s / ours_phase.wall_s, 2)
                  .Num("raw_cores_busy", raw_phase.cpu_s / raw_phase.wall_s, 2));
  }
  return 0;
}

// ---------------------------------------------------------------- partitions

int CurvePartitions(const std::string& brokers, bool quick) {
  const std::vector<int> counts = {1, 12, 100, 1000};
  std::vector<bench::TopicSpec> topics;
  for (int p : counts) topics.push_back({"scaling-p" + std::to_string(p), p});
  bench::Broker broker(brokers, topics);
  const dispatch::kafka::KafkaConfig config = bench::OurConfig(broker.bootstrap());
  dispatch::kafka::KafkaPublisher publisher(config);
  bench::RawBatchProducer raw(bench::RawConf(config));
  const int rounds = quick ? 10 : 60;
  std::printf("partitions: PublishBatch of 1,000 keyed messages (1,000 keys, 100 B) against raw "
              "produce-all-then-flush, %d rounds, %s broker\n",
              rounds, broker.kind());
  std::printf("  %-10s %14s %14s %8s %14s %14s\n", "partitions", "ours msg/s", "raw msg/s",
              "ratio", "ours mean", "raw mean");
  for (const int p : counts) {
    const std::string topic = "scaling-p" + std::to_string(p);
    std::vector<dispatch::Message> batch;
    for (int i = 0; i < 1000; ++i) {
      batch.push_back({topic, "key-" + std::to_string(i), std::string(100, 'v'), {}});
    }
    const BatchTimes t = TimeBatches(publisher, raw, batch, rounds);
    if (!t.not_run.empty()) {
      EmitNotRun("partitions", p, t.not_run);
      continue;
    }
    const double ours = 1000 / Median(t.ours_s);
    const double base = 1000 / Median(t.raw_s);
    const double ours_mean = 1000.0 * static_cast<double>(t.ours_s.size()) / Sum(t.ours_s);
    const double base_mean = 1000.0 * static_cast<double>(t.raw_s.size()) / Sum(t.raw_s);
    std::printf("  %-10d %14.0f %14.0f %8.2f %14.0f %14.0f\n", p, ours, base, ours / base,
                ours_mean, base_mean);
    EmitPoint(Json()
                  .Str("curve", "partitions")
                  .Num("x", p, 0)
                  .Bool("run", true)
                  .Num("ours_msgs_per_s", ours, 0)
                  .Num("raw_msgs_per_s", base, 0)
                  .Num("ratio", ours / base)
                  .Num("ours_mean_msgs_per_s", ours_mean, 0)
                  .Num("raw_mean_msgs_per_s", base_mean, 0)
                  .Int("failures", t.failures));
  }
  return 0;
}

// ---------------------------------------------------------------- compression

// librdkafka's monotonic clock (rd_clock: CLOCK_MONOTONIC in microseconds),
// which the statistics' "ts" field uses.
long long MonotonicUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// The newest statistics document's "ts" and top-level "tx_bytes" (the
// brokers' entries spell theirs "txbytes", and top-level fields come first).
class StatsSink : public RdKafka::EventCb {
 public:
  void Take(std::string_view json) {
    const auto field = [&](std::string_view name) -> long long {
      const auto at = json.find(name);
      if (at == std::string_view::npos) return -1;
      return std::atoll(std::string(json.substr(at + name.size(), 24)).c_str());
    };
    const long long ts = field("\"ts\":");
    const long long tx = field("\"tx_bytes\":");
    const std::lock_guard lock(mu_);
    ts_ = ts;
    tx_bytes_ = tx;
  }
  void event_cb(RdKafka::Event& e) override {
    if (e.type() == RdKafka::Event::EVENT_STATS) Take(e.str());
  }
  // tx_bytes of a document made at or after `since_us`, if one arrived.
  std::optional<long long> TxBytesSince(long long since_us) const {
    const std::lock_guard lock(mu_);
    if (ts_ < since_us || tx_bytes_ < 0) return std::nullopt;
    return tx_bytes_;
  }

 private:
  mutable std::mutex mu_;
  long long ts_ = -1;
  long long tx_bytes_ = -1;
};

// Waits (polling the raw producer, whose statistics arrive through poll) up
// to 5 s for both sides' statistics made after now; nullopt when either is
// missing.
std::optional<std::pair<long long, long long>> TxBytesNow(const StatsSink& ours,
                                                          const StatsSink& raw_sink,
                                                          bench::RawBatchProducer& raw) {
  const long long since = MonotonicUs();
  const auto until = bench::Clock::now() + 5s;
  while (bench::Clock::now() < until) {
    raw.producer().poll(50);
    const auto o = ours.TxBytesSince(since);
    const auto r = raw_sink.TxBytesSince(since);
    if (o && r) return std::make_pair(*o, *r);
  }
  return std::nullopt;
}

// A JSON order row as an outbox holds it: fixed field names, varying ids,
// amounts and timestamps. About 300 bytes.
std::string OrderRow(int i) {
  char buf[512];
  const unsigned h = static_cast<unsigned>(i) * 2654435761U;
  std::snprintf(buf, sizeof buf,
                "{\"event_type\":\"OrderPaid\",\"order_id\":\"ord-%08d\",\"customer_id\":"
                "\"cus-%06u\",\"status\":\"PAID\",\"amount_cents\":%u,\"currency\":\"EUR\","
                "\"items\":[{\"sku\":\"SKU-%05u\",\"quantity\":%u,\"unit_price_cents\":%u}],"
                "\"shipping\":{\"country\":\"DE\",\"postcode\":\"%05u\",\"method\":\"standard\"},"
                "\"created_at\":\"2026-12-02T%02u:%02u:%02u.%03uZ\",\"schema_version\":3}",
                i, h % 1000000, h % 250000, (h >> 8) % 20000, 1 + (h >> 4) % 5,
                (h >> 12) % 50000, (h >> 3) % 100000, (h >> 5) % 24, (h >> 7) % 60,
                (h >> 9) % 60, (h >> 11) % 1000);
  return buf;
}

int CurveCompression(const std::string& brokers, bool quick) {
  const std::string topic = "scaling-compression";
  bench::Broker broker(brokers, topic, 1);
  std::vector<dispatch::Message> batch;
  double value_bytes = 0;
  for (int i = 0; i < 1000; ++i) {
    batch.push_back({topic, "order-" + std::to_string(i % 200), OrderRow(i), {}});
    value_bytes += static_cast<double>(batch.back().value.size() + batch.back().key->size());
  }
  value_bytes /= static_cast<double>(batch.size());
  // A round is kBatchesPerRound batches of one side, so that each CPU
  // reading spans tens of milliseconds rather than one short batch.
  constexpr int kBatchesPerRound = 10;
  const int rounds = quick ? 4 : 20;
  std::printf("compression: PublishBatch of 1,000 JSON order rows (key + value %.0f B on "
              "average) against raw produce-all-then-flush, 1 partition, %d rounds of %d batches, "
              "%s broker\n",
              value_bytes, rounds, kBatchesPerRound, broker.kind());
  std::printf("  %-6s %12s %12s %8s %12s %12s %8s %12s %12s\n", "codec", "ours us/msg",
              "raw us/msg", "ratio", "ours B/msg", "raw B/msg", "ratio", "ours msg/s",
              "raw msg/s");
  const std::vector<std::string> codecs = {"none", "lz4", "zstd"};
  for (std::size_t c = 0; c < codecs.size(); ++c) {
    const std::string& codec = codecs[c];
    StatsSink ours_stats;
    StatsSink raw_stats;
    dispatch::kafka::KafkaConfig config = bench::OurConfig(broker.bootstrap());
    config.properties["compression.type"] = codec;
    config.statistics_interval = 1000ms;
    config.statistics = [&ours_stats](std::string_view json) { ours_stats.Take(json); };
    dispatch::kafka::KafkaPublisher publisher(config);
    bench::RawBatchProducer raw(bench::RawConf(config), &raw_stats);
    std::optional<std::pair<long long, long long>> tx0;
    double ours_cpu = 0;
    double raw_cpu = 0;
    std::vector<double> ours_s;
    std::vector<double> raw_s;
    int failed = 0;
    std::string not_run =
        FirstError(publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch), failed);
    if (!not_run.empty()) not_run = "dispatch-kafka: " + not_run;
    if (not_run.empty() && raw.ProduceAll(batch) != 0) not_run = "raw librdkafka: " + raw.last_error();
    if (!not_run.empty()) {
      EmitNotRun("compression", static_cast<double>(c), codec + ": " + not_run);
      continue;
    }
    tx0 = TxBytesNow(ours_stats, raw_stats, raw);
    Alternate(
        rounds,
        [&] {
          const double cpu0 = bench::CpuSeconds();
          for (int b = 0; b < kBatchesPerRound; ++b) {
            const auto t0 = bench::Clock::now();
            const auto results = publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch);
            ours_s.push_back(bench::SecondsSince(t0));
            NoteFailure("dispatch-kafka", FirstError(results, g_failures));
          }
          ours_cpu += bench::CpuSeconds() - cpu0;
        },
        [&] {
          const double cpu0 = bench::CpuSeconds();
          for (int b = 0; b < kBatchesPerRound; ++b) {
            const auto t0 = bench::Clock::now();
            g_failures += raw.ProduceAll(batch);
            raw_s.push_back(bench::SecondsSince(t0));
          }
          raw_cpu += bench::CpuSeconds() - cpu0;
          NoteFailure("raw librdkafka", raw.last_error());
        });
    const auto tx1 = TxBytesNow(ours_stats, raw_stats, raw);
    const double msgs =
        static_cast<double>(rounds * kBatchesPerRound) * static_cast<double>(batch.size());
    double ours_wire = NAN;
    double raw_wire = NAN;
    if (tx0 && tx1) {
      ours_wire = static_cast<double>(tx1->first - tx0->first) / msgs;
      raw_wire = static_cast<double>(tx1->second - tx0->second) / msgs;
    }
    const double ours_us = ours_cpu * 1e6 / msgs;
    const double raw_us = raw_cpu * 1e6 / msgs;
    const double ours_rate = 1000 / Median(ours_s);
    const double raw_rate = 1000 / Median(raw_s);
    std::printf("  %-6s %12.2f %12.2f %8.2f %12.1f %12.1f %8.2f %12.0f %12.0f\n", codec.c_str(),
                ours_us, raw_us, ours_us / raw_us, ours_wire, raw_wire, ours_wire / raw_wire,
                ours_rate, raw_rate);
    EmitPoint(Json()
                  .Str("curve", "compression")
                  .Num("x", static_cast<double>(c), 0)
                  .Str("codec", codec)
                  .Bool("run", true)
                  .Num("record_bytes", value_bytes, 1)
                  .Num("ours_cpu_us_per_msg", ours_us, 2)
                  .Num("raw_cpu_us_per_msg", raw_us, 2)
                  .Num("cpu_ratio", ours_us / raw_us)
                  .Num("ours_wire_bytes_per_msg", ours_wire, 1)
                  .Num("raw_wire_bytes_per_msg", raw_wire, 1)
                  .Num("wire_ratio", ours_wire / raw_wire)
                  .Num("ours_msgs_per_s", ours_rate, 0)
                  .Num("raw_msgs_per_s", raw_rate, 0)
                  .Num("ratio", ours_rate / raw_rate));
  }
  return 0;
}

// ---------------------------------------------------------------- memory

constexpr auto kHoldRtt = 30s;  // longer than a measurement, so nothing is answered

// One side of one memory point, in a process of its own: warm up with the
// broker answering, then hold every response back, put `in_flight`
// messages in flight, and print the RSS before and with them as JSON.
int MemorySide(const std::string& side, long in_flight) {
  const std::string topic = "scaling-memory";
  bench::Broker broker("", topic, 1);
  std::vector<dispatch::Message> batch;
  batch.reserve(static_cast<std::size_t>(in_flight));
  for (long i = 0; i < in_flight; ++i) {
    batch.push_back({topic, "key-" + std::to_string(i % 1000), std::string(100, 'v'), {}});
  }
  const std::vector<dispatch::Message> one = {{topic, "warm", std::string(100, 'v'), {}}};
  double rss_base = 0;
  double rss = 0;
  long reported = 0;
  std::thread waiter;
  dispatch::kafka::KafkaConfig config = bench::OurConfig(broker.bootstrap());
  config.close_timeout = 0ms;
  if (side == "ours") {
    auto* publisher = new dispatch::kafka::KafkaPublisher(config);  // left to _Exit
    int failed = 0;
    const std::string err =
        FirstError(publisher->PublishBatch(dispatch::Context::WithTimeout(30s), one), failed);
    if (!err.empty()) {
      std::printf("%s\n", Json().Bool("run", false).Str("reason", err).str().c_str());
      std::fflush(stdout);
      std::_Exit(0);
    }
    std::this_thread::sleep_for(300ms);
    rss_base = bench::RssMib();
    broker.SetRtt(kHoldRtt);
    waiter = std::thread([publisher, &batch] {
      (void)publisher->PublishBatch(dispatch::Context::WithTimeout(60s), batch);
    });
    const auto until = bench::Clock::now() + 10s;
    while (publisher->InFlight() < in_flight && bench::Clock::now() < until) {
      std::this_thread::sleep_for(5ms);
    }
    std::this_thread::sleep_for(500ms);
    reported = publisher->InFlight();
  } else {
    auto* raw = new bench::RawBatchProducer(bench::RawConf(config));  // left to _Exit
    if (raw->ProduceAll(one) != 0) {
      std::printf("%s\n", Json().Bool("run", false).Str("reason", raw->last_error()).str().c_str());
      std::fflush(stdout);
      std::_Exit(0);
    }
    std::this_thread::sleep_for(300ms);
    rss_base = bench::RssMib();
    broker.SetRtt(kHoldRtt);
    raw->ProduceAll(batch, /*flush=*/false);
    std::this_thread::sleep_for(500ms);
    reported = raw->producer().outq_len();
  }
  rss = bench::RssMib();
  std::printf("%s\n", Json()
                          .Bool("run", true)
                          .Str("side", side)
                          .Int("in_flight", in_flight)
                          .Int("reported_in_flight", reported)
                          .Num("rss_base_mib", rss_base, 2)
                          .Num("rss_mib", rss, 2)
                          .str()
                          .c_str());
  std::fflush(stdout);
  // The producer cannot be closed while the broker holds its responses;
  // the figures are out, so leave without waiting (the cluster's process
  // stops when its pipe closes).
  std::_Exit(0);
}

// Runs this binary for one side of one memory point; its JSON, or "" with
// `why` set.
std::string RunMemorySide(const std::string& side, long in_flight, std::string& why) {
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    why = "cannot find this binary";
    return "";
  }
  self[len] = '\0';
  int out[2];
  if (pipe(out) != 0) {
    why = "pipe failed";
    return "";
  }
  const std::string n = std::to_string(in_flight);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execl(self, self, "--curve", "memory", "--side", side.c_str(), "--in-flight", n.c_str(),
          static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  close(out[1]);
  std::string output;
  char buf[4096];
  ssize_t r;
  while ((r = read(out[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<std::size_t>(r));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const auto start = output.rfind("{\"run\"");
  if (start == std::string::npos) {
    why = side + " process exited with status " + std::to_string(status) + " and no result";
    return "";
  }
  return output.substr(start, output.find('\n', start) - start);
}

// A number field of a flat JSON object, NAN when absent.
double Field(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return NAN;
  return std::atof(json.c_str() + at + key.size() + 4);
}

int CurveMemory(const std::string& brokers, bool quick) {
  const std::vector<long> points = {10, 1000, 100000};
  const int rounds = quick ? 1 : 3;
  std::printf("memory: RSS with N messages of 100 B in flight (broker holding its responses), one "
              "process per side and round, %d round(s), %s broker\n",
              rounds, brokers.empty() ? "embedded" : "real");
  if (!brokers.empty()) {
    for (long n : points) {
      EmitNotRun("memory", static_cast<double>(n),
                 "needs the embedded cluster, which can hold responses back (SetRtt); a real "
                 "broker answers at once, so the messages would not stay in flight");
    }
    return 0;
  }
  std::printf("  %-8s %10s %10s %10s %10s %10s %10s %8s\n", "in fl.", "ours base", "ours MiB",
              "ours B/msg", "raw base", "raw MiB", "raw B/msg", "ratio");
  int index = 0;
  for (const long n : points) {
    std::map<std::string, std::vector<std::string>> results;
    std::string why;
    for (int r = 0; r < rounds && why.empty(); ++r) {
      const bool raw_first = (r + index) % 2 == 0;
      for (const std::string side : {raw_first ? "raw" : "ours", raw_first ? "ours" : "raw"}) {
        const std::string j = RunMemorySide(side, n, why);
        if (j.empty()) break;
        if (j.find("\"run\": false") != std::string::npos) {
          why = side + ": " + j;
          break;
        }
        results[side].push_back(j);
      }
    }
    ++index;
    if (!why.empty()) {
      EmitNotRun("memory", static_cast<double>(n), why);
      continue;
    }
    const auto medians = [&](const std::string& side, const std::string& key) {
      std::vector<double> v;
      for (const auto& j : results[side]) v.push_back(Field(j, key));
      return Median(v);
    };
    const auto growth = [&](const std::string& side) {
      std::vector<double> v;
      for (const auto& j : results[side]) v.push_back(Field(j, "rss_mib") - Field(j, "rss_base_mib"));
      return Median(v);
    };
    const double ours_base = medians("ours", "rss_base_mib");
    const double raw_base = medians("raw", "rss_base_mib");
    const double ours_rss = medians("ours", "rss_mib");
    const double raw_rss = medians("raw", "rss_mib");
    const double ours_growth = growth("ours");
    const double raw_growth = growth("raw");
    const double nd = static_cast<double>(n);
    const double ours_per = ours_growth * 1048576 / nd;
    const double raw_per = raw_growth * 1048576 / nd;
    // A growth under 1 MiB is page noise: no ratio.
    const double ratio = raw_growth >= 1 ? ours_growth / raw_growth : NAN;
    std::printf("  %-8ld %10.1f %10.1f %10.0f %10.1f %10.1f %10.0f %8s\n", n, ours_base, ours_rss,
                ours_per, raw_base, raw_rss, raw_per,
                std::isfinite(ratio) ? std::to_string(ratio).substr(0, 4).c_str() : "n/a");
    EmitPoint(Json()
                  .Str("curve", "memory")
                  .Num("x", nd, 0)
                  .Bool("run", true)
                  .Num("ours_rss_mib", ours_rss, 2)
                  .Num("raw_rss_mib", raw_rss, 2)
                  .Num("ours_base_rss_mib", ours_base, 2)
                  .Num("raw_base_rss_mib", raw_base, 2)
                  .Num("ours_growth_mib", ours_growth, 2)
                  .Num("raw_growth_mib", raw_growth, 2)
                  .Num("ours_bytes_per_msg", ours_per, 0)
                  .Num("raw_bytes_per_msg", raw_per, 0)
                  .Num("ratio", ratio)
                  .Num("ours_reported_in_flight", medians("ours", "reported_in_flight"), 0)
                  .Num("raw_reported_in_flight", medians("raw", "reported_in_flight"), 0));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string curve;
  std::string brokers;
  std::string side;
  long in_flight = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--curve" && i + 1 < argc) {
      curve = argv[++i];
    } else if (a == "--brokers" && i + 1 < argc) {
      brokers = argv[++i];
    } else if (a == "--side" && i + 1 < argc) {
      side = argv[++i];
    } else if (a == "--in-flight" && i + 1 < argc) {
      in_flight = std::stol(argv[++i]);
    } else if (a == "--quick") {
      quick = true;
    } else {
      curve.clear();
      break;
    }
  }
  const std::map<std::string, int (*)(const std::string&, bool)> curves = {
      {"size", CurveSize},
      {"callers", CurveCallers},
      {"partitions", CurvePartitions},
      {"compression", CurveCompression},
      {"memory", CurveMemory}};
  if (!side.empty()) {
    if (curve != "memory" || (side != "ours" && side != "raw") || in_flight <= 0 ||
        !brokers.empty()) {
      std::fprintf(stderr, "--side ours|raw needs --curve memory and --in-flight N > 0, and "
                           "runs on its own embedded cluster (no --brokers)\n");
      return 2;
    }
    return MemorySide(side, in_flight);
  }
  if (curves.count(curve) == 0) {
    std::fprintf(stderr,
                 "usage: %s --curve size|callers|partitions|compression|memory [--quick] "
                 "[--brokers LIST]\n"
                 "       %s --curve memory --side ours|raw --in-flight N\n",
                 argv[0], argv[0]);
    return 2;
  }
  const auto t0 = bench::Clock::now();
  const int code = curves.at(curve)(brokers, quick);
  std::string points;
  for (const auto& p : g_points) points += (points.empty() ? "" : ", ") + p;
  std::printf("failures: %d%s%s\n", g_failures, g_first_failure.empty() ? "" : ", the first: ",
              g_first_failure.c_str());
  std::printf("%s\n", Json()
                          .Str("curve", curve)
                          .Bool("quick", quick)
                          .Str("broker", brokers.empty() ? "embedded" : "real")
                          .Num("seconds", bench::SecondsSince(t0), 1)
                          .Int("failures", g_failures)
                          .Str("first_failure", g_first_failure)
                          .Raw("points", "[" + points + "]")
                          .str()
                          .c_str());
  return code != 0 || g_failures != 0 ? 1 : 0;
}
