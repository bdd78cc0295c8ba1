// How late Publish returns after its deadline when the broker does not answer
// in time (RTT far above the deadline), and after a stop request; and how late
// a PublishBatch of 300,000 small messages returns when its deadline or stop
// request comes while it is still handing messages over. The design aims at
// under 10 ms; librdkafka's own timers are not used for this bound.
//
// Baseline, same broker, same run: raw librdkafka (the publisher's
// properties) with the same 20 ms as its message.timeout.ms, the bound
// librdkafka itself offers; how late its delivery report comes after that.
//
//   deadline_lateness [--quick] [--calls N]
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "json_line.h"

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto kBound = 20ms;  // Publish's deadline, and the baseline's message.timeout.ms

double MsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

void Print(const char* what, const std::vector<double>& ms) {
  std::printf("%-34s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%zu calls)\n", what,
              bench::Percentile(ms, 0.5), bench::Percentile(ms, 0.99), bench::Percentile(ms, 1.0),
              ms.size());
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 50;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--calls" && i + 1 < argc) {
      calls = std::stoi(argv[++i]);
    } else if (a == "--quick") {
      calls = 10;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--calls N]\n", argv[0]);
      return 2;
    }
  }
  if (calls < 1) {
    std::fprintf(stderr, "--calls must be 1 or more\n");
    return 2;
  }
  bench::Broker broker("", "lateness", 1);  // before any thread: it forks
  dispatch::kafka::KafkaPublisher publisher(bench::OurConfig(broker.bootstrap()));
  // The baseline's bound is librdkafka's own timer: message.timeout.ms
  // (which the publisher leaves at 0 under acks All and enforces itself).
  bench::RawProducer raw(bench::OurConfig(broker.bootstrap()),
                         {{"message.timeout.ms", std::to_string(kBound.count())}});
  bool warm =
      publisher.Publish(dispatch::Context::WithTimeout(10s), {"lateness", "k", "warm", {}}).ok();
  // The baseline's first message may outlive 20 ms (connection, producer id).
  bool raw_warm = false;
  for (int i = 0; i < 5 && !raw_warm; ++i) raw_warm = raw.ProduceAndWait("lateness", "k", "warm");
  if (!warm || !raw_warm) {
    std::fprintf(stderr, "warm-up publish failed\n");
    return 1;
  }
  broker.SetRtt(5000ms);

  std::vector<double> deadline_late;
  std::vector<double> cancel_late;
  for (int i = 0; i < calls; ++i) {
    const auto deadline = Clock::now() + kBound;
    const auto r =
        publisher.Publish(dispatch::Context::WithDeadline(deadline), {"lateness", "k", "v", {}});
    deadline_late.push_back(MsBetween(deadline, Clock::now()));
    if (r.code != dispatch::ErrorCode::kDeadlineExceeded) return 1;

    std::stop_source source;
    Clock::time_point stopped_at;
    std::jthread stopper([&] {
      std::this_thread::sleep_for(kBound);
      stopped_at = Clock::now();
      source.request_stop();
    });
    const auto c = publisher.Publish(dispatch::Context::WithStopToken(source.get_token()),
                                     {"lateness", "k", "v", {}});
    const auto returned = Clock::now();
    stopper.join();
    cancel_late.push_back(MsBetween(stopped_at, returned));
    if (c.code != dispatch::ErrorCode::kCancelled) return 1;
  }
  // Each call waits for librdkafka's own timers (up to seconds): fewer calls.
  std::vector<double> raw_late;
  int raw_unreported = 0;
  const int raw_calls = std::max(3, calls / 5);
  for (int i = 0; i < raw_calls; ++i) {
    const auto deadline = Clock::now() + kBound;
    if (raw.ProduceAndWait("lateness", "k", "v")) return 1;  // delivered despite the RTT
    raw_late.push_back(MsBetween(deadline, Clock::now()));
    if (!raw.reported()) ++raw_unreported;
  }
  std::printf("Publish lateness, %lld ms bound, broker RTT 5 s (embedded cluster), librdkafka %s\n",
              static_cast<long long>(kBound.count()), rd_kafka_version_str());
  Print("after the context deadline", deadline_late);
  Print("after the stop request", cancel_late);
  Print("raw librdkafka message.timeout.ms", raw_late);
  if (raw_unreported > 0) {
    std::printf("  of which %d had no report after 10 s (counted as 10 s)\n", raw_unreported);
  }

  // Batches: a fresh publisher per round, so that earlier rounds' messages
  // (still waiting for the slow broker) do not fill its local queue.
  const std::vector<dispatch::Message> batch(300'000, {"lateness", "k", "0123456789", {}});
  std::vector<double> batch_deadline_late;
  std::vector<double> batch_cancel_late;
  std::size_t not_produced = 0;
  const int rounds = std::max(3, calls / 10);
  for (int i = 0; i < rounds; ++i) {
    auto config = bench::OurConfig(broker.bootstrap());
    config.close_timeout = 0ms;
    config.properties["queue.buffering.max.messages"] = "1000000";
    dispatch::kafka::KafkaPublisher fresh(config);
    const auto deadline = Clock::now() + 50ms;
    const auto results = fresh.PublishBatch(dispatch::Context::WithDeadline(deadline), batch);
    batch_deadline_late.push_back(MsBetween(deadline, Clock::now()));
    for (const auto& r : results) {
      if (r.delivery == dispatch::Delivery::kNotDelivered) ++not_produced;
    }

    std::stop_source source;
    Clock::time_point stopped_at;
    std::jthread stopper([&] {
      std::this_thread::sleep_for(50ms);
      stopped_at = Clock::now();
      source.request_stop();
    });
    dispatch::kafka::KafkaPublisher fresh2(config);
    const auto cancelled =
        fresh2.PublishBatch(dispatch::Context::WithStopToken(source.get_token()), batch);
    const auto returned = Clock::now();
    stopper.join();
    batch_cancel_late.push_back(MsBetween(stopped_at, returned));
  }
  const auto not_handed_over = not_produced / static_cast<std::size_t>(rounds);
  std::printf("PublishBatch of 300,000 x 10 B lateness, 50 ms bound, broker RTT 5 s\n");
  Print("after the context deadline", batch_deadline_late);
  Print("after the stop request", batch_cancel_late);
  std::printf("messages not handed over (not_delivered) per deadline round: %zu\n",
              not_handed_over);
  broker.SetRtt(0ms);
  const double raw_p50 = bench::Percentile(raw_late, 0.5);
  std::printf("ratio (ours / baseline), after the deadline p50 %.4f\n",
              bench::Percentile(deadline_late, 0.5) / raw_p50);
  bench::Json()
      .Str("scenario", "deadline_lateness")
      .Str("librdkafka", rd_kafka_version_str())
      .Str("broker", broker.kind())
      .Int("calls", calls)
      .Num("deadline_p50_ms", bench::Percentile(deadline_late, 0.5), 2)
      .Num("deadline_p99_ms", bench::Percentile(deadline_late, 0.99), 2)
      .Num("deadline_max_ms", bench::Percentile(deadline_late, 1.0), 2)
      .Num("stop_p50_ms", bench::Percentile(cancel_late, 0.5), 2)
      .Num("stop_max_ms", bench::Percentile(cancel_late, 1.0), 2)
      .Int("baseline_calls", raw_calls)
      .Num("baseline_timeout_p50_ms", raw_p50, 2)
      .Num("baseline_timeout_max_ms", bench::Percentile(raw_late, 1.0), 2)
      .Int("baseline_unreported", raw_unreported)
      .Num("deadline_p50_ratio", bench::Percentile(deadline_late, 0.5) / raw_p50, 4)
      .Num("batch_deadline_p50_ms", bench::Percentile(batch_deadline_late, 0.5), 2)
      .Num("batch_deadline_max_ms", bench::Percentile(batch_deadline_late, 1.0), 2)
      .Num("batch_stop_p50_ms", bench::Percentile(batch_cancel_late, 0.5), 2)
      .Num("batch_stop_max_ms", bench::Percentile(batch_cancel_late, 1.0), 2)
      .Int("batch_not_handed_over", static_cast<long long>(not_handed_over))
      .Print();
  return 0;
}
