// What the curves of bench/scaling share (scaling.cpp holds their bodies and
// main): the run's points and failures, which the curve's last JSON line
// reports, and timing batches of both sides. One function per curve, each in
// scaling_CURVE.cpp.
#pragma once

#include <string>
#include <vector>

#include "bench_util.h"
#include "json_line.h"

namespace scaling {

extern int g_failures;               // failed messages in measured rounds
extern std::string g_first_failure;  // the first one's text, with its side

// Prints a point's JSON line and keeps it for the curve's last line.
void EmitPoint(const bench::Json& j);
// A point that did not run, and why.
void EmitNotRun(const std::string& curve, double x, const std::string& reason);
// Keeps `text` (when not empty) as the run's first failure, with its side.
void NoteFailure(const std::string& side, const std::string& text);

double Median(const std::vector<double>& v);
double Sum(const std::vector<double>& v);

// The first failure's text among `results`, empty when all are ok; counts
// the failures into `failed`.
std::string FirstError(const std::vector<dispatch::Result>& results, int& failed);

// Publishes `batch` once on each side (connections, metadata, producer ids);
// "" when both succeeded, else the point's reason for not running.
std::string WarmUp(dispatch::kafka::KafkaPublisher& publisher, bench::RawBatchProducer& raw,
                   const std::vector<dispatch::Message>& batch);

// One PublishBatch against one raw produce-all-then-flush per round; the
// seconds each batch took. Warms both up first (WarmUp).
struct BatchTimes {
  std::vector<double> ours_s;
  std::vector<double> raw_s;
  std::string not_run;  // non-empty: the point did not run, and why
  int failures = 0;     // failed messages in the measured rounds, both sides
};
BatchTimes TimeBatches(dispatch::kafka::KafkaPublisher& publisher, bench::RawBatchProducer& raw,
                       const std::vector<dispatch::Message>& batch, int rounds);

// The curves: each prints its table and one JSON line per point; 0 when it
// ran (its points may still have failed messages, counted in g_failures).
int CurveSize(const std::string& brokers, bool quick);
int CurveCallers(const std::string& brokers, bool quick);
int CurvePartitions(const std::string& brokers, bool quick);
int CurveCompression(const std::string& brokers, bool quick);
int CurveMemory(const std::string& brokers, bool quick);

// One side ("ours" or "raw") of one memory point, in a process of its own
// (scaling --curve memory --side SIDE --in-flight N); never returns.
[[noreturn]] void MemorySide(const std::string& side, long in_flight);

}  // namespace scaling
