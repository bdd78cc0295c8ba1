// bench/scaling --curve partitions: how msg/s falls with the partitions.
//
// PublishBatch of 1,000 keyed messages (1,000 distinct keys, 100 B values) to
// a topic of 1..1,000 partitions, msg/s from the median batch.
#include <cstdio>
#include <string>
#include <vector>

#include "scaling.h"

namespace scaling {

using namespace std::chrono_literals;

int CurvePartitions(const std::string& brokers, bool quick) {
  const std::vector<int> counts = {1, 12, 100, 1000};
  std::vector<bench::TopicSpec> topics;
  for (int p : counts) topics.push_back({"scaling-p" + std::to_string(p), p});
  bench::Broker broker(brokers, topics);
  const dispatch::kafka::KafkaConfig config = bench::OurConfig(broker.bootstrap());
  dispatch::kafka::KafkaPublisher publisher(config);
  bench::RawBatchProducer raw(bench::RawConf(config));
  const int rounds = quick ? 10 : 60;
  std::printf(
      "partitions: PublishBatch of 1,000 keyed messages (1,000 keys, 100 B) against raw "
      "produce-all-then-flush, %d rounds, %s broker\n",
      rounds, broker.kind());
  std::printf("  %-10s %14s %14s %8s %14s %14s\n", "partitions", "ours msg/s", "raw msg/s", "ratio",
              "ours mean", "raw mean");
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
    EmitPoint(bench::Json()
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

}  // namespace scaling
