// Internal helpers of the Kafka publisher, split out so that unit tests can
// reach them without a broker. Not installed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/kafka/config.h"
#include "dispatch/publisher.h"

namespace dispatch::kafka::internal {

// librdkafka's rd_kafka_msg_status_t, by value.
enum class Persisted { kNot = 0, kPossibly = 1, kYes = 2 };

// Maps a librdkafka error code (rd_kafka_resp_err_t as int) and the message's
// persistence status to a Result. `detail` is librdkafka's text for this
// occurrence (may be empty).
Result MapError(int rd_err, Persisted persisted, std::string_view topic, std::string_view detail);

// Why `topic` is not a valid Kafka topic name, or nullopt when it is.
std::optional<std::string> TopicNameProblem(std::string_view topic);

// The bytes librdkafka's message-size check counts for `m` (rd_kafka_msg_new0:
// key + value + headers as serialized, plus its worst-case per-record
// overhead of 36 bytes), which it compares with message.max.bytes.
std::size_t CheckedRecordSize(const Message& m);

// The text of a kMessageTooLarge result that librdkafka gave at produce():
// the size it checked, how it is made up, and the limit it exceeds.
std::string TooLargeText(const Message& m, long long max_message_bytes);

// True for properties whose values must never be printed.
bool IsSecretProperty(std::string_view name);

// What an authentication failure's text gets appended when `config` logs in
// with SCRAM and the librdkafka in use (rd_kafka_version()'s number and
// name) is older than 2.6.1, which cannot log in with SCRAM to a Kafka 4
// broker even with the right password (confluentinc/librdkafka#4895); "" in
// every other case.
std::string ScramCaveat(const KafkaConfig& config, int librdkafka_version,
                        std::string_view librdkafka_version_name);

// `text` with every occurrence of `secret` replaced by "[redacted]".
std::string Redact(std::string text, std::string_view secret);

// A value as it may appear in an error text: quoted, control bytes escaped,
// cut after a few dozen characters.
std::string Printable(std::string_view value);

// The properties `config` maps to, in order, with values unredacted, each with
// the name of the KafkaConfig field it comes from. Throws ConfigError for any
// problem found without librdkafka (broker syntax, timeouts, acks, owned
// properties, idempotence with acks other than All).
struct Property {
  std::string name;
  std::string value;
  std::string field;  // "brokers", "properties[linger.ms]", ...
};
std::vector<Property> BuildProperties(const KafkaConfig& config);

}  // namespace dispatch::kafka::internal
