/// @file
/// dispatch::kafka::KafkaConfig: the publisher's configuration, its defaults,
/// its validation error and its mapping onto librdkafka properties
/// (implemented in src/kafka/config.cpp).
///
/// Standard library only: no librdkafka header.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dispatch::kafka {

/// How many replicas must acknowledge a write (librdkafka `acks`). The values
/// are Kafka's, as in the Go original.
///
/// The enumerators keep the Go original's names (`None`, `Leader`, `All`)
/// rather than this project's `kName` style: they are the names a team porting
/// a Go dispatcher already reads in its configuration, the design notes
/// promise them, and renaming them would break every service that sets them.
enum class RequiredAcks : int {
  /// Fire and forget: an ok result only means "sent". The broker sends no
  /// acknowledgement, so an ok result carries Delivery::kUnknown and offset -1.
  None = 0,
  Leader = 1,  ///< the partition leader wrote it; lost if the leader dies first
  All = -1,    ///< every in-sync replica wrote it (the default)
};

/// How a key chooses its partition (librdkafka `partitioner`).
enum class Partitioner {
  kMurmur2Random,     ///< Java-compatible murmur2 of the key; absent key: random (default)
  kMurmur2,           ///< Java-compatible murmur2; absent key: one fixed partition
  kConsistentRandom,  ///< CRC32 of the key (librdkafka's own default); absent: random
  kConsistent,        ///< CRC32; absent key: one fixed partition
  kFnv1aRandom,       ///< FNV-1a (the Go client Sarama's hash); absent: random
  kRandom,            ///< ignores the key: per-key order is lost
};

/// Severity of a log entry, as syslog numbers it (librdkafka uses the same).
enum class LogLevel : int {
  kEmergency = 0,
  kAlert = 1,
  kCritical = 2,
  kError = 3,
  kWarning = 4,
  kNotice = 5,
  kInfo = 6,
  kDebug = 7,
};

/// One log line from the publisher or from librdkafka. The views are valid
/// only during the call to the hook.
struct LogEntry {
  LogLevel level;             ///< severity, syslog numbering
  std::string_view facility;  ///< librdkafka's facility ("FAIL", "ERROR", ...)
  std::string_view message;   ///< the text, without librdkafka's thread prefix
  /// The broker the line is about ("host:port/id"), empty when it is about no
  /// broker in particular.
  std::string_view broker;
};

/// Receives librdkafka's statistics, a JSON document described in librdkafka's
/// STATISTICS.md, every KafkaConfig::statistics_interval. Called from the
/// thread that serves delivery reports at the time (a waiting caller of
/// Publish or PublishBatch, or the publisher's internal thread): keep it
/// short, as it delays those reports.
using StatisticsHook = std::function<void(std::string_view json)>;

/// Receives log entries. It may be called from librdkafka's internal threads
/// and from several threads at once, so it must be thread-safe, and it must not
/// call back into the publisher.
using LogHook = std::function<void(const LogEntry&)>;

/// The publisher's configuration. A default-constructed KafkaConfig holds the
/// production defaults except `brokers`, which has none: set it.
struct KafkaConfig {
  /// "host:port" entries (IPv6 as "[::1]:9092"); librdkafka `bootstrap.servers`.
  std::vector<std::string> brokers;

  /// librdkafka `client.id`: names this client in broker logs and quotas.
  std::string client_id = "dispatch-kafka";

  /// librdkafka `acks`. All is the only setting under which an ok result
  /// survives the loss of the partition leader; it also turns on the
  /// idempotent producer (see `properties`).
  RequiredAcks required_acks = RequiredAcks::All;

  /// The upper bound that Publish and PublishBatch apply to each message
  /// themselves (from its hand-over); zero: no write timeout, the Context is
  /// the only deadline. Under required_acks All, librdkafka times no message
  /// out (`message.timeout.ms` 0): a timeout there would start a new producer
  /// epoch and let later messages of a partition be written before the one
  /// that timed out (docs/outbox-dispatcher.md, "A key's order through failures");
  /// a message the call stopped waiting for stays queued until it is written
  /// or Close purges it. Under Leader or None acks it is librdkafka's
  /// `message.timeout.ms` too.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);

  /// How long Close waits for queued messages to be delivered before it purges
  /// the rest (each purged waiter gets kClosed). Zero: purge at once.
  std::chrono::milliseconds close_timeout = std::chrono::seconds(5);

  /// librdkafka `partitioner`. murmur2_random matches the Java client, so
  /// Java and Kafka Streams consumers see a key on the partition they expect.
  /// A message without a key goes to a random partition, and librdkafka keeps
  /// that partition for the next keyless messages during
  /// `sticky.partitioning.linger.ms` (10 ms by default; set it in `properties`).
  Partitioner partitioner = Partitioner::kMurmur2Random;

  /// Any other librdkafka property ("compression.type", "security.protocol",
  /// "sasl.password", ...), applied after the defaults, so it overrides them
  /// (for example "linger.ms" or "enable.idempotence"). Properties that a field
  /// above owns ("bootstrap.servers", "client.id", "acks",
  /// "message.timeout.ms", "partitioner") are rejected: set the field.
  std::map<std::string, std::string> properties;

  /// Where log lines go. Empty: they are dropped; librdkafka never writes to
  /// stderr on its own.
  LogHook log;

  /// librdkafka `statistics.interval.ms`: how often `statistics` is called.
  /// Zero (the default): never. Set both or neither.
  std::chrono::milliseconds statistics_interval{0};
  StatisticsHook statistics;  ///< receives the statistics JSON (see StatisticsHook)
};

/// The production defaults (see the fields of KafkaConfig), with `brokers`.
KafkaConfig DefaultKafkaConfig(std::vector<std::string> brokers = {});

/// The librdkafka property names and values that `config` produces, in the
/// order they are applied, with secret values replaced by "[redacted]". For
/// logging a configuration safely and for reading what a field maps to.
std::vector<std::pair<std::string, std::string>> EffectiveProperties(const KafkaConfig& config);

/// A configuration that cannot work. what() names the field or property, the
/// value (never a secret one) and what is allowed.
class ConfigError : public std::invalid_argument {
 public:
  /// `field` names what is wrong, `what` says why (see what()).
  ConfigError(std::string field, const std::string& what)
      : std::invalid_argument(what), field_(std::move(field)) {}
  /// "brokers", "write_timeout", "properties[linger.ms]", ...
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

}  // namespace dispatch::kafka
