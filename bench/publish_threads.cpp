// B3: 16 threads each doing blocking Publish against raw librdkafka as a
// competent user shares one producer between 16 threads, on the same broker,
// in the same run. Rounds alternate between the two (and which goes first),
// so drift on a shared machine hits both alike.
//
//   publish_threads [--quick] [--threads T] [--messages N] [--rounds R]
//                   [--set name=value] [--brokers LIST]
//
// The baseline (bench::RawThreadedProducer): one shared producer with the
// publisher's properties, one thread that serves delivery reports, and a
// condition variable per message on which its caller blocks until the
// report. CPU per message (B6) is user+system time of the whole process
// (getrusage) over each side's rounds.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "json_line.h"

namespace {

using namespace std::chrono_literals;

}  // namespace

int main(int argc, char** argv) {
  int threads = 16;
  int messages = 500;  // per thread per round
  int rounds = 6;
  std::map<std::string, std::string> extra;
  std::string brokers;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--set" && i + 1 < argc) {
      // An extra librdkafka property for our publisher only, for experiments
      // such as --set linger.ms=0.1.
      const std::string kv = argv[++i];
      const auto eq = kv.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "--set wants name=value\n");
        return 2;
      }
      extra[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::stoi(argv[++i]);
    } else if (a == "--messages" && i + 1 < argc) {
      messages = std::stoi(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::stoi(argv[++i]);
    } else if (a == "--brokers" && i + 1 < argc) {
      brokers = argv[++i];
    } else if (a == "--quick") {
      messages = 200;
      rounds = 4;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--threads T] [--messages N] [--rounds R] "
                   "[--set name=value] [--brokers LIST]\n",
                   argv[0]);
      return 2;
    }
  }
  const std::string topic = "bench-threads";
  bench::Broker broker(brokers, topic, 4);
  dispatch::kafka::KafkaConfig config = bench::OurConfig(broker.bootstrap());
  for (const auto& [k, v] : extra) config.properties[k] = v;
  dispatch::kafka::KafkaPublisher publisher(config);
  bench::RawThreadedProducer raw(broker.bootstrap());
  bench::ThreadedCalls calls(topic, publisher, raw);
  const auto raw_one = [&](int t, int i) { return calls.Raw(t, i); };
  const auto ours_one = [&](int t, int i) { return calls.Ours(t, i); };
  {
    // Connections, metadata and producer ids; its failures do not count.
    bench::Phase warm;
    bench::RunThreads(threads, 20, warm, raw_one);
    bench::RunThreads(threads, 20, warm, ours_one);
  }

  int failures = 0;
  bench::Phase raw_phase;
  bench::Phase ours_phase;
  bench::Alternate(
      rounds, [&] { failures += bench::RunThreads(threads, messages, raw_phase, raw_one); },
      [&] { failures += bench::RunThreads(threads, messages, ours_phase, ours_one); });
  const double raw_s = raw_phase.wall_s;
  const double ours_s = ours_phase.wall_s;
  const double total = static_cast<double>(rounds) * threads * messages;
  const double ours = total / ours_s;
  const double base = total / raw_s;
  std::printf("B3 %d threads each doing blocking Publish, %.0f messages of 100 bytes, %s broker\n",
              threads, total, broker.kind());
  // CPU per message and cores busy say whether the 2 cores are the limit;
  // context switches per message say where the CPU goes.
  std::printf("%-40s %12s %12s %10s %12s\n", "", "msg/s", "cpu us/msg", "cores", "switch/msg");
  const auto row = [total](const char* name, double rate, const bench::Phase& p) {
    std::printf("%-40s %12.0f %12.1f %10.2f %12.2f\n", name, rate, p.cpu_s * 1e6 / total,
                p.cpu_s / p.wall_s, p.switches / total);
  };
  row("raw, one report thread, cv per message", base, raw_phase);
  row("dispatch::KafkaPublisher", ours, ours_phase);
  const double ours_cpu = ours_phase.cpu_s * 1e6 / total;
  const double raw_cpu = raw_phase.cpu_s * 1e6 / total;
  std::printf("ratio (ours / baseline)                  %12.2f %12.2f   (targets: msg/s >= 1.3, "
              "aim 1.5; CPU/msg <= 0.8)\n",
              ours / base, ours_cpu / raw_cpu);
  std::printf("failures: %d\n", failures);
  bench::Json()
      .Str("scenario", "B3")
      .Int("threads", threads)
      .Num("threads16_msgs_per_s", ours, 0)
      .Num("baseline_threads16_msgs_per_s", base, 0)
      .Num("threads16_ratio", ours / base)
      .Num("cpu_us_per_msg", ours_cpu, 1)
      .Num("baseline_cpu_us_per_msg", raw_cpu, 1)
      .Num("cpu_per_msg_ratio", ours_cpu / raw_cpu)
      .Num("cores_busy", ours_phase.cpu_s / ours_s, 2)
      .Num("baseline_cores_busy", raw_phase.cpu_s / raw_s, 2)
      .Num("switches_per_msg", ours_phase.switches / total, 2)
      .Num("baseline_switches_per_msg", raw_phase.switches / total, 2)
      .Int("failures", failures)
      .Print();
  return failures == 0 ? 0 : 1;
}
