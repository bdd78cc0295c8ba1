// B4: resident memory of a publisher after 1,000,000 published messages,
// against after 10,000. Growth beyond a small constant means something on the
// publish path is kept per message (a leak, or a cache that never shrinks).
//
//   publish_rss [--quick] [--messages N] [--brokers LIST]
//
// Messages go out in cycles of one PublishBatch of 990 and 10 blocking
// Publish calls, so both paths are exercised; a third of them carry a header.
// The embedded cluster keeps every record it receives in memory, so it runs
// in a child process: the RSS measured is the publisher's alone.
//
// With --messages 10000 this is the run to check under valgrind or
// LeakSanitizer. Target: growth at most 16 MiB.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.h"
#include "json_line.h"

namespace {

using namespace std::chrono_literals;

constexpr long kMeasureFrom = 10000;

}  // namespace

int main(int argc, char** argv) {
  long messages = 1000000;
  bool quick = false;
  std::string brokers;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--messages" && i + 1 < argc) {
      messages = std::stol(argv[++i]);
    } else if (a == "--brokers" && i + 1 < argc) {
      brokers = argv[++i];
    } else if (a == "--quick") {
      quick = true;
      messages = 200000;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--messages N] [--brokers LIST]\n", argv[0]);
      return 2;
    }
  }
  const std::string topic = "bench-rss";
  // Before any thread exists in this process: the embedded cluster forks.
  const bench::Broker broker(brokers, topic, 4);
  brokers = broker.bootstrap();

  const double rss_start = bench::RssMib();
  double rss_at_10k = -1;
  long failures = 0;
  long published = 0;
  double rss_end = -1;
  {
    dispatch::kafka::KafkaPublisher publisher(bench::OurConfig(brokers));
    std::vector<dispatch::Message> batch;
    for (int i = 0; i < 990; ++i) batch.push_back({topic, "", std::string(100, 'v'), {}});
    long next_report = messages / 10;
    while (published < messages) {
      // Fresh keys and headers every cycle, as a dispatcher's rows would be.
      for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i].key = "order-" + std::to_string((published + static_cast<long>(i)) % 100000);
        batch[i].headers.clear();
        if (i % 3 == 0) batch[i].headers.push_back({"event-type", "OrderPaid"});
      }
      for (const auto& r : publisher.PublishBatch(dispatch::Context::WithTimeout(60s), batch)) {
        if (!r.ok()) ++failures;
      }
      for (int i = 0; i < 10; ++i) {
        const dispatch::Message one{topic, "single-" + std::to_string(i), std::string(100, 's'),
                                    {{"event-type", "OrderShipped"}}};
        if (!publisher.Publish(dispatch::Context::WithTimeout(30s), one).ok()) ++failures;
      }
      published += 1000;
      if (published == kMeasureFrom) rss_at_10k = bench::RssMib();
      if (published >= next_report) {
        std::printf("  %8ld messages: RSS %6.1f MiB\n", published, bench::RssMib());
        std::fflush(stdout);
        next_report += messages / 10;
      }
    }
    rss_end = bench::RssMib();  // still running: a per-publisher cache counts
    (void)publisher.Close();  // the figure is the memory, not the close
  }
  const double rss_closed = bench::RssMib();
  RdKafka::wait_destroyed(5000);
  if (rss_at_10k < 0) rss_at_10k = rss_start;  // fewer than 10,000 messages
  const double growth_mib = rss_end - rss_at_10k;
  std::printf("B4 RSS after %ld published messages%s against after %ld\n", published,
              quick ? " (quick mode: scaled down from 1,000,000)" : "", kMeasureFrom);
  std::printf("  RSS before the publisher   %8.1f MiB\n", rss_start);
  std::printf("  RSS after %7ld messages %8.1f MiB\n", kMeasureFrom, rss_at_10k);
  std::printf("  RSS after %7ld messages %8.1f MiB\n", published, rss_end);
  std::printf("  RSS after Close            %8.1f MiB\n", rss_closed);
  std::printf("  growth                     %8.1f MiB   (target <= 16)\n", growth_mib);
  std::printf("failures: %ld\n", failures);
  bench::Json()
      .Str("scenario", "B4")
      .Int("messages", published)
      .Bool("quick", quick)
      .Num("rss_10k_mib", rss_at_10k, 1)
      .Num("rss_end_mib", rss_end, 1)
      .Num("rss_growth_mib", growth_mib, 2)
      .Int("failures", failures)
      .Print();
  return failures == 0 ? 0 : 1;
}
