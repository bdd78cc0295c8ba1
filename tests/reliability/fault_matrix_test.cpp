// The fault matrix: one table, one row per fault injected into the embedded
// cluster. Each row asserts the result code, the delivery outcome and whether
// the result is retriable, then reads the topic back: no message with an ok
// result is missing and none is duplicated. README.md carries the same table
// (section "Reliability"); a test below keeps the two from drifting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using namespace std::chrono_literals;
using dispatch::testing::ApiKey;
using dispatch::testing::EmbeddedKafkaCluster;
namespace kafka_error = dispatch::testing::kafka_error;

constexpr const char* kTopic = "faults";

// Injected before publish number `i` of the row (0-based).
using Inject = void (*)(EmbeddedKafkaCluster&, int i);
// Run on another thread once the row's first message is in flight and the
// client has logged a broker failure since the fault was injected.
using WhileInFlight = void (*)(EmbeddedKafkaCluster&);
// Clears the fault after the row's publishes.
using Clear = void (*)(EmbeddedKafkaCluster&);

struct FaultCase {
  const char* id;     // the gtest name
  const char* fault;  // the README's wording
  const char* topic;
  bool warm_up;                          // one ok publish first, so the leader is known
  int publishes;                         // how many Publish calls the row makes
  std::chrono::milliseconds deadline;    // of each call's Context
  std::chrono::milliseconds write_timeout;
  Inject inject;
  WhileInFlight while_in_flight;  // may be null
  Clear clear;                    // may be null
  // What every publish of the row returns.
  ErrorCode code;
  Delivery delivery;
  bool retriable;
  bool sticky_fatal;  // a later call fails fast with the same kFatal
};

// gtest prints a row by its id (in test names and failures), not as bytes.
void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.id; }

void PushProduceErrors(EmbeddedKafkaCluster& c, int error, int count) {
  c.PushRequestErrors(ApiKey::kProduce, std::vector<int>(count, error));
}

// clang-format off
constexpr std::array kCases = {
  FaultCase{"NotEnoughReplicasThatClears",
    "not enough replicas (19) on Produce, cleared before the deadline", kTopic, true, 1, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kNotEnoughReplicas, 3); },
    nullptr, nullptr, ErrorCode::kOk, Delivery::kDelivered, false, false},
  FaultCase{"LeaderNotAvailableThatClears",
    "leader not available (5) on Produce, cleared before the deadline", kTopic, true, 1, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kLeaderNotAvailable, 3); },
    nullptr, nullptr, ErrorCode::kOk, Delivery::kDelivered, false, false},
  FaultCase{"RequestTimedOutThatClears",
    "request timed out (7) on Produce, cleared before the deadline", kTopic, true, 1, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kRequestTimedOut, 3); },
    nullptr, nullptr, ErrorCode::kOk, Delivery::kDelivered, false, false},
  FaultCase{"NotEnoughReplicasPastTheDeadline",
    "not enough replicas (19) on Produce, lasting past the deadline", kTopic, true, 1, 500ms, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kNotEnoughReplicas, 10000); },
    nullptr, [](EmbeddedKafkaCluster& c) { c.ClearRequestErrors(ApiKey::kProduce); },
    ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true, false},
  FaultCase{"LeaderNotAvailablePastTheDeadline",
    "leader not available (5) on Produce, lasting past the deadline", kTopic, true, 1, 500ms, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kLeaderNotAvailable, 10000); },
    nullptr, [](EmbeddedKafkaCluster& c) { c.ClearRequestErrors(ApiKey::kProduce); },
    ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true, false},
  FaultCase{"RequestTimedOutPastTheDeadline",
    "request timed out (7) on Produce, lasting past the deadline", kTopic, true, 1, 500ms, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kRequestTimedOut, 10000); },
    nullptr, [](EmbeddedKafkaCluster& c) { c.ClearRequestErrors(ApiKey::kProduce); },
    ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true, false},
  FaultCase{"LeaderChangeMidStream",
    "partition leader moved twice during 30 publishes", kTopic, true, 30, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int i) {
      if (i == 10) c.SetPartitionLeader(kTopic, 0, 2);
      if (i == 20) c.SetPartitionLeader(kTopic, 0, 3);
    },
    nullptr, nullptr, ErrorCode::kOk, Delivery::kDelivered, false, false},
  FaultCase{"AllBrokersDownThenUp",
    "all brokers down, back up while the message waits", kTopic, true, 1, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int) { c.BrokerDown(-1); },
    [](EmbeddedKafkaCluster& c) { c.BrokerUp(-1); }, nullptr,
    ErrorCode::kOk, Delivery::kDelivered, false, false},
  FaultCase{"RttLongerThanTheDeadline",
    "broker RTT 2 s, call deadline 300 ms", kTopic, true, 1, 300ms, 10s,
    [](EmbeddedKafkaCluster& c, int) { c.SetRtt(-1, 2000ms); },
    nullptr, [](EmbeddedKafkaCluster& c) { c.SetRtt(-1, 0ms); },
    ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true, false},
  FaultCase{"BrokerSaysMessageTooLarge",
    "message too large (10) on Produce", kTopic, true, 1, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kMessageTooLarge, 1); },
    nullptr, nullptr, ErrorCode::kMessageTooLarge, Delivery::kNotDelivered, false, false},
  FaultCase{"TopicAuthorizationFailed",
    "topic authorization failed (29) on Produce", kTopic, true, 1, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kTopicAuthorizationFailed, 1); },
    nullptr, nullptr, ErrorCode::kNotAuthorized, Delivery::kNotDelivered, false, false},
  // librdkafka gives its verdict on a 1 s topic scan after
  // topic.metadata.propagation.max.ms, 500 ms with a 2 s write timeout: the
  // verdict comes between 0.5 and 1.5 s, before the timeout.
  FaultCase{"UnknownTopicFromMetadata",
    "unknown topic or partition (3) in Metadata, write timeout 2 s", "missing", false, 1, 10s, 2s,
    [](EmbeddedKafkaCluster& c, int) { c.SetTopicError("missing", kafka_error::kUnknownTopicOrPartition); },
    nullptr, nullptr, ErrorCode::kUnknownTopic, Delivery::kNotDelivered, false, false},
  FaultCase{"OutOfOrderSequenceIsFatal",
    "out of order sequence number (45) on Produce after a warm-up", kTopic, true, 1, 10s, 10s,
    [](EmbeddedKafkaCluster& c, int) { PushProduceErrors(c, kafka_error::kOutOfOrderSequenceNumber, 1); },
    nullptr, nullptr, ErrorCode::kFatal, Delivery::kUnknown, true, true},
};
// clang-format on

std::string CodeName(ErrorCode code) {
  static const std::map<ErrorCode, std::string> names = {
      {ErrorCode::kOk, "kOk"},
      {ErrorCode::kCancelled, "kCancelled"},
      {ErrorCode::kDeadlineExceeded, "kDeadlineExceeded"},
      {ErrorCode::kClosed, "kClosed"},
      {ErrorCode::kInvalidMessage, "kInvalidMessage"},
      {ErrorCode::kMessageTooLarge, "kMessageTooLarge"},
      {ErrorCode::kUnknownTopic, "kUnknownTopic"},
      {ErrorCode::kNotAuthorized, "kNotAuthorized"},
      {ErrorCode::kAuthenticationFailed, "kAuthenticationFailed"},
      {ErrorCode::kBrokerUnavailable, "kBrokerUnavailable"},
      {ErrorCode::kBrokerRejected, "kBrokerRejected"},
      {ErrorCode::kFatal, "kFatal"},
      {ErrorCode::kInternal, "kInternal"},
  };
  return names.at(code);
}

// The row as README.md prints it.
std::string ReadmeLine(const FaultCase& c) {
  std::string retriable = c.code == ErrorCode::kOk ? "—" : (c.retriable ? "yes" : "no");
  if (c.sticky_fatal) retriable += ", with a new publisher; later calls fail fast with `kFatal`";
  return std::string("| ") + c.fault + " | `" + CodeName(c.code) + "` | " +
         std::string(ToString(c.delivery)) + " | " + retriable + " |";
}

class FaultMatrix : public ::testing::TestWithParam<FaultCase> {
 protected:
  FaultMatrix() : cluster_(3) {
    cluster_.CreateTopic(kTopic, 1, 3);
    cluster_.SetPartitionLeader(kTopic, 0, 1);
  }

  EmbeddedKafkaCluster cluster_;
};

TEST_P(FaultMatrix, EachFaultEndsInItsResultAndLosesOrDuplicatesNothingAcknowledged) {
  const FaultCase& c = GetParam();
  KafkaConfig config = DefaultKafkaConfig(cluster_.Brokers());
  config.properties["retry.backoff.ms"] = "10";
  config.write_timeout = c.write_timeout;
  std::atomic<int> broker_failures{0};
  config.log = [&broker_failures](const LogEntry& e) {
    if (e.facility == "FAIL") broker_failures.fetch_add(1);
  };
  KafkaPublisher publisher(config);

  std::vector<std::string> ok_values;       // must be in the topic exactly once
  std::vector<std::string> maybe_values;    // kUnknown: at most once
  if (c.warm_up) {
    const Result r = publisher.Publish(Context::WithTimeout(10s), {c.topic, "k", "warm", {}});
    ASSERT_TRUE(r.ok()) << r.message;
    ok_values.emplace_back("warm");
  }

  for (int i = 0; i < c.publishes; ++i) {
    const int failures_before = broker_failures.load();
    c.inject(cluster_, i);
    std::jthread helper;
    if (c.while_in_flight != nullptr && i == 0) {
      helper = std::jthread([&] {
        // Bounded: if the state never comes, the publish fails and says why.
        EXPECT_TRUE(suite::WaitFor([&] {
          return publisher.InFlight() > 0 && broker_failures.load() > failures_before;
        })) << "the client never saw the fault";
        c.while_in_flight(cluster_);
      });
    }
    const std::string value = "v" + std::to_string(i);
    const Result r =
        publisher.Publish(Context::WithTimeout(c.deadline), {c.topic, "k", value, {}});
    EXPECT_EQ(r.code, c.code) << "publish " << i << ": " << r.message;
    EXPECT_EQ(r.delivery, c.delivery) << "publish " << i << ": " << r.message;
    EXPECT_EQ(r.retriable, c.retriable) << "publish " << i << ": " << r.message;
    if (r.ok()) ok_values.push_back(value);
    if (r.delivery == Delivery::kUnknown) maybe_values.push_back(value);
  }
  if (c.clear != nullptr) c.clear(cluster_);

  if (c.sticky_fatal) {
    const auto start = std::chrono::steady_clock::now();
    const Result later = publisher.Publish(Context::WithTimeout(10s), {c.topic, "k", "later", {}});
    EXPECT_EQ(later.code, ErrorCode::kFatal) << later.message;
    EXPECT_EQ(later.delivery, Delivery::kNotDelivered);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);  // a hang check: it fails fast
  }

  if (ok_values.empty() && maybe_values.empty()) return;  // nothing can have landed
  // All ok ones arrive at once; a short wait for kUnknown ones that may land.
  const std::size_t want = ok_values.size() + maybe_values.size();
  const auto records = cluster_.ReadTopic(c.topic, want, maybe_values.empty() ? 10s : 1500ms);
  std::map<std::string, int> landed;
  for (const auto& rec : records) ++landed[rec.value.value_or("<null>")];
  for (const auto& v : ok_values) EXPECT_EQ(landed[v], 1) << "acknowledged " << v;
  for (const auto& v : maybe_values) EXPECT_LE(landed[v], 1) << "possibly written " << v;
}

INSTANTIATE_TEST_SUITE_P(Rows, FaultMatrix, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<FaultCase>& row) {
                           return std::string(row.param.id);
                         });

// README.md prints the matrix; every row of kCases must be a line there, and
// the README's table must have no other rows.
TEST(FaultMatrixReadme, TheReadmeTableIsTheTestTable) {
  std::ifstream in(DISPATCH_KAFKA_SOURCE_DIR "/README.md");
  ASSERT_TRUE(in) << "cannot read README.md";
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);

  const std::string header = "| fault (embedded cluster) | code | delivery | retriable |";
  auto it = std::find(lines.begin(), lines.end(), header);
  ASSERT_NE(it, lines.end()) << "README.md lacks the table header: " << header;
  std::set<std::string> rows;
  for (it += 2; it != lines.end() && it->rfind("|", 0) == 0; ++it) rows.insert(*it);

  std::set<std::string> expected;
  for (const FaultCase& c : kCases) expected.insert(ReadmeLine(c));
  for (const auto& line : expected) EXPECT_EQ(rows.count(line), 1u) << "missing in README:\n" << line;
  for (const auto& line : rows) EXPECT_EQ(expected.count(line), 1u) << "not in the test:\n" << line;
}

}  // namespace
}  // namespace dispatch::kafka
