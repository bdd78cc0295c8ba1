// librdkafka error codes -> dispatch::Result.
#include <librdkafka/rdkafka.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "internal.h"

namespace dispatch::kafka::internal {
namespace {

struct Class {
  ErrorCode code;
  bool retriable;
};

Class Classify(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return {ErrorCode::kOk, false};

    // The write timeout (message.timeout.ms) or a local wait ran out.
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return {ErrorCode::kDeadlineExceeded, true};

    // Purged by Close.
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY: return {ErrorCode::kClosed, true};

    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE: return {ErrorCode::kMessageTooLarge, false};

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: return {ErrorCode::kUnknownTopic, false};

    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE: return {ErrorCode::kInvalidMessage, false};

    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return {ErrorCode::kNotAuthorized, false};

    // Not the row's fault: the credentials or certificates are wrong, and
    // the row can go once they are fixed.
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR__SSL: return {ErrorCode::kAuthenticationFailed, true};

    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED: return {ErrorCode::kBrokerUnavailable, true};

    // The producer is unusable; the row is fine and goes through a new one.
    case RD_KAFKA_RESP_ERR__FATAL: return {ErrorCode::kFatal, true};

    default:
      // An error we do not know is no proof that the row is poison: keep it.
      return {err > 0 ? ErrorCode::kBrokerRejected : ErrorCode::kInternal, true};
  }
}

Delivery FromPersisted(Persisted p) {
  switch (p) {
    case Persisted::kNot: return Delivery::kNotDelivered;
    case Persisted::kPossibly: return Delivery::kUnknown;
    case Persisted::kYes: return Delivery::kDelivered;
  }
  return Delivery::kUnknown;
}

}  // namespace

Result MapError(int rd_err, Persisted persisted, std::string_view topic, std::string_view detail) {
  const auto err = static_cast<rd_kafka_resp_err_t>(rd_err);
  const Class c = Classify(err);
  if (c.code == ErrorCode::kOk) return Result::Delivered();
  std::string text = std::string(ToString(c.code)) + ": ";
  text += (detail.empty() ? rd_kafka_err2str(err) : std::string(detail));
  text += " (topic " + Printable(topic) + ", librdkafka " + rd_kafka_err2name(err) + ")";
  // A failed report that says "persisted" cannot be trusted as delivered.
  Delivery d = FromPersisted(persisted);
  if (d == Delivery::kDelivered) d = Delivery::kUnknown;
  return Result::Error(c.code, d, c.retriable, std::move(text));
}

std::optional<std::string> TopicNameProblem(std::string_view topic) {
  constexpr std::size_t kMaxTopicLength = 249;
  if (topic.empty()) return "topic name is empty";
  if (topic.size() > kMaxTopicLength) {
    return "topic name has " + std::to_string(topic.size()) + " characters; at most " +
           std::to_string(kMaxTopicLength) + " are allowed";
  }
  if (topic == "." || topic == "..") return "topic name " + Printable(topic) + " is not allowed";
  for (std::size_t i = 0; i < topic.size(); ++i) {
    const char c = topic[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return "topic name " + Printable(topic) + " has the character " +
             Printable(topic.substr(i, 1)) + " at position " + std::to_string(i) +
             "; allowed are ASCII letters, digits, '.', '_' and '-'";
    }
  }
  return std::nullopt;
}

namespace {

// Bytes of the zigzag varint librdkafka writes for a length `n` (a header
// name's or value's).
std::size_t VarintSize(std::size_t n) {
  std::uint64_t v = static_cast<std::uint64_t>(n) << 1;  // zigzag of a non-negative length
  std::size_t bytes = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++bytes;
  }
  return bytes;
}

// librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: the largest varints of a
// record's length, timestamp delta, offset delta, key and value lengths and
// header count, and its attributes byte (rdkafka_proto.h).
constexpr std::size_t kRecordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5;

// The headers as librdkafka serializes them: per header, the name and value
// with their lengths.
std::size_t HeadersSize(const Message& m) {
  std::size_t n = 0;
  for (const Header& h : m.headers) {
    n += h.key.size() + VarintSize(h.key.size()) + h.value.size() + VarintSize(h.value.size());
  }
  return n;
}

}  // namespace

std::size_t CheckedRecordSize(const Message& m) {
  return kRecordOverhead + m.value.size() + (m.key ? m.key->size() : 0) + HeadersSize(m);
}

std::string TooLargeText(const Message& m, long long max_message_bytes) {
  const std::size_t headers = HeadersSize(m);
  return "message too large: the record counts " + std::to_string(CheckedRecordSize(m)) +
         " bytes (value " + std::to_string(m.value.size()) + ", key " +
         std::to_string(m.key ? m.key->size() : 0) + ", headers " + std::to_string(headers) +
         ", librdkafka's per-record allowance " + std::to_string(kRecordOverhead) +
         ") against the client's message.max.bytes of " + std::to_string(max_message_bytes) +
         " (topic " + Printable(m.topic) + ")";
}

}  // namespace dispatch::kafka::internal
