// bench/scaling --curve callers: how msg/s and CPU grow with blocking callers.
//
// 1..256 threads each calling blocking Publish, against
// bench::RawThreadedProducer from as many threads: msg/s and CPU us per
// message (user + system of the whole process).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "scaling.h"

namespace scaling {

using namespace std::chrono_literals;

int CurveCallers(const std::string& brokers, bool quick) {
  const std::string topic = "scaling-callers";
  bench::Broker broker(brokers, topic, 4);
  dispatch::kafka::KafkaPublisher publisher(bench::OurConfig(broker.bootstrap()));
  bench::RawThreadedProducer raw(broker.bootstrap());
  bench::ThreadedCalls calls(topic, publisher, raw);
  // A round lasts about this long on either side: the warm-up's rate sets
  // the messages per thread (at least 20), so a slow broker does not
  // stretch the curve and a fast one still gives each round enough messages.
  const double round_s = quick ? 0.2 : 0.8;
  const int rounds = quick ? 2 : 8;
  std::printf(
      "callers: N threads of blocking Publish against raw (one shared producer, one "
      "report thread, a condition variable per message), 100 B, 4 partitions, rounds "
      "of ~%.1f s, %d rounds, %s broker\n",
      round_s, rounds, broker.kind());
  std::printf("  %-8s %12s %12s %8s %12s %12s %8s %8s %8s\n", "threads", "ours msg/s", "raw msg/s",
              "ratio", "ours us/msg", "raw us/msg", "ratio", "ours cor", "raw cor");
  {
    // Connections, metadata and producer ids, before any rate is taken.
    const std::string value(100, 'v');
    const auto warm = [&](int, int i) {
      return calls.Raw(0, i) &&
             publisher.Publish(dispatch::Context::WithTimeout(30s), {topic, "warm", value, {}})
                 .ok();
    };
    bench::Phase ignored;
    g_failures += bench::RunThreads(1, 50, ignored, warm);
  }
  for (const int threads : {1, 4, 16, 64, 256}) {
    const auto raw_one = [&](int t, int i) { return calls.Raw(t, i); };
    const auto ours_one = [&](int t, int i) { return calls.Ours(t, i); };
    bench::Phase warm_raw;
    bench::Phase warm_ours;
    const int before = g_failures;
    g_failures += bench::RunThreads(threads, 10, warm_raw, raw_one);
    g_failures += bench::RunThreads(threads, 10, warm_ours, ours_one);
    if (g_failures != before) {
      g_failures = before;
      EmitNotRun("callers", threads, "the warm-up publishes failed");
      continue;
    }
    const double warm_rate = static_cast<double>(warm_raw.messages + warm_ours.messages) /
                             (warm_raw.wall_s + warm_ours.wall_s);
    const int per_thread = std::max(20, static_cast<int>(warm_rate * round_s / threads));
    bench::Phase ours_phase;
    bench::Phase raw_phase;
    bench::Alternate(
        rounds, [&] { g_failures += bench::RunThreads(threads, per_thread, raw_phase, raw_one); },
        [&] { g_failures += bench::RunThreads(threads, per_thread, ours_phase, ours_one); });
    const double ours = static_cast<double>(ours_phase.messages) / ours_phase.wall_s;
    const double base = static_cast<double>(raw_phase.messages) / raw_phase.wall_s;
    const double ours_cpu = ours_phase.cpu_s * 1e6 / static_cast<double>(ours_phase.messages);
    const double raw_cpu = raw_phase.cpu_s * 1e6 / static_cast<double>(raw_phase.messages);
    std::printf("  %-8d %12.0f %12.0f %8.2f %12.1f %12.1f %8.2f %8.2f %8.2f\n", threads, ours, base,
                ours / base, ours_cpu, raw_cpu, ours_cpu / raw_cpu,
                ours_phase.cpu_s / ours_phase.wall_s, raw_phase.cpu_s / raw_phase.wall_s);
    EmitPoint(bench::Json()
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

}  // namespace scaling
