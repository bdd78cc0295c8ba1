// B7: the first Publish to a topic the publisher has not used yet, against a
// second Publish to the same topic (warm), with raw librdkafka's
// produce-and-wait beside it on the same broker in the same run; and the
// first Publish to a topic that KafkaPublisher::Prepare named before.
//
//   first_publish [--quick] [--rounds N] [--brokers host:port,...]
//
// The topic exists before the first Publish (created and seen with a leader in
// metadata) and the client is connected (it has just published to another
// topic), so the figure is what the client itself adds for an unseen topic:
// librdkafka before 2.10.1 waits for a 1 s metadata timer there
// (docs/librdkafka-versions.md). Without --brokers it runs on the embedded
// cluster in a child process (bench::Broker), which creates the topics on
// command; with --brokers they are created with the admin API. Either way
// a topic is created during the run, and its metadata shows a leader before
// the first Publish.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "json_line.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Series {
  std::vector<double> first_ms;
  std::vector<double> warm_ms;
  double median_first() const { return bench::Percentile(first_ms, 0.5); }
  double median_warm() const { return bench::Percentile(warm_ms, 0.5); }
  double max_first() const { return bench::Percentile(first_ms, 1.0); }
  double max_warm() const { return bench::Percentile(warm_ms, 1.0); }
};

void PrintRow(const char* name, const Series& s) {
  std::printf("%-28s %12.2f %12.2f %12.2f %12.2f %10.1f\n", name, s.median_first(), s.max_first(),
              s.median_warm(), s.max_warm(), s.median_first() / s.median_warm());
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 20;
  std::string brokers;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::stoi(argv[++i]);
    } else if (a == "--brokers" && i + 1 < argc) {
      brokers = argv[++i];
    } else if (a == "--quick") {
      rounds = 5;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--rounds N] [--brokers LIST]\n", argv[0]);
      return 2;
    }
  }
  if (rounds < 1) {
    std::fprintf(stderr, "--rounds must be 1 or more\n");
    return 2;
  }
  // Topic names unique per run, so that a real cluster reused by several runs
  // never hands back a topic some client has already seen.
  const std::string run_id =
      std::to_string(std::chrono::system_clock::now().time_since_epoch() / 1ms % 100'000'000);
  const std::string warm = "bench-first-warm-" + run_id;
  bench::Broker broker(brokers, warm, 1);  // before any thread: it forks
  dispatch::kafka::KafkaPublisher publisher(bench::OurConfig(broker.bootstrap()));
  bench::RawProducer raw(broker.bootstrap());
  const std::string value(100, 'v');
  const auto publish = [&](const std::string& topic) {
    return publisher.Publish(dispatch::Context::WithTimeout(10s), {topic, "k", value, {}}).ok();
  };

  int failures = 0;
  // Connections, metadata and producer id, for both clients.
  for (int i = 0; i < 20; ++i) {
    if (!publish(warm)) ++failures;
    if (!raw.ProduceAndWait(warm, "k", value)) ++failures;
  }
  Series ours;
  Series prepared;  // the first publish after Prepare named the topic
  Series base;
  std::vector<double> prepare_ms;
  for (int r = 0; r < rounds; ++r) {
    // One new topic per client, so neither learns about it from the other.
    const std::string ours_topic = "bench-first-ours-" + run_id + "-" + std::to_string(r);
    const std::string raw_topic = "bench-first-raw-" + run_id + "-" + std::to_string(r);
    const std::string prepared_topic = "bench-first-prepared-" + run_id + "-" + std::to_string(r);
    broker.CreateTopic({ours_topic});
    broker.CreateTopic({raw_topic});
    broker.CreateTopic({prepared_topic});

    if (!publish(warm)) ++failures;
    auto t0 = Clock::now();
    if (!publish(ours_topic)) ++failures;
    ours.first_ms.push_back(MsSince(t0));
    t0 = Clock::now();
    if (!publish(ours_topic)) ++failures;
    ours.warm_ms.push_back(MsSince(t0));

    t0 = Clock::now();
    const std::vector<std::string> named = {prepared_topic};
    if (!publisher.Prepare(dispatch::Context::WithTimeout(10s), named).at(0).ok()) ++failures;
    prepare_ms.push_back(MsSince(t0));
    t0 = Clock::now();
    if (!publish(prepared_topic)) ++failures;
    prepared.first_ms.push_back(MsSince(t0));
    t0 = Clock::now();
    if (!publish(prepared_topic)) ++failures;
    prepared.warm_ms.push_back(MsSince(t0));

    if (!raw.ProduceAndWait(warm, "k", value)) ++failures;
    t0 = Clock::now();
    if (!raw.ProduceAndWait(raw_topic, "k", value)) ++failures;
    base.first_ms.push_back(MsSince(t0));
    t0 = Clock::now();
    if (!raw.ProduceAndWait(raw_topic, "k", value)) ++failures;
    base.warm_ms.push_back(MsSince(t0));
  }

  std::printf("B7 first publish to a topic not used yet, %d rounds, %s broker, librdkafka %s\n",
              rounds, broker.kind(), rd_kafka_version_str());
  std::printf("%-28s %12s %12s %12s %12s %10s\n", "", "first p50 ms", "first max ms", "warm p50 ms",
              "warm max ms", "first/warm");
  PrintRow("raw librdkafka (baseline)", base);
  PrintRow("dispatch::KafkaPublisher", ours);
  PrintRow("  after Prepare(topic)", prepared);
  std::printf("Prepare itself: p50 %.2f ms, max %.2f ms\n", bench::Percentile(prepare_ms, 0.5),
              bench::Percentile(prepare_ms, 1.0));
  std::printf(
      "ratio (ours / baseline), first p50 %.2f, warm p50 %.2f; after Prepare, first p50 %.2f\n",
      ours.median_first() / base.median_first(), ours.median_warm() / base.median_warm(),
      prepared.median_first() / base.median_first());
  std::printf("failures: %d\n", failures);
  bench::Json()
      .Str("scenario", "B7")
      .Str("librdkafka", rd_kafka_version_str())
      .Str("broker", broker.kind())
      .Int("rounds", rounds)
      .Num("first_p50_ms", ours.median_first(), 2)
      .Num("first_max_ms", ours.max_first(), 2)
      .Num("warm_p50_ms", ours.median_warm(), 2)
      .Num("warm_max_ms", ours.max_warm(), 2)
      .Num("first_warm_ratio", ours.median_first() / ours.median_warm(), 2)
      .Num("baseline_first_p50_ms", base.median_first(), 2)
      .Num("baseline_first_max_ms", base.max_first(), 2)
      .Num("baseline_warm_p50_ms", base.median_warm(), 2)
      .Num("baseline_first_warm_ratio", base.median_first() / base.median_warm(), 2)
      .Num("prepared_first_p50_ms", prepared.median_first(), 2)
      .Num("prepare_p50_ms", bench::Percentile(prepare_ms, 0.5), 2)
      .Int("failures", failures)
      .Print();
  return failures == 0 ? 0 : 1;
}
