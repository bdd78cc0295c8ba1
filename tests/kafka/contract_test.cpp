// The publish contract on a real Apache Kafka broker (single node, KRaft),
// checked with an independent client (kcat) and with Kafka's own Java code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "dispatch/kafka/kafka_publisher.h"
#include "kafka/real_kafka.h"
#include "test_util.h"

namespace dispatch::kafka {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using namespace std::chrono_literals;
using dispatch::suite::DuplicateOrigin;
using dispatch::testing::Record;
using dispatch::suite::RealKafka;
using Clock = std::chrono::steady_clock;

KafkaConfig ConfigFor(const RealKafka& kafka) { return DefaultKafkaConfig(kafka.Brokers()); }

double Millis(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string AllBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
  return s;
}

// Keys of every kind: absent, empty, text, binary (NUL, 0xff, newline, quote).
std::optional<std::string> KeyFor(int i) {
  switch (i % 5) {
    case 0: return std::nullopt;
    case 1: return std::string();
    case 2: return "order-" + std::to_string(i % 7);
    case 3: return std::string("bin\0\n\"\\\xff", 8) + std::to_string(i % 3);
    default: return "customer-" + std::to_string(i % 4);
  }
}

Message MessageFor(const std::string& topic, int i) {
  Message m;
  m.topic = topic;
  m.key = KeyFor(i);
  m.value = (i % 3 == 0) ? AllBytes() + std::to_string(i)
                         : (i % 3 == 1 ? std::string() : "value " + std::to_string(i));
  m.headers = {{"id", std::to_string(i)}};
  if (i % 2 == 0) {
    m.headers.push_back({"trace", "a"});
    m.headers.push_back({"trace", std::string("b\0\xfe", 3)});
    m.headers.push_back({"empty", ""});
  }
  return m;
}

TEST(RealKafkaContract, MessagesOfEveryShapeReadBackByteExactWithKcat) {
  REAL_KAFKA_OR_FAIL(kafka);
  const std::string topic = RealKafka::UniqueTopic("shapes");
  kafka.CreateTopic(topic, 3, 1);
  KafkaPublisher publisher(ConfigFor(kafka));

  // Half one at a time, half in one batch: both paths must land the same.
  constexpr int kCount = 200;
  std::vector<Message> sent;
  for (int i = 0; i < kCount; ++i) sent.push_back(MessageFor(topic, i));
  std::vector<Result> results;
  for (int i = 0; i < kCount / 2; ++i) results.push_back(publisher.Publish(Context::WithTimeout(10s), sent[i]));
  const auto batch = publisher.PublishBatch(
      Context::WithTimeout(30s), std::span<const Message>(sent).subspan(kCount / 2));
  results.insert(results.end(), batch.begin(), batch.end());

  std::map<std::pair<std::int32_t, std::int64_t>, int> sent_at;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].message;
    ASSERT_EQ(results[i].delivery, Delivery::kDelivered);
    ASSERT_TRUE(sent_at.emplace(std::pair(results[i].partition, results[i].offset), i).second)
        << "two ok results name partition " << results[i].partition << " offset " << results[i].offset;
  }

  const std::vector<Record> records = kafka.ReadWithKcat(topic);
  ASSERT_EQ(records.size(), sent.size());
  std::set<int> seen;
  for (const Record& rec : records) {
    const auto it = sent_at.find({rec.partition, rec.offset});
    ASSERT_NE(it, sent_at.end()) << "kcat read a record no ok result names: " << rec.partition
                                 << "/" << rec.offset;
    const Message& m = sent[it->second];
    SCOPED_TRACE("message " + std::to_string(it->second));
    EXPECT_EQ(rec.key, m.key);
    EXPECT_EQ(rec.value, std::optional<std::string>(m.value));
    EXPECT_EQ(rec.headers, m.headers);
    EXPECT_TRUE(seen.insert(it->second).second);
  }
  EXPECT_EQ(seen.size(), sent.size());
}

TEST(RealKafkaContract, EveryOkResultIsInTheTopicExactlyOnceAndPerKeyOrderHolds) {
  REAL_KAFKA_OR_FAIL(kafka);
  const std::string topic = RealKafka::UniqueTopic("order");
  kafka.CreateTopic(topic, 4, 1);
  KafkaPublisher publisher(ConfigFor(kafka));

  // Per key, a sequence number in the value; batches keep many in flight.
  constexpr int kKeys = 20;
  constexpr int kPerKey = 150;
  std::vector<Message> messages;
  for (int s = 0; s < kPerKey; ++s) {
    for (int k = 0; k < kKeys; ++k) {
      messages.push_back({topic, "key-" + std::to_string(k), std::to_string(s), {}});
    }
  }
  std::size_t ok = 0;
  for (std::size_t start = 0; start < messages.size(); start += 500) {
    const auto span = std::span<const Message>(messages).subspan(
        start, std::min<std::size_t>(500, messages.size() - start));
    for (const Result& r : publisher.PublishBatch(Context::WithTimeout(30s), span)) {
      ASSERT_TRUE(r.ok()) << r.message;
      ++ok;
    }
  }

  const std::vector<Record> records = kafka.ReadWithKcat(topic);
  EXPECT_EQ(records.size(), ok);
  std::map<std::string, int> last;        // key -> last sequence read
  std::map<std::string, std::int32_t> partition_of;
  std::set<std::pair<std::string, int>> unique;
  for (const Record& rec : records) {  // kcat prints each partition in offset order
    ASSERT_TRUE(rec.key && rec.value);
    const int seq = std::stoi(*rec.value);
    EXPECT_TRUE(unique.emplace(*rec.key, seq).second) << "duplicate " << *rec.key << " " << seq;
    const auto [it, first] = partition_of.emplace(*rec.key, rec.partition);
    EXPECT_EQ(it->second, rec.partition) << *rec.key << " moved partitions";
    if (!first || last.count(*rec.key)) {
      EXPECT_EQ(seq, last[*rec.key] + 1) << *rec.key << " out of order";
    } else {
      EXPECT_EQ(seq, 0) << *rec.key;
    }
    last[*rec.key] = seq;
  }
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kKeys * kPerKey));
}

// The duplicate check of the soak and the failover test (RealKafka::OriginsOf)
// must be able to fail. A message that the publisher is given twice is written
// twice under one producer epoch, and by another publisher under another
// producer id: neither is the duplicate that librdkafka documents.
TEST(RealKafkaContract, AMessagePublishedTwiceIsNotTakenForADuplicateOfANewEpoch) {
  REAL_KAFKA_OR_FAIL(kafka);
  if (!kafka.ControlsProcesses()) {
    GTEST_SKIP() << "reads the broker's log segments: needs the cluster that the CTest "
                    "fixture starts";
  }
  const std::string topic = RealKafka::UniqueTopic("twice");
  kafka.CreateTopic(topic, 1, 1);
  const Message m{topic, "k", "v", {}};
  {
    KafkaPublisher publisher(ConfigFor(kafka));
    ASSERT_TRUE(publisher.Publish(Context::WithTimeout(30s), m).ok());
    ASSERT_TRUE(publisher.Publish(Context::WithTimeout(30s), m).ok());
  }
  KafkaPublisher other(ConfigFor(kafka));
  ASSERT_TRUE(other.Publish(Context::WithTimeout(30s), m).ok());

  const std::vector<Record> records = kafka.ReadWithKcat(topic);
  ASSERT_EQ(records.size(), 3u);
  const std::vector<DuplicateOrigin> origins =
      kafka.OriginsOf(topic, {{&records[0], &records[1]}, {&records[0], &records[2]}});
  ASSERT_EQ(origins.size(), 2u);
  EXPECT_FALSE(origins[0].resent_under_new_epoch) << origins[0].where;
  EXPECT_THAT(origins[0].where,
              MatchesRegex("0/0 \\(producer [0-9]+ epoch 0, batch 1 of the epoch, 1 after it\\), "
                           "again at 0/1 \\(producer [0-9]+ epoch 0, batch 2 of the epoch, 0 "
                           "after it\\)"));
  EXPECT_FALSE(origins[1].resent_under_new_epoch) << origins[1].where;
  EXPECT_THAT(origins[1].where, HasSubstr("again at 0/2 (producer "));
}

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

TEST(RealKafkaContract, SameKeyLandsOnThePartitionKafkasJavaClientChooses) {
  REAL_KAFKA_OR_FAIL(kafka);
  constexpr int kPartitions = 7;
  const std::string topic = RealKafka::UniqueTopic("partitioning");
  kafka.CreateTopic(topic, kPartitions, 1);
  KafkaPublisher publisher(ConfigFor(kafka));

  std::vector<std::string> keys = {"", "a", "order-42", std::string("\0\xff\x80", 3),
                                   std::string(300, 'x')};
  for (int i = 0; i < 120; ++i) keys.push_back("aggregate-" + std::to_string(i * 7919));

  // Ask Kafka's Java producer code, from the jars the broker runs on.
  const std::string keys_file = ::testing::TempDir() + "/" + topic + "_keys.txt";
  {
    std::ofstream out(keys_file);
    for (const std::string& k : keys) out << Hex(k) << "\n";
  }
  const auto java = dispatch::suite::RunCommand(
      std::string("java -cp '") + DISPATCH_KAFKA_DIST_DIR + "/libs/*' '" +
      DISPATCH_KAFKA_SOURCE_DIR + "/tests/kafka/JavaPartitioner.java' " +
      std::to_string(kPartitions) + " < '" + keys_file + "'");
  ASSERT_EQ(java.status, 0) << java.out;
  std::vector<int> expected;
  std::size_t start = 0;
  while (start < java.out.size()) {
    const std::size_t end = java.out.find('\n', start);
    expected.push_back(std::stoi(java.out.substr(start, end - start)));
    start = end + 1;
  }
  ASSERT_EQ(expected.size(), keys.size());

  std::set<int> used;
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const Result r = publisher.Publish(Context::WithTimeout(10s), {topic, keys[i], "v", {}});
      ASSERT_TRUE(r.ok()) << r.message;
      EXPECT_EQ(r.partition, expected[i]) << "key " << Hex(keys[i]) << " round " << round;
      used.insert(r.partition);
    }
  }
  EXPECT_EQ(used.size(), static_cast<std::size_t>(kPartitions)) << "keys should spread";
  // And kcat agrees on where they are.
  std::map<std::string, std::int32_t> where;
  for (std::size_t i = 0; i < keys.size(); ++i) where[keys[i]] = expected[i];
  const auto records = kafka.ReadWithKcat(topic);
  ASSERT_EQ(records.size(), 2 * keys.size());
  for (const Record& rec : records) EXPECT_EQ(rec.partition, where.at(*rec.key));
}

TEST(RealKafkaContract, UnknownTopicIsPermanentAndFailsWellBeforeTheWriteTimeout) {
  REAL_KAFKA_OR_FAIL(kafka);
  KafkaConfig config = ConfigFor(kafka);  // write timeout 10 s, auto-creation off
  ASSERT_EQ(config.write_timeout, 10s);
  KafkaPublisher publisher(config);

  const auto start = Clock::now();
  const Result r = publisher.Publish(Context::WithTimeout(30s),
                                     {RealKafka::UniqueTopic("no-such-topic"), "k", "v", {}});
  const auto elapsed = Clock::now() - start;
  std::printf("[ figures  ] unknown topic answered in %.0f ms: %s\n", Millis(elapsed),
              r.message.c_str());
  EXPECT_EQ(r.code, ErrorCode::kUnknownTopic) << r.message;
  EXPECT_EQ(r.delivery, Delivery::kNotDelivered);
  EXPECT_FALSE(r.retriable);
  EXPECT_THAT(r.message, HasSubstr("no-such-topic"));
  // topic.metadata.propagation.max.ms is half the write timeout (5 s); the
  // bound leaves room for a metadata refresh, not for the whole write timeout.
  EXPECT_LT(elapsed, 9s);
}

TEST(RealKafkaContract, PrepareFindsAnExistingTopicAndReportsAMissingOneWithoutCreatingIt) {
  REAL_KAFKA_OR_FAIL(kafka);
  const std::string topic = RealKafka::UniqueTopic("prepared");
  const std::string missing = RealKafka::UniqueTopic("no-such-topic");
  kafka.CreateTopic(topic, 3, 1);
  KafkaPublisher publisher(ConfigFor(kafka));

  const auto start = Clock::now();
  const std::vector<std::string> topics = {topic, missing};
  const auto results = publisher.Prepare(Context::WithTimeout(30s), topics);
  std::printf("[ figures  ] Prepare of 2 topics took %.0f ms\n", Millis(Clock::now() - start));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].ok()) << results[0].message;
  EXPECT_EQ(results[1].code, ErrorCode::kUnknownTopic) << results[1].message;
  EXPECT_FALSE(results[1].retriable);
  EXPECT_THAT(results[1].message, HasSubstr(missing));
  // Nothing was created: a second look still finds no such topic.
  EXPECT_EQ(publisher.Prepare(Context::WithTimeout(30s), {&missing, 1}).at(0).code,
            ErrorCode::kUnknownTopic);
  EXPECT_TRUE(publisher.Publish(Context::WithTimeout(10s), {topic, "k", "v", {}}).ok());
}

TEST(RealKafkaContract, MessageOverTheTopicsSizeLimitIsPermanentAndNotDelivered) {
  REAL_KAFKA_OR_FAIL(kafka);
  const std::string topic = RealKafka::UniqueTopic("small");
  kafka.CreateTopic(topic, 1, 1, {{"max.message.bytes", "1024"}});
  KafkaPublisher publisher(ConfigFor(kafka));

  const Result big = publisher.Publish(Context::WithTimeout(10s), {topic, "k", std::string(4096, 'x'), {}});
  EXPECT_EQ(big.code, ErrorCode::kMessageTooLarge) << big.message;
  EXPECT_EQ(big.delivery, Delivery::kNotDelivered);
  EXPECT_FALSE(big.retriable);
  EXPECT_THAT(big.message, HasSubstr(topic));

  // The rejection is the message's, not the publisher's: the next one goes.
  const Result small = publisher.Publish(Context::WithTimeout(10s), {topic, "k", "fits", {}});
  EXPECT_TRUE(small.ok()) << small.message;
  const auto records = kafka.ReadWithKcat(topic);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, "fits");
}

}  // namespace
}  // namespace dispatch::kafka
