/// @file
/// dispatch::testing::EmbeddedKafkaCluster: librdkafka's in-process mock
/// cluster, for fast, deterministic tests with fault injection.
///
/// It speaks the real Kafka protocol over loopback sockets. It is not Kafka: it
/// enforces no authentication and has no real replication. Use a real broker
/// for those.
///
/// Topics: like a broker with `auto.create.topics.enable=true` (Kafka's
/// default), it creates an unknown topic when the client's metadata request
/// allows it (librdkafka's `allow.auto.create.topics`). The publisher sets
/// that to false, so a publish to a topic that no test created fails with
/// kUnknownTopic, as on a production cluster (on every supported librdkafka:
/// the cluster offers Metadata v4, which carries the flag).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/publisher.h"

namespace dispatch::testing {

/// Kafka protocol request types (ApiKey) that faults are usually injected into.
enum class ApiKey : std::int16_t {
  kProduce = 0,
  kMetadata = 3,
  kInitProducerId = 22,
};

/// Kafka protocol error codes, by their protocol numbers, for fault injection.
/// Any other protocol error code can be passed as a plain int.
namespace kafka_error {
/// Named as in the Kafka protocol's error table.
///@{
inline constexpr int kUnknownTopicOrPartition = 3;
inline constexpr int kLeaderNotAvailable = 5;
inline constexpr int kNotLeaderForPartition = 6;
inline constexpr int kRequestTimedOut = 7;
inline constexpr int kMessageTooLarge = 10;
inline constexpr int kInvalidTopic = 17;
inline constexpr int kNotEnoughReplicas = 19;
inline constexpr int kNotEnoughReplicasAfterAppend = 20;
inline constexpr int kTopicAuthorizationFailed = 29;
inline constexpr int kOutOfOrderSequenceNumber = 45;
inline constexpr int kInvalidProducerEpoch = 47;
///@}
/// librdkafka's local code that makes the mock broker drop the connection.
inline constexpr int kDisconnect = -195;
}  // namespace kafka_error

/// A record read back from a topic.
struct Record {
  /// Where the record is.
  ///@{
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  ///@}
  std::optional<std::string> key;    ///< nullopt: the record has a null key
  std::optional<std::string> value;  ///< nullopt: the record has a null value
  std::vector<Header> headers;       ///< in the order they were written
};

/// A Kafka cluster inside the test process; destroying it stops the brokers.
///
/// It is librdkafka's mock cluster: it keeps records in memory and, like a
/// broker with size retention, keeps only the newest 5 MiB (or 100,000 record
/// batches) of each partition. A test that reads back more than that spreads
/// its records over more partitions.
///
/// It does not check the idempotent producer's sequence numbers (librdkafka's
/// mock checks them for transactional producers only). A real broker refuses
/// a batch whose predecessor it does not hold, and librdkafka relies on that:
/// when a later batch of a partition is acknowledged, it reports the earlier
/// ones still waiting to be retried as delivered, with offset -1. Here the later batch is
/// stored anyway, so a batch that failed can come back as ok although the
/// cluster does not hold it: with several produce requests of a partition in
/// flight and one of them failing, or when leadership moves while a batch
/// waits to be retried (librdkafka may then send a later batch to the new
/// leader first). Nor does it drop a retried batch that it already stored: a
/// broker going down after storing a batch but before answering can
/// duplicate it. A test that injects faults under load and checks what
/// landed sets `max.in.flight.requests.per.connection` to 1 in
/// KafkaConfig::properties and moves no leaders and stops no brokers
/// meanwhile (as the soak test does), or runs on a real broker.
class EmbeddedKafkaCluster {
 public:
  /// Starts `brokers` brokers (ids 1..brokers) on loopback ports.
  explicit EmbeddedKafkaCluster(int brokers = 1);
  ~EmbeddedKafkaCluster();
  EmbeddedKafkaCluster(const EmbeddedKafkaCluster&) = delete;
  EmbeddedKafkaCluster& operator=(const EmbeddedKafkaCluster&) = delete;

  /// "127.0.0.1:port,..." for KafkaConfig::brokers (one string; see Brokers()).
  std::string Bootstrap() const;
  /// The same, one entry per broker.
  std::vector<std::string> Brokers() const;

  /// Creates a topic; throws std::runtime_error naming the topic on failure.
  void CreateTopic(const std::string& topic, int partitions = 1, int replication = 1);

  /// The next errors.size() requests of type `api` fail with these protocol
  /// error codes, in order (0 lets one through).
  void PushRequestErrors(ApiKey api, const std::vector<int>& errors);
  /// The same, for one broker only, each error answered after `rtt`.
  void PushBrokerRequestErrors(int broker_id, ApiKey api, const std::vector<int>& errors,
                               std::chrono::milliseconds rtt = std::chrono::milliseconds(0));
  /// Drops the errors that PushRequestErrors queued for `api` and that no
  /// request has used yet.
  void ClearRequestErrors(ApiKey api);

  /// Makes metadata requests for `topic` answer with `error` (0 clears it).
  void SetTopicError(const std::string& topic, int error);

  /// Disconnects a broker (-1: all) and refuses new connections; BrokerUp
  /// undoes it. Neither moves partition leadership.
  ///@{
  void BrokerDown(int broker_id);
  void BrokerUp(int broker_id);
  ///@}
  /// Delays every response of a broker (-1: all).
  void SetRtt(int broker_id, std::chrono::milliseconds rtt);
  /// Moves the leadership of a partition (-1 leaves it without a leader).
  void SetPartitionLeader(const std::string& topic, int partition, int broker_id);

  /// Reads a topic from the beginning, all partitions, until `count` records
  /// arrived or `timeout` passed, and returns what arrived (in partition, then
  /// offset order). Keys, values and header keys and values are read by
  /// length: NUL bytes in any of them are kept.
  std::vector<Record> ReadTopic(const std::string& topic, std::size_t count,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  /// Reads every record that the topic holds when the call starts (up to each
  /// partition's end offset then), for checking what landed when some results
  /// were `unknown`, so that no count is known. Throws std::runtime_error when
  /// the end offsets cannot be learnt or not everything arrived within
  /// `timeout`. Meant for the embedded cluster: on a real broker, transaction
  /// markers and compaction leave offsets that no record fills.
  std::vector<Record> ReadWholeTopic(
      const std::string& topic, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// Reads `topic` from any cluster at `bootstrap` (see EmbeddedKafkaCluster::ReadTopic).
std::vector<Record> ReadTopic(const std::string& bootstrap, const std::string& topic,
                              std::size_t count, std::chrono::milliseconds timeout);
/// Reads all of `topic` from the embedded cluster at `bootstrap` (see
/// EmbeddedKafkaCluster::ReadWholeTopic).
std::vector<Record> ReadWholeTopic(const std::string& bootstrap, const std::string& topic,
                                   std::chrono::milliseconds timeout);
/// A topic for CreateTopics: its name, partition count and topic
/// configurations (such as max.message.bytes).
struct TopicSpec {
  std::string name;    ///< the topic's name
  int partitions = 1;  ///< its partition count when created
  /// Topic configurations (name, value) when created.
  std::vector<std::pair<std::string, std::string>> configs = {};
};
/// Creates on the cluster at `bootstrap` (a real one: the embedded cluster
/// has EmbeddedKafkaCluster::CreateTopic) the topics that it lacks, with the
/// broker's default replication factor, and waits until its metadata lists
/// every one of them with a leader for each partition. A topic that exists
/// keeps its own partitions and configurations. Returns "" or what went wrong
/// (naming the topic), within about `timeout`.
std::string CreateTopics(const std::string& bootstrap, const std::vector<TopicSpec>& topics,
                         std::chrono::milliseconds timeout);
/// Where each partition of `topic` ends now (its high watermark, the offset
/// that the next record will get), indexed by partition. Throws
/// std::runtime_error when the topic or an offset is not known within
/// `timeout`. With ReadTopicSince: what was written between two moments.
std::vector<std::int64_t> EndOffsets(const std::string& bootstrap, const std::string& topic,
                                     std::chrono::milliseconds timeout);
/// Reads `topic` from offset `from[p]` of each partition p (from the
/// beginning of a partition that `from` does not cover) up to where each
/// partition ends when the call starts, as ReadWholeTopic does, with its
/// caveat for real brokers: a partition whose last offset holds no record (a
/// transaction marker) is never reached, and the call throws.
std::vector<Record> ReadTopicSince(const std::string& bootstrap, const std::string& topic,
                                   const std::vector<std::int64_t>& from,
                                   std::chrono::milliseconds timeout);

}  // namespace dispatch::testing
