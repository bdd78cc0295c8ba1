/// @file
/// dispatch::kafka::KafkaPublisher: dispatch::Publisher over librdkafka.
///
/// librdkafka stays behind a pimpl: this header needs the standard library and
/// <dispatch/publisher.h> only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/publisher.h"

namespace dispatch::kafka {

/// How many replicas must acknowledge a write (librdkafka `acks`). The values
/// are Kafka's, as in the Go original.
enum class RequiredAcks : int {
  None = 0,    ///< fire and forget: an ok result only means "sent"
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
/// publisher's delivery thread: keep it short.
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

  /// librdkafka `message.timeout.ms`, and an upper bound that Publish applies
  /// itself (librdkafka's own timer can fire seconds late). Zero: no write
  /// timeout, the Context is the only deadline. When a message times out
  /// inside librdkafka, it starts a new producer epoch, and a message being
  /// retried at that moment can be written twice: a longer timeout makes that
  /// rarer (README, "Duplicates after a write timeout").
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);

  /// How long Close waits for queued messages to be delivered before it purges
  /// the rest (each purged waiter gets kClosed). Zero: purge at once.
  std::chrono::milliseconds close_timeout = std::chrono::seconds(5);

  /// librdkafka `partitioner`. murmur2_random matches the Java client, so
  /// Java and Kafka Streams consumers see a key on the partition they expect.
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

/// The number of dispatch::ErrorCode values, kOk included.
inline constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::kInternal) + 1;

/// What a publisher has done since it was created. Taking a snapshot is cheap
/// (atomic loads, no lock on the publish path), so it can back a metrics
/// endpoint that is scraped often.
struct PublisherMetrics {
  std::uint64_t published = 0;  ///< results that were ok
  std::uint64_t failed = 0;     ///< results that were not ok
  /// Failed results by code: failed_by_code[static_cast<size_t>(code)].
  std::array<std::uint64_t, kErrorCodeCount> failed_by_code{};
  /// Every result by outcome: by_delivery[static_cast<size_t>(delivery)].
  std::array<std::uint64_t, 3> by_delivery{};
  std::int64_t in_flight = 0;    ///< produced, delivery report not yet in
  std::int64_t queue_depth = 0;  ///< librdkafka's outq_len: messages and requests pending
  /// Time from the call to its result (a batch counts once per message), over
  /// the publisher's life. p50 and p99 come from a histogram with about 19%
  /// resolution; max is exact.
  double latency_p50_us = 0;
  double latency_p99_us = 0;  ///< see latency_p50_us
  double latency_max_us = 0;  ///< see latency_p50_us
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

/// Publishes to Kafka through librdkafka's idempotent producer.
///
/// Thread safety: Publish, PublishBatch and Close may be called from any
/// threads at once. A background thread serves delivery reports, so callers
/// never poll.
///
/// Results: see dispatch::Result. Every produced message ends in exactly one
/// result. After a fatal producer error (kFatal, for example the idempotence
/// guarantee broken), every later call fails fast with the same error: destroy
/// this publisher and create a new one.
class KafkaPublisher final : public Publisher {
 public:
  /// Validates the whole configuration and starts the producer. Throws
  /// ConfigError naming the field or property when the configuration is
  /// invalid. Does not wait for a broker: an unreachable cluster shows in the
  /// results of Publish.
  explicit KafkaPublisher(const KafkaConfig& config);

  /// Closes (see Close).
  ~KafkaPublisher() override;

  KafkaPublisher(const KafkaPublisher&) = delete;
  KafkaPublisher& operator=(const KafkaPublisher&) = delete;

  /// Produces a copy of `message` and waits for its delivery report, the
  /// context's deadline, the write timeout, or the context's stop token,
  /// whichever is first. Returns:
  ///  - ok, kDelivered: acknowledged as `required_acks` asks;
  ///  - kCancelled / kDeadlineExceeded, kNotDelivered: the context was already
  ///    done, nothing was produced;
  ///  - kCancelled / kDeadlineExceeded, kUnknown: the caller stopped waiting
  ///    while the message was queued or in flight; it may still be written;
  ///  - kInvalidMessage, kMessageTooLarge, kUnknownTopic, kNotAuthorized:
  ///    permanent (retriable false);
  ///  - kBrokerUnavailable, kBrokerRejected, kAuthenticationFailed: retriable;
  ///  - kAuthenticationFailed, kUnknown: a TLS handshake or SASL login failed
  ///    (wrong CA, certificate for another host, wrong password). librdkafka
  ///    keeps such messages queued and retries the connection, so the call
  ///    ends at the failure instead of at the write timeout, and later calls
  ///    end at once until a delivery succeeds again; the message stays
  ///    queued and may still be written;
  ///  - kClosed: Close was called before or during the call;
  ///  - kFatal: the producer is unusable.
  Result Publish(const Context& ctx, const Message& message) override;

  /// Produces all messages, keeping them in flight together, then waits once
  /// for all of them (bounded as Publish is). One result per message, in
  /// input order.
  std::vector<Result> PublishBatch(const Context& ctx, std::span<const Message> messages) override;

  /// Stops accepting messages (later calls return kClosed), waits up to
  /// `close_timeout` for queued messages, purges what remains (their waiters
  /// get kClosed with the delivery outcome librdkafka reports), stops the
  /// delivery thread and releases the producer. Idempotent: a second call
  /// returns ok at once. Returns ok when nothing had to be purged, else
  /// kDeadlineExceeded naming how many messages were purged.
  Result Close();

  /// Messages produced and not yet reported (queued or in flight). A message
  /// counts from just before it is handed to librdkafka, so a call still
  /// trying to enqueue (for example into a full local queue) counts too.
  int InFlight() const;

  /// A snapshot of the publisher's counters (see PublisherMetrics).
  PublisherMetrics Metrics() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch::kafka
