// How late Publish returns after its deadline when the broker does not answer
// in time (RTT far above the deadline), and after a stop request; and how late
// a PublishBatch of 300,000 small messages returns when its deadline or stop
// request comes while it is still handing messages over. The design aims at
// under 10 ms; librdkafka's own timers are not used for this bound.
//
//   deadline_lateness [--calls N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

void Print(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("%-34s p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%zu calls)\n", what,
              ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], ms.back(),
              ms.size());
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 50;
  if (argc == 3 && std::string(argv[1]) == "--calls") calls = std::stoi(argv[2]);
  dispatch::testing::EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("lateness", 1, 1);
  dispatch::kafka::KafkaPublisher publisher(dispatch::kafka::DefaultKafkaConfig(cluster.Brokers()));
  if (!publisher.Publish(dispatch::Context::WithTimeout(10s), {"lateness", "k", "warm", {}}).ok()) {
    std::fprintf(stderr, "warm-up publish failed\n");
    return 1;
  }
  cluster.SetRtt(-1, 5000ms);

  std::vector<double> deadline_late;
  std::vector<double> cancel_late;
  for (int i = 0; i < calls; ++i) {
    const auto deadline = Clock::now() + 20ms;
    const auto r =
        publisher.Publish(dispatch::Context::WithDeadline(deadline), {"lateness", "k", "v", {}});
    deadline_late.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - deadline).count());
    if (r.code != dispatch::ErrorCode::kDeadlineExceeded) return 1;

    std::stop_source source;
    Clock::time_point stopped_at;
    std::jthread stopper([&] {
      std::this_thread::sleep_for(20ms);
      stopped_at = Clock::now();
      source.request_stop();
    });
    const auto c = publisher.Publish(dispatch::Context::WithStopToken(source.get_token()),
                                     {"lateness", "k", "v", {}});
    const auto returned = Clock::now();
    stopper.join();
    cancel_late.push_back(std::chrono::duration<double, std::milli>(returned - stopped_at).count());
    if (c.code != dispatch::ErrorCode::kCancelled) return 1;
  }
  std::printf("Publish lateness, broker RTT 5 s (embedded cluster)\n");
  Print("after the context deadline", deadline_late);
  Print("after the stop request", cancel_late);

  // Batches: a fresh publisher per round, so that earlier rounds' messages
  // (still waiting for the slow broker) do not fill its local queue.
  const std::vector<dispatch::Message> batch(300'000, {"lateness", "k", "0123456789", {}});
  std::vector<double> batch_deadline_late;
  std::vector<double> batch_cancel_late;
  std::size_t not_produced = 0;
  const int rounds = std::max(3, calls / 10);
  for (int i = 0; i < rounds; ++i) {
    auto config = dispatch::kafka::DefaultKafkaConfig(cluster.Brokers());
    config.close_timeout = 0ms;
    config.properties["queue.buffering.max.messages"] = "1000000";
    dispatch::kafka::KafkaPublisher fresh(config);
    const auto deadline = Clock::now() + 50ms;
    const auto results = fresh.PublishBatch(dispatch::Context::WithDeadline(deadline), batch);
    batch_deadline_late.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - deadline).count());
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
    batch_cancel_late.push_back(
        std::chrono::duration<double, std::milli>(returned - stopped_at).count());
  }
  std::printf("PublishBatch of 300,000 x 10 B lateness, 50 ms bound, broker RTT 5 s\n");
  Print("after the context deadline", batch_deadline_late);
  Print("after the stop request", batch_cancel_late);
  std::printf("messages not handed over (not_delivered) per deadline round: %zu\n",
              not_produced / static_cast<std::size_t>(rounds));
  cluster.SetRtt(-1, 0ms);
  return 0;
}
