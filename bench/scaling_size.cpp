// bench/scaling --curve size: how MB/s grows with the value size.
//
// Value size 100 B .. 1 MiB, PublishBatch against raw produce-all-then-flush,
// MB/s (10^6 value bytes per second) from the median batch. A batch moves
// about 8 MiB (at least 10 messages). Both sides set message.max.bytes to 2
// MiB (2097152; librdkafka's default, 1,000,000, refuses a 1 MiB value) and,
// on a real cluster, the topic is created with max.message.bytes 2 MiB
// (Kafka's default, 1 MiB + 12 bytes, refuses a record batch holding a 1 MiB
// value).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "scaling.h"

namespace scaling {

using namespace std::chrono_literals;

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
  std::printf(
      "size: PublishBatch of ~8 MiB against raw produce-all-then-flush, 1 partition, "
      "message.max.bytes %s on both sides, %d rounds, %s broker\n",
      kMaxMessageBytes, rounds, broker.kind());
  std::printf("  %-10s %8s %14s %14s %8s %14s %14s\n", "bytes", "msgs", "ours MB/s", "raw MB/s",
              "ratio", "ours mean", "raw mean");
  for (const long size : {100L, 1024L, 10240L, 102400L, 1048576L}) {
    const long n = std::max(10L, kSizeBatchBytes / size);
    std::vector<dispatch::Message> batch;
    batch.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
      batch.push_back({topic,
                       "key-" + std::to_string(i % 64),
                       std::string(static_cast<std::size_t>(size), 'v'),
                       {}});
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
    EmitPoint(bench::Json()
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

}  // namespace scaling
