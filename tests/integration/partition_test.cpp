// Keys choose partitions as the Java client does.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"

namespace dispatch::kafka {
namespace {

using namespace std::chrono_literals;

// Kafka's org.apache.kafka.common.utils.Utils.murmur2, written from its
// definition (seed 0x9747b28c, little-endian 4-byte blocks).
std::int32_t JavaMurmur2(const std::string& data) {
  const std::uint32_t m = 0x5bd1e995;
  const int r = 24;
  const auto length = static_cast<std::uint32_t>(data.size());
  std::uint32_t h = 0x9747b28c ^ length;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(data[i])); };
  const std::size_t blocks = data.size() / 4;
  for (std::size_t i = 0; i < blocks; ++i) {
    std::uint32_t k = byte(4 * i) | byte(4 * i + 1) << 8 | byte(4 * i + 2) << 16 | byte(4 * i + 3) << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const std::size_t tail = blocks * 4;
  switch (data.size() % 4) {
    case 3: h ^= byte(tail + 2) << 16; [[fallthrough]];
    case 2: h ^= byte(tail + 1) << 8; [[fallthrough]];
    case 1: h ^= byte(tail); h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);
}

// What Java's default partitioner picks for a non-null key.
int JavaPartition(const std::string& key, int partitions) {
  return static_cast<int>((static_cast<std::uint32_t>(JavaMurmur2(key)) & 0x7fffffffu) %
                          static_cast<std::uint32_t>(partitions));
}

TEST(Partitioning, ReferenceMurmur2MatchesKafkaJavaVectors) {
  // Values printed by Kafka's Java Utils.murmur2.
  EXPECT_EQ(JavaMurmur2("1"), -1993445489);
  EXPECT_EQ(JavaMurmur2("12"), 126087238);
  EXPECT_EQ(JavaMurmur2("123"), -267702483);
  EXPECT_EQ(JavaMurmur2("1234"), -1614185708);
  EXPECT_EQ(JavaMurmur2("12345"), -1188365604);
}

TEST(Partitioning, SameKeyLandsOnTheSamePartitionAsJavaWouldChoose) {
  constexpr int kPartitions = 7;
  testing::EmbeddedKafkaCluster cluster(3);
  cluster.CreateTopic("keyed", kPartitions, 1);
  KafkaPublisher publisher(DefaultKafkaConfig(cluster.Brokers()));
  std::set<int> used;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 100; ++i) {
      const std::string key = "aggregate-" + std::to_string(i);
      const Result r = publisher.Publish(Context::WithTimeout(10s), {"keyed", key, "v", {}});
      ASSERT_TRUE(r.ok()) << r.message;
      EXPECT_EQ(r.partition, JavaPartition(key, kPartitions)) << key;
      used.insert(r.partition);
    }
  }
  EXPECT_EQ(used.size(), static_cast<std::size_t>(kPartitions));
  // The empty key is a key: it hashes like any other.
  const Result empty = publisher.Publish(Context::WithTimeout(10s), {"keyed", "", "v", {}});
  ASSERT_TRUE(empty.ok()) << empty.message;
  EXPECT_EQ(empty.partition, JavaPartition("", kPartitions));
}

TEST(Partitioning, AbsentKeysAreSpreadOverPartitions) {
  testing::EmbeddedKafkaCluster cluster(1);
  cluster.CreateTopic("unkeyed", 4, 1);
  KafkaConfig config = DefaultKafkaConfig(cluster.Brokers());
  // librdkafka keeps a keyless message's random partition for
  // sticky.partitioning.linger.ms (10 ms by default), so 100 publishes that
  // end within a few draws may all stick to one. With 0 each message draws
  // its own.
  config.properties["sticky.partitioning.linger.ms"] = "0";
  KafkaPublisher publisher(config);
  std::set<int> used;
  for (int i = 0; i < 100; ++i) {
    const Result r = publisher.Publish(Context::WithTimeout(10s), {"unkeyed", std::nullopt, "v", {}});
    ASSERT_TRUE(r.ok()) << r.message;
    used.insert(r.partition);
  }
  EXPECT_GT(used.size(), 1u);
}

}  // namespace
}  // namespace dispatch::kafka
