// The real Apache Kafka cluster that the `kafka`-labelled tests run against,
// and an independent reader (kcat) to check what landed.
//
// The CTest fixture (scripts/kafka_cluster.py) starts the cluster and passes
// its folder in DISPATCH_KAFKA_CLUSTER_DIR; DISPATCH_KAFKA_BROKERS instead
// points the tests at an existing cluster, on which the tests that kill or
// freeze brokers skip.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/publisher.h"
#include "dispatch/testing/embedded_kafka.h"

namespace dispatch::suite {

// A record batch as a broker's log segment holds it: the producer id and
// epoch under which it was written.
struct RecordBatch {
  std::int32_t partition = -1;
  std::int64_t base_offset = -1;
  std::int64_t last_offset = -1;
  std::int64_t producer_id = -1;
  std::int32_t producer_epoch = -1;
};

// A record that a topic holds twice: an earlier copy and a later one, as
// kcat read them.
struct Duplicate {
  const dispatch::testing::Record* first = nullptr;
  const dispatch::testing::Record* again = nullptr;
};

// What the record batches say about a Duplicate.
struct DuplicateOrigin {
  // librdkafka's documented duplicate (see RealKafka::OriginsOf): both copies
  // in one partition, from one producer; the first in one of the last
  // kMaxInFlight batches of its epoch (in flight when the epoch ended), the
  // second in one of the first kMaxInFlight batches of a later epoch (sent
  // again first). Anything else is a message produced twice.
  bool resent_under_new_epoch = false;
  // "0/49910 (producer 1000 epoch 25, batch 240 of the epoch, 1 after it),
  // again at 0/50250 (producer 1000 epoch 29, batch 1 of the epoch, ...)"
  std::string where;
};

// librdkafka's max.in.flight.requests.per.connection, which the tests keep:
// how many batches of one partition can be in flight at once.
inline constexpr std::size_t kMaxInFlight = 5;

struct PartitionInfo {
  std::int32_t id = -1;
  std::int32_t leader = -1;
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
};

class RealKafka {
 public:
  // The cluster named by the environment; fails the calling test (and returns
  // nullopt) when there is none. Call through REAL_KAFKA_OR_SKIP below.
  static std::optional<RealKafka> FromEnvironment(std::string* why);

  const std::string& bootstrap() const { return bootstrap_; }
  std::vector<std::string> Brokers() const;
  std::size_t NodeCount() const { return nodes_.size(); }
  // True when the fixture started this cluster, so nodes can be killed.
  bool ControlsProcesses() const { return !cluster_dir_.empty(); }

  // A topic name unique to this call (tests run against shared clusters).
  static std::string UniqueTopic(const std::string& stem);

  // Creates a topic and waits (bounded) until every partition has a leader.
  // Throws std::runtime_error on failure.
  void CreateTopic(const std::string& topic, int partitions, int replication,
                   const std::map<std::string, std::string>& configs = {}) const;

  // Lets `principal` ("User:dave") write to every topic whose name starts
  // with `prefix` (a prefixed ACL). Asked over the plaintext listener, whose
  // principal is a super user on the secure cluster. Throws
  // std::runtime_error on failure.
  void AllowWrite(const std::string& principal, const std::string& prefix) const;

  // The partitions of `topic` as the cluster's metadata lists them now
  // (empty when the metadata request fails).
  std::vector<PartitionInfo> Partitions(const std::string& topic) const;

  // The ids of the brokers that the cluster's metadata lists now (fenced
  // brokers are not listed).
  std::vector<std::int32_t> LiveBrokers() const;
  // How many partitions, over every topic, have fewer in-sync replicas than
  // replicas now; -1 when the metadata cannot be read. A broker that was
  // restarted is listed before it has caught up: 0 says it has.
  int UnderReplicatedPartitions() const;

  // Process control of a fixture-started cluster (node ids 1..NodeCount()).
  void Signal(int node_id, const std::string& signal) const;  // KILL, STOP, CONT
  void Restart(int node_id) const;  // returns once the node serves metadata again

  // Reads the whole topic from the beginning with kcat until the end of every
  // partition (kcat -e), byte-exact. Throws std::runtime_error when kcat fails.
  std::vector<dispatch::testing::Record> ReadWithKcat(const std::string& topic) const;

  // The record batches that node `node_id` holds for these partitions of
  // `topic`, in offset order, read from its log segments with Kafka's
  // DumpLogSegments (fixture-started clusters only). Throws
  // std::runtime_error when that fails.
  std::vector<RecordBatch> Batches(int node_id, const std::string& topic,
                                   const std::vector<std::int32_t>& partitions) const;

  // Where each duplicate's copies were written, from the record batches of
  // its partition's current leader (one entry per duplicate, in order).
  //
  // The idempotent producer keeps retries from duplicating within one
  // producer epoch: the broker drops a batch whose sequence numbers it has
  // written. But when a message times out inside librdkafka (the write
  // timeout), librdkafka drains and starts a new epoch whose sequences begin
  // again at 0, and a message being retried then (written, its
  // acknowledgement lost) is written a second time. librdkafka's
  // INTRODUCTION.md describes it ("Message timeout considerations"); its
  // issue 4953 shows another way to a new epoch, and some broker errors
  // (unknown producer id, for one) are a third. Such a second copy sits in
  // one of the first batches of a later epoch, its first copy in one of the
  // last batches of its own (see DuplicateOrigin).
  std::vector<DuplicateOrigin> OriginsOf(const std::string& topic,
                                         const std::vector<Duplicate>& duplicates) const;

 private:
  std::string bootstrap_;
  std::string cluster_dir_;
  std::vector<int> nodes_;
};

// Runs a shell command; returns its exit status and its standard output.
struct CommandResult {
  int status = -1;
  std::string out;
};
CommandResult RunCommand(const std::string& command);

}  // namespace dispatch::suite

// Binds `var` to the cluster or fails the test with the reason.
#define REAL_KAFKA_OR_FAIL(var)                                               \
  std::string real_kafka_why_;                                                \
  std::optional<::dispatch::suite::RealKafka> var##_opt_ =                    \
      ::dispatch::suite::RealKafka::FromEnvironment(&real_kafka_why_);        \
  ASSERT_TRUE(var##_opt_.has_value()) << real_kafka_why_;                     \
  const ::dispatch::suite::RealKafka& var = *var##_opt_
