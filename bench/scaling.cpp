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
// Each curve is in a file of its own (scaling_size.cpp, scaling_callers.cpp,
// scaling_partitions.cpp, scaling_compression.cpp, scaling_memory.cpp); what
// they share, declared in scaling.h, is here: the points and failures of the
// run, and timing PublishBatch against raw produce-all-then-flush.
//
// Output: a table for people, one JSON line per point, and a last JSON line
// holding the whole curve ({"curve": ..., "points": [...]}). A point that
// cannot run (its warm-up fails on either side) is printed as not run with
// librdkafka's reason, and its JSON has "run": false and "reason".
#include "scaling.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace scaling {

using namespace std::chrono_literals;

int g_failures = 0;
std::string g_first_failure;

namespace {
std::vector<std::string> g_points;  // every point's JSON, for the curve's last line
}  // namespace

void EmitPoint(const bench::Json& j) {
  g_points.push_back(j.str());
  j.Print();
}

void EmitNotRun(const std::string& curve, double x, const std::string& reason) {
  std::printf("  %-10.0f not run: %s\n", x, reason.c_str());
  EmitPoint(
      bench::Json().Str("curve", curve).Num("x", x, 0).Bool("run", false).Str("reason", reason));
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

std::string FirstError(const std::vector<dispatch::Result>& results, int& failed) {
  std::string first;
  for (const auto& r : results) {
    if (r.ok()) continue;
    ++failed;
    if (first.empty()) first = r.message;
  }
  return first;
}

std::string WarmUp(dispatch::kafka::KafkaPublisher& publisher, bench::RawBatchProducer& raw,
                   const std::vector<dispatch::Message>& batch) {
  int failed = 0;
  const std::string ours_err =
      FirstError(publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch), failed);
  if (!ours_err.empty()) return "dispatch-kafka: " + ours_err;
  if (raw.ProduceAll(batch) != 0) return "raw librdkafka: " + raw.last_error();
  return "";
}

BatchTimes TimeBatches(dispatch::kafka::KafkaPublisher& publisher, bench::RawBatchProducer& raw,
                       const std::vector<dispatch::Message>& batch, int rounds) {
  BatchTimes t;
  t.not_run = WarmUp(publisher, raw, batch);
  if (!t.not_run.empty()) return t;
  const int failures_before = g_failures;
  bench::Alternate(
      rounds,
      [&] {
        const auto t0 = bench::Clock::now();
        g_failures += raw.ProduceAll(batch);
        t.raw_s.push_back(bench::SecondsSince(t0));
        NoteFailure("raw librdkafka", raw.last_error());
      },
      [&] {
        const auto t0 = bench::Clock::now();
        const auto results = publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch);
        t.ours_s.push_back(bench::SecondsSince(t0));
        NoteFailure("dispatch-kafka", FirstError(results, g_failures));
      });
  t.failures = g_failures - failures_before;
  return t;
}

}  // namespace scaling

int main(int argc, char** argv) {
  using namespace scaling;
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
      std::fprintf(stderr,
                   "--side ours|raw needs --curve memory and --in-flight N > 0, and "
                   "runs on its own embedded cluster (no --brokers)\n");
      return 2;
    }
    MemorySide(side, in_flight);
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
  std::printf("failures: %d%s%s\n", g_failures,
              g_first_failure.empty() ? "" : ", the first: ", g_first_failure.c_str());
  bench::Json()
      .Str("curve", curve)
      .Bool("quick", quick)
      .Str("broker", brokers.empty() ? "embedded" : "real")
      .Num("seconds", bench::SecondsSince(t0), 1)
      .Int("failures", g_failures)
      .Str("first_failure", g_first_failure)
      .Raw("points", "[" + points + "]")
      .Print();
  return code != 0 || g_failures != 0 ? 1 : 0;
}
