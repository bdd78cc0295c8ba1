// Soak on the real three-node cluster: a million keyed messages while, in
// turn, brokers are killed, frozen and shut down and brought back, so that
// partition leadership keeps moving. These are the faults that the embedded
// cluster's soak (tests/reliability/soak_test.cpp) leaves out: the embedded
// cluster does not check idempotent sequence numbers (see embedded_kafka.h).
//
// Afterwards kcat reads the topic: every message with an ok result is there,
// the messages of each key are in the order they were published, and a
// message is there twice only as librdkafka documents it, in flight when a
// producer epoch ended and written again under a later one (see
// RealKafka::OriginsOf). The publisher's resident memory is compared with its
// early value (the brokers are other processes).
#include "soak.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "kafka/real_kafka.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using namespace std::chrono_literals;
using dispatch::suite::Duplicate;
using dispatch::suite::DuplicateOrigin;
using dispatch::suite::RealKafka;
using dispatch::suite::RssMiB;
using dispatch::suite::WaitFor;
using dispatch::testing::Record;
using Clock = std::chrono::steady_clock;

// The stream's shape (tests/soak.h): KeyOf follows it.
constexpr int kThreads = dispatch::suite::SoakStream::kThreads;
constexpr int kBatch = dispatch::suite::SoakStream::kBatch;
constexpr int kKeysPerThread = 100;
constexpr int kPartitions = 12;
// The stream is paced to last about this long (unpaced, a million messages
// take some 25 s here, less than one broker restart): the faults come in turn
// while it runs, as they would during a day of a dispatcher's traffic.
constexpr auto kStreamTime = std::chrono::seconds(90);
// DISPATCH_KAFKA_REAL_SOAK_MESSAGES overrides the count (for a quick local run).
// DISPATCH_KAFKA_REAL_SOAK_WRITE_TIMEOUT_MS, when set, is KafkaConfig::write_timeout
// (message.timeout.ms) in milliseconds instead of the default: a short one makes
// messages time out inside librdkafka during a fault, which is what ends a
// producer epoch (docs/librdkafka-versions.md compares librdkafka versions so).
const int kMessages = [] {
  const char* env = std::getenv("DISPATCH_KAFKA_REAL_SOAK_MESSAGES");
  return env != nullptr ? std::atoi(env) : 1'000'000;
}();

// The write timeout from DISPATCH_KAFKA_REAL_SOAK_WRITE_TIMEOUT_MS, or nullopt
// when it is unset; *error names the variable and value when it is not a
// non-negative whole number of milliseconds.
std::optional<std::chrono::milliseconds> WriteTimeoutFromEnvironment(std::string* error) {
  constexpr const char* kName = "DISPATCH_KAFKA_REAL_SOAK_WRITE_TIMEOUT_MS";
  const char* env = std::getenv(kName);
  if (env == nullptr) return std::nullopt;
  const std::string value = env;
  long long ms = -1;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || ms < 0) {
    *error =
        std::string(kName) + "=\"" + value + "\" is not a whole number of milliseconds (0 or more)";
    return std::nullopt;
  }
  return std::chrono::milliseconds(ms);
}

// Message i belongs to thread (i / kBatch) % kThreads, like the batches
// below; its key is one of that thread's keys, and its value "<i>".
std::string KeyOf(int i) {
  const int thread = (i / kBatch) % kThreads;
  return "t" + std::to_string(thread) + "-k" + std::to_string(i % kKeysPerThread);
}

std::string OutcomeName(std::uint8_t outcome) {  // 1 + Delivery, 0: none
  return outcome == 0 ? "no result" : std::string(ToString(static_cast<Delivery>(outcome - 1)));
}

TEST(RealKafkaSoak, AMillionMessagesWhileBrokersDieFreezeAndRestart) {
  ASSERT_GE(kMessages, 10'000) << "DISPATCH_KAFKA_REAL_SOAK_MESSAGES must be 10000 or more";
  std::string timeout_error;
  const std::optional<std::chrono::milliseconds> write_timeout =
      WriteTimeoutFromEnvironment(&timeout_error);
  ASSERT_TRUE(timeout_error.empty()) << timeout_error;
  std::string why;
  std::optional<RealKafka> kafka = RealKafka::FromEnvironment(&why);
  ASSERT_TRUE(kafka.has_value()) << why;
  if (!kafka->ControlsProcesses() || kafka->NodeCount() < 3) {
    GTEST_SKIP() << "needs the three-node cluster that the CTest fixture starts "
                    "(brokers are killed, frozen and restarted)";
  }
  ASSERT_TRUE(WaitFor([&] { return kafka->LiveBrokers().size() == kafka->NodeCount(); }, 90s))
      << "not every broker is registered";
  const std::string topic = RealKafka::UniqueTopic("soak");
  kafka->CreateTopic(topic, kPartitions, 3);

  KafkaConfig config = DefaultKafkaConfig(kafka->Brokers());
  if (write_timeout.has_value()) config.write_timeout = *write_timeout;
  // Bigger record batches, as a throughput-minded dispatcher would set.
  config.properties["linger.ms"] = "5";
  // The producer epoch, from librdkafka's statistics: librdkafka starts a
  // new one after a message timed out inside it (see the duplicate check).
  std::atomic<int> last_epoch{0};
  config.statistics_interval = 500ms;
  config.statistics = [&](std::string_view json) {
    const std::string_view field = "\"producer_epoch\":";
    const auto at = json.find(field);
    if (at != std::string_view::npos) {
      last_epoch.store(std::atoi(std::string(json.substr(at + field.size(), 12)).c_str()));
    }
  };
  const dispatch::suite::LogFile debug_log = dispatch::suite::SoakDebugLog(config);
  KafkaPublisher publisher(config);

  // 1 + the Delivery of each message's result (0: no result yet).
  std::vector<std::atomic<std::uint8_t>> outcome(kMessages);
  std::atomic<int> fatal_results{0};  // kFatal: the producer became unusable
  std::mutex fatal_mu;
  std::string first_fatal;  // the first kFatal result's text (librdkafka's reason)
  // The last 10% of the stream waits until every kind of fault has been
  // injected once, so that a slow machine cannot end the stream early (a
  // fault injected while the stream waits there shows 0 acknowledged in its
  // figures line; on an idle machine the faults are over long before).
  std::atomic<bool> every_kind_injected{false};
  std::atomic<int> at_the_gate{0};  // threads that reached the last 10%
  const auto start = Clock::now();
  suite::SoakStream stream(
      publisher, kMessages,
      [&](int i) -> Message {
        return {topic, KeyOf(i), std::to_string(i), {}};
      },
      [&](int i, const Result& result) {
        outcome[i].store(1 + static_cast<std::uint8_t>(result.delivery));
        if (result.code == ErrorCode::kFatal && fatal_results.fetch_add(1) == 0) {
          const std::lock_guard lock(fatal_mu);
          first_fatal = result.message;
        }
      },
      [&](int first) {
        std::this_thread::sleep_until(start + std::chrono::milliseconds(kStreamTime) * first /
                                                  kMessages);  // the pace
        // Each thread's batches ascend, so it crosses into the last 10% once.
        if (first >= kMessages / 10 * 9 && first - kThreads * kBatch < kMessages / 10 * 9) {
          at_the_gate.fetch_add(1);
          WaitFor([&] { return every_kind_injected.load(); }, 600s);
        }
      });
  const auto acked_count = [&] { return stream.acked(); };
  const auto all_done = [&] { return stream.done(); };
  // However the test ends, the threads are let through (before they are joined).
  struct OpenTheGate {
    std::atomic<bool>& open;
    ~OpenTheGate() { open.store(true); }
  } open_the_gate{every_kind_injected};

  // 10% warm-up before the first fault.
  ASSERT_TRUE(WaitFor([&] { return acked_count() >= kMessages / 10 || all_done(); }, 300s));
  const double rss_early = RssMiB();

  // Each fault ends with all three brokers registered again; the messages
  // acknowledged while it lasted are counted.
  const auto leader_of_0 = [&] {
    int leader = -1;
    WaitFor(
        [&] {
          for (const auto& p : kafka->Partitions(topic)) {
            if (p.id == 0) leader = p.leader;
          }
          return leader > 0;
        },
        30s);
    if (leader <= 0) throw std::runtime_error("partition 0 of " + topic + " has no leader");
    return leader;
  };
  // Whatever happens, no broker is left frozen or dead for the next test.
  struct Revive {
    const RealKafka& kafka;
    std::set<int> stopped;  // killed or shut down
    std::set<int> frozen;
    ~Revive() {
      for (int node : frozen) Try(node, [&] { kafka.Signal(node, "CONT"); });
      for (int node : stopped) Try(node, [&] { kafka.Restart(node); });
    }
    static void Try(int node, const std::function<void()>& f) {
      try {
        f();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cannot revive node " << node << ": " << e.what();
      }
    }
  } revive{*kafka, {}, {}};
  const auto all_back = [&] {
    ASSERT_TRUE(WaitFor([&] { return kafka->LiveBrokers().size() == kafka->NodeCount(); }, 90s))
        << "a broker did not come back";
  };
  const auto waiting_at_the_gate = [&] {
    return at_the_gate.load() == kThreads && !every_kind_injected.load();
  };
  // A broker stays down (or frozen) for at least 3 s and until the stream
  // has gone on without it: 2% of the messages acknowledged meanwhile (or
  // the stream reached the gate).
  const auto hold = [&](int node) {
    const int from = acked_count();
    const auto at_least = Clock::now() + 3s;
    EXPECT_TRUE(WaitFor(
        [&] {
          return ((acked_count() >= from + kMessages / 50 || waiting_at_the_gate()) &&
                  Clock::now() >= at_least) ||
                 all_done();
        },
        120s))
        << "the stream stalled while node " << node << " was down: " << acked_count() - from
        << " acknowledged in 120 s";
  };
  struct Fault {
    std::string name;
    std::function<int()> run;  // returns the node it hit
  };
  const std::vector<Fault> faults = {
      {"kill -9 the leader of partition 0, restart it",
       [&] {
         const int node = leader_of_0();
         revive.stopped.insert(node);
         kafka->Signal(node, "KILL");
         hold(node);
         kafka->Restart(node);
         revive.stopped.erase(node);
         return node;
       }},
      {"freeze (SIGSTOP) the leader of partition 0, then thaw it",
       [&] {
         const int node = leader_of_0();
         revive.frozen.insert(node);
         kafka->Signal(node, "STOP");
         hold(node);
         kafka->Signal(node, "CONT");
         revive.frozen.erase(node);
         return node;
       }},
      {"shut down (SIGTERM) the leader of partition 0, restart it",
       [&] {
         const int node = leader_of_0();
         revive.stopped.insert(node);
         kafka->Signal(node, "TERM");  // a controlled shutdown hands leadership over
         hold(node);
         kafka->Restart(node);  // waits for the exit if it is still shutting down
         revive.stopped.erase(node);
         return node;
       }},
  };
  // The faults in turn, each once the stream has gone on for 2% more
  // messages after the last one (or is waiting at the gate), until it ends.
  std::vector<std::string> injected;
  while (!all_done()) {
    const int at = acked_count() + kMessages / 50;
    if (!WaitFor([&] { return acked_count() >= at || waiting_at_the_gate() || all_done(); },
                 300s) ||
        all_done()) {
      break;
    }
    const Fault& fault = faults[injected.size() % faults.size()];
    const int from = acked_count();
    const auto began = Clock::now();
    const int node = fault.run();
    all_back();
    if (HasFatalFailure()) return;
    injected.push_back(fault.name);
    if (injected.size() >= faults.size()) every_kind_injected.store(true);
    std::printf(
        "[ figures  ] real soak: %s (node %d) at %d acknowledged: %d acknowledged "
        "in the %.1f s until all brokers were back\n",
        fault.name.c_str(), node, from, acked_count() - from,
        std::chrono::duration<double>(Clock::now() - began).count());
  }
  ASSERT_TRUE(WaitFor(all_done, 900s)) << acked_count() << " acknowledged so far";
  stream.Join();
  const double rss_end = RssMiB();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  (void)publisher.Close();  // the topic, read below, is the judge

  // What landed, read by kcat.
  const std::vector<Record> records = kafka->ReadWithKcat(topic);
  // Each message's latest copy so far; a duplicate pairs it with the next.
  std::vector<const Record*> copy(kMessages, nullptr);
  std::vector<Duplicate> duplicates;
  int out_of_order = 0;
  std::map<std::string, int> last_of_key;
  for (const Record& r : records) {  // partition by partition, in offset order
    const int i = std::stoi(r.value.value_or("-1"));
    ASSERT_GE(i, 0);
    ASSERT_LT(i, kMessages);
    EXPECT_EQ(r.key.value_or(""), KeyOf(i)) << "message " << i;
    if (copy[i] != nullptr) {
      duplicates.push_back({copy[i], &r});
      copy[i] = &r;
      continue;  // counted once, not again as out of order
    }
    copy[i] = &r;
    const auto [it, first] = last_of_key.emplace(KeyOf(i), i);
    if (!first) {
      if (i <= it->second) ++out_of_order;
      it->second = i;
    }
  }
  int missing = 0;
  for (int i = 0; i < kMessages; ++i) {
    const bool ok = outcome[i].load() == 1 + static_cast<std::uint8_t>(Delivery::kDelivered);
    if (ok && copy[i] == nullptr && ++missing <= 10) {
      ADD_FAILURE() << "message " << i << " was acknowledged but is not in the topic";
    }
  }
  // A duplicate is allowed only as librdkafka documents it: in flight when
  // an epoch ended, written again under a later one (see RealKafka::OriginsOf).
  const std::vector<DuplicateOrigin> origins = kafka->OriginsOf(topic, duplicates);
  int unexplained = 0;
  int duplicated_ok = 0;  // duplicates whose message had an ok result
  for (std::size_t d = 0, shown = 0; d < duplicates.size(); ++d) {
    const int i = std::stoi(duplicates[d].first->value.value_or("-1"));
    if (outcome[i].load() == 1 + static_cast<std::uint8_t>(Delivery::kDelivered)) ++duplicated_ok;
    const std::string line = "message " + std::to_string(i) + " (" +
                             OutcomeName(outcome[i].load()) + ") at " + origins[d].where;
    if (!origins[d].resent_under_new_epoch) {
      if (++unexplained <= 10)
        ADD_FAILURE() << line << ": not a message resent under a new producer epoch";
    } else if (++shown <= 3) {
      std::printf("[ figures  ] real soak: %s\n", line.c_str());
    }
  }
  std::printf(
      "[ figures  ] real soak: %d messages in %.1f s, %d ok, %zu faults injected, "
      "%d ok missing, %zu duplicated (%d not resent under a new producer epoch), %d out of order, "
      "%zu records read by kcat; producer epoch at the end %d; "
      "RSS %.1f MiB after 10%%, %.1f MiB at the end\n",
      kMessages, seconds, acked_count(), injected.size(), missing, duplicates.size(), unexplained,
      out_of_order, records.size(), last_epoch.load(), rss_early, rss_end);
  std::printf(
      "[ figures  ] real soak: write timeout %lld ms, %zu duplicated of which %d had an ok "
      "result, %d kFatal results, producer epoch at the end %d\n",
      static_cast<long long>(config.write_timeout.count()), duplicates.size(), duplicated_ok,
      fatal_results.load(), last_epoch.load());
  if (fatal_results.load() > 0) {
    const std::lock_guard lock(fatal_mu);
    std::printf("[ figures  ] real soak: the first kFatal result: %s\n", first_fatal.c_str());
  }
  for (const auto& [what, n] : stream.failures()) {
    std::printf("[ figures  ] real soak: failed %s: %d\n", what.c_str(), n);
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(unexplained, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_GE(injected.size(), faults.size()) << "the stream ended before every kind of fault";
  EXPECT_GT(acked_count(), kMessages / 2);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizers' own memory grows with the work done: RSS says nothing.
  std::printf("[ figures  ] real soak: RSS not checked under a sanitizer\n");
#else
  EXPECT_LE(rss_end - rss_early, 16.0) << "RSS grew from " << rss_early << " to " << rss_end;
#endif
}

}  // namespace
}  // namespace dispatch::kafka
