// B1: single-thread blocking Publish against raw librdkafka produce-and-wait,
// on the same broker, in the same run, interleaved round by round so that
// drift on a shared machine hits both alike.
//
//   publish_latency [--quick] [--messages N] [--rounds R] [--brokers host:port,...]
//                   [--samples FILE]
//
// --samples writes every latency (microseconds) as CSV lines "raw,ours", for
// the latency chart of bench/run.py --report.
//
// Without --brokers it runs on an embedded cluster (in a child process). The
// baseline is what a hand-written wrapper does: produce one message with the
// same settings (the publisher's librdkafka properties, bench_util.h), then
// poll until its delivery report arrives. CPU per message (B6) is this
// process's user+system time (getrusage) around each call.
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "json_line.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Stats {
  double p50_us = 0;
  double p99_us = 0;
  double msgs_per_s = 0;
};

Stats Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double total = 0;
  for (double v : us) total += v;
  Stats s;
  s.p50_us = us[us.size() / 2];
  s.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  s.msgs_per_s = static_cast<double>(us.size()) / (total / 1e6);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int messages = 2000;
  int rounds = 5;
  std::string brokers;
  std::string samples_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--messages" && i + 1 < argc) {
      messages = std::stoi(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::stoi(argv[++i]);
    } else if (a == "--brokers" && i + 1 < argc) {
      brokers = argv[++i];
    } else if (a == "--samples" && i + 1 < argc) {
      samples_path = argv[++i];
    } else if (a == "--quick") {
      messages = 500;
      rounds = 3;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--messages N] [--rounds R] [--brokers LIST] "
                   "[--samples FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  const std::string topic = "bench-latency";
  const bench::Broker broker(brokers, topic, 1);
  dispatch::kafka::KafkaPublisher publisher(bench::OurConfig(broker.bootstrap()));
  bench::RawProducer raw(broker.bootstrap());
  const std::string value(100, 'v');

  // Warm both up: connections, metadata, producer id.
  for (int i = 0; i < 200; ++i) {
    raw.ProduceAndWait(topic, "warm", value);
    (void)publisher.Publish(dispatch::Context::WithTimeout(10s), {topic, "warm", value, {}});
  }

  std::vector<double> ours_us;
  std::vector<double> raw_us;
  double ours_cpu_s = 0;
  double raw_cpu_s = 0;
  int failures = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < messages; ++i) {
      const std::string key = "key-" + std::to_string(i % 64);
      // CPU time (B6) is read around each call, outside its timed part.
      const auto run_raw = [&] {
        const double cpu0 = bench::CpuSeconds();
        const auto t0 = Clock::now();
        if (!raw.ProduceAndWait(topic, key, value)) ++failures;
        raw_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        raw_cpu_s += bench::CpuSeconds() - cpu0;
      };
      const auto run_ours = [&] {
        const double cpu0 = bench::CpuSeconds();
        const auto t0 = Clock::now();
        if (!publisher.Publish(dispatch::Context::WithTimeout(10s), {topic, key, value, {}}).ok()) {
          ++failures;
        }
        ours_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        ours_cpu_s += bench::CpuSeconds() - cpu0;
      };
      bench::InTurn(i, run_raw, run_ours);
    }
  }
  const Stats ours = Summarize(ours_us);
  const Stats base = Summarize(raw_us);
  std::printf("B1 single-thread blocking publish, %d messages of %zu bytes, %s broker\n",
              messages * rounds, value.size(), broker.kind());
  const double n = static_cast<double>(ours_us.size());
  const double ours_cpu = ours_cpu_s * 1e6 / n;
  const double raw_cpu = raw_cpu_s * 1e6 / n;
  std::printf("%-28s %10s %10s %12s %12s\n", "", "p50 us", "p99 us", "msg/s", "cpu us/msg");
  std::printf("%-28s %10.1f %10.1f %12.0f %12.1f\n", "raw librdkafka (baseline)", base.p50_us,
              base.p99_us, base.msgs_per_s, raw_cpu);
  std::printf("%-28s %10.1f %10.1f %12.0f %12.1f\n", "dispatch::KafkaPublisher", ours.p50_us,
              ours.p99_us, ours.msgs_per_s, ours_cpu);
  std::printf("ratio (ours / baseline)      %10.2f %10.2f %12.2f %12.2f\n",
              ours.p50_us / base.p50_us, ours.p99_us / base.p99_us,
              ours.msgs_per_s / base.msgs_per_s, ours_cpu / raw_cpu);
  std::printf("failures: %d\n", failures);
  if (!samples_path.empty()) {
    std::ofstream out(samples_path);
    out << "raw_us,ours_us\n";
    for (std::size_t i = 0; i < ours_us.size(); ++i) out << raw_us[i] << ',' << ours_us[i] << '\n';
  }
  bench::Json()
      .Str("scenario", "B1")
      .Num("latency_p50_us", ours.p50_us, 1)
      .Num("baseline_p50_us", base.p50_us, 1)
      .Num("latency_p50_ratio", ours.p50_us / base.p50_us)
      .Num("latency_p99_us", ours.p99_us, 1)
      .Num("baseline_p99_us", base.p99_us, 1)
      .Num("latency_p99_ratio", ours.p99_us / base.p99_us)
      .Num("msgs_per_s", ours.msgs_per_s, 0)
      .Num("baseline_msgs_per_s", base.msgs_per_s, 0)
      .Num("cpu_us_per_msg", ours_cpu, 2)
      .Num("baseline_cpu_us_per_msg", raw_cpu, 2)
      .Num("cpu_per_msg_ratio", ours_cpu / raw_cpu)
      .Int("failures", failures)
      .Print();
  return failures == 0 ? 0 : 1;
}
