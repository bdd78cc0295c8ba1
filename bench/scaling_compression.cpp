// bench/scaling --curve compression: CPU and bytes on the wire per codec.
//
// compression.type none, lz4, zstd on batches of 1,000 JSON-like order rows
// (about 300 bytes, realistic field names and varying numbers: see OrderRow):
// CPU us per message and bytes on the wire per message, from librdkafka's
// statistics (top-level tx_bytes, every byte sent to the brokers) taken after
// the warm-up and after the last round, with statistics.interval.ms 1000 on
// both sides.
#include <time.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scaling.h"

namespace scaling {

using namespace std::chrono_literals;

namespace {

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
                i, h % 1000000, h % 250000, (h >> 8) % 20000, 1 + (h >> 4) % 5, (h >> 12) % 50000,
                (h >> 3) % 100000, (h >> 5) % 24, (h >> 7) % 60, (h >> 9) % 60, (h >> 11) % 1000);
  return buf;
}

}  // namespace

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
  std::printf(
      "compression: PublishBatch of 1,000 JSON order rows (key + value %.0f B on "
      "average) against raw produce-all-then-flush, 1 partition, %d rounds of %d batches, "
      "%s broker\n",
      value_bytes, rounds, kBatchesPerRound, broker.kind());
  std::printf("  %-6s %12s %12s %8s %12s %12s %8s %12s %12s\n", "codec", "ours us/msg",
              "raw us/msg", "ratio", "ours B/msg", "raw B/msg", "ratio", "ours msg/s", "raw msg/s");
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
    const std::string not_run = WarmUp(publisher, raw, batch);
    if (!not_run.empty()) {
      EmitNotRun("compression", static_cast<double>(c), codec + ": " + not_run);
      continue;
    }
    tx0 = TxBytesNow(ours_stats, raw_stats, raw);
    bench::Alternate(
        rounds,
        [&] {
          const double cpu0 = bench::CpuSeconds();
          for (int b = 0; b < kBatchesPerRound; ++b) {
            const auto t0 = bench::Clock::now();
            g_failures += raw.ProduceAll(batch);
            raw_s.push_back(bench::SecondsSince(t0));
          }
          raw_cpu += bench::CpuSeconds() - cpu0;
          NoteFailure("raw librdkafka", raw.last_error());
        },
        [&] {
          const double cpu0 = bench::CpuSeconds();
          for (int b = 0; b < kBatchesPerRound; ++b) {
            const auto t0 = bench::Clock::now();
            const auto results = publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch);
            ours_s.push_back(bench::SecondsSince(t0));
            NoteFailure("dispatch-kafka", FirstError(results, g_failures));
          }
          ours_cpu += bench::CpuSeconds() - cpu0;
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
    EmitPoint(bench::Json()
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

}  // namespace scaling
