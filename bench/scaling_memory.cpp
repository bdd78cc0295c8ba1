// bench/scaling --curve memory: resident memory with messages in flight.
//
// Resident memory with 10 .. 100,000 messages of 100 B in flight. Each side of
// each point runs in a process of its own (RSS does not shrink reliably), with
// an embedded cluster of its own that holds every response back (SetRtt 30 s)
// once the producer is warm, so the messages stay in flight. Needs the
// embedded cluster: with --brokers it is not run.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "scaling.h"

namespace scaling {

using namespace std::chrono_literals;

namespace {

constexpr auto kHoldRtt = 30s;  // longer than a measurement, so nothing is answered

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
  int status = 0;
  std::string output;
  try {
    output = bench::RunToEnd(
        {self, "--curve", "memory", "--side", side, "--in-flight", std::to_string(in_flight)},
        status);
  } catch (const std::runtime_error& e) {
    why = e.what();
    return "";
  }
  const auto start = output.rfind("{\"run\"");
  if (start == std::string::npos) {
    why = side + " process exited with status " + std::to_string(status) + " and no result";
    return "";
  }
  return output.substr(start, output.find('\n', start) - start);
}

}  // namespace

// One side of one memory point, in a process of its own: warm up with the
// broker answering, then hold every response back, put `in_flight`
// messages in flight, and print the RSS before and with them as JSON.
void MemorySide(const std::string& side, long in_flight) {
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
      bench::Json().Bool("run", false).Str("reason", err).Print();
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
      bench::Json().Bool("run", false).Str("reason", raw->last_error()).Print();
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
  bench::Json()
      .Bool("run", true)
      .Str("side", side)
      .Int("in_flight", in_flight)
      .Int("reported_in_flight", reported)
      .Num("rss_base_mib", rss_base, 2)
      .Num("rss_mib", rss, 2)
      .Print();
  // The producer cannot be closed while the broker holds its responses;
  // the figures are out, so leave without waiting (the cluster's process
  // stops when its pipe closes).
  std::_Exit(0);
}

int CurveMemory(const std::string& brokers, bool quick) {
  const std::vector<long> points = {10, 1000, 100000};
  const int rounds = quick ? 1 : 3;
  std::printf(
      "memory: RSS with N messages of 100 B in flight (broker holding its responses), one "
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
      for (const auto& j : results[side]) v.push_back(bench::JsonNumber(j, key));
      return Median(v);
    };
    const auto growth = [&](const std::string& side) {
      std::vector<double> v;
      for (const auto& j : results[side])
        v.push_back(bench::JsonNumber(j, "rss_mib") - bench::JsonNumber(j, "rss_base_mib"));
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
    EmitPoint(bench::Json()
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

}  // namespace scaling
