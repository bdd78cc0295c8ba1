/// @file
/// dispatch::Publisher: the broker-agnostic contract of an outbox publisher.
///
/// This header depends on the C++20 standard library only. A dispatcher that
/// is written against dispatch::Publisher compiles and unit-tests without any
/// Kafka header; dispatch::kafka::KafkaPublisher and
/// dispatch::testing::MockPublisher implement it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dispatch {

/// One record header. Kafka headers are ordered and a key may repeat; the
/// value is arbitrary bytes.
struct Header {
  std::string key;    ///< the header's name
  std::string value;  ///< arbitrary bytes

  /// Field by field, so tests can match what a publisher was given.
  friend bool operator==(const Header&, const Header&) = default;
};

/// One outbox row as Kafka sees it.
struct Message {
  std::string topic;  ///< checked before publishing: see ErrorCode::kInvalidMessage
  /// Absent (std::nullopt) and empty ("") are different records in Kafka: an
  /// absent key is spread over partitions, an empty key hashes like any other.
  std::optional<std::string> key;
  /// Arbitrary bytes; std::string is only the container.
  std::string value;
  std::vector<Header> headers;  ///< sent in this order

  /// Field by field, so tests can match what a publisher was given.
  friend bool operator==(const Message&, const Message&) = default;
};

/// The deadline and cancellation of one call: the C++ counterpart of Go's
/// context.Context. A Context is a small value; copy it freely. Deadlines are on
/// the steady clock, so wall-clock jumps do not move them.
class Context {
 public:
  /// Steady, so deadlines survive wall-clock jumps.
  using Clock = std::chrono::steady_clock;

  /// No deadline and no cancellation: the call is bounded only by the
  /// publisher's own write timeout.
  static Context Background() { return Context(); }

  /// `parent` with a deadline `timeout` from now (the earlier of the two
  /// deadlines wins). A zero or negative timeout gives a context that has
  /// already expired.
  static Context WithTimeout(Clock::duration timeout, const Context& parent = Background()) {
    return WithDeadline(Clock::now() + timeout, parent);
  }

  /// `parent` with `deadline` (the earlier of the two deadlines wins).
  static Context WithDeadline(Clock::time_point deadline, const Context& parent = Background()) {
    Context ctx = parent;
    ctx.deadline_ = parent.deadline_ ? std::min(*parent.deadline_, deadline) : deadline;
    return ctx;
  }

  /// `parent` cancelled when `token` is stopped. A context holds one token; a
  /// new token replaces the parent's.
  static Context WithStopToken(std::stop_token token, const Context& parent = Background()) {
    Context ctx = parent;
    ctx.stop_token_ = std::move(token);
    return ctx;
  }

  /// The earliest deadline of this context and its parents; nullopt: none.
  const std::optional<Clock::time_point>& deadline() const { return deadline_; }
  /// A token that is never stopped unless WithStopToken gave one.
  const std::stop_token& stop_token() const { return stop_token_; }

  /// Whether the token was stopped; a publisher then stops waiting with
  /// ErrorCode::kCancelled.
  bool Cancelled() const { return stop_token_.stop_requested(); }
  /// Whether the deadline has passed; a publisher then stops waiting with
  /// ErrorCode::kDeadlineExceeded.
  bool Expired() const { return deadline_ && Clock::now() >= *deadline_; }

 private:
  std::optional<Clock::time_point> deadline_;
  std::stop_token stop_token_;
};

/// Why a publish did not succeed. A small closed set: a dispatcher switches on
/// it, the message text is for people.
enum class ErrorCode {
  kOk = 0,
  kCancelled,             ///< the Context's stop token was stopped
  kDeadlineExceeded,      ///< the Context's deadline or the write timeout passed
  kClosed,                ///< the publisher was closed (before or during the call)
  kInvalidMessage,        ///< the message is malformed (for example its topic name)
  kMessageTooLarge,       ///< larger than the client or the topic accepts
  kUnknownTopic,          ///< the topic (or partition) does not exist
  kNotAuthorized,         ///< the principal may not write to the topic
  kAuthenticationFailed,  ///< SASL or TLS handshake rejected
  kBrokerUnavailable,     ///< transport failure, no leader, not enough replicas
  kBrokerRejected,        ///< any other error answered by the broker
  kFatal,                 ///< the producer is unusable (idempotence broken);
                          ///< recreate the publisher
  kInternal,              ///< an unexpected local error of the client
};

/// The number of ErrorCode values, kOk included: the size of an array indexed
/// by code (see dispatch::kafka::PublisherMetrics::failed_by_code).
inline constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::kInternal) + 1;

/// Whether the message is in the topic.
enum class Delivery {
  kDelivered,     ///< acknowledged by the broker as configured (required acks)
  kNotDelivered,  ///< certainly not written: a retry cannot duplicate it
  kUnknown,       ///< possibly written, or the caller stopped waiting: a retry
                  ///< may duplicate it (consumers deduplicate)
};

/// The number of Delivery values: the size of an array indexed by outcome.
inline constexpr std::size_t kDeliveryCount = static_cast<std::size_t>(Delivery::kUnknown) + 1;

/// The name of a code or a delivery state, in one spelling (lower case,
/// words joined by '_': "deadline_exceeded", "not_delivered"), so that both
/// serve as log fields and metric labels as they are.
///@{
[[nodiscard]] constexpr std::string_view ToString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case ErrorCode::kClosed: return "closed";
    case ErrorCode::kInvalidMessage: return "invalid_message";
    case ErrorCode::kMessageTooLarge: return "message_too_large";
    case ErrorCode::kUnknownTopic: return "unknown_topic";
    case ErrorCode::kNotAuthorized: return "not_authorized";
    case ErrorCode::kAuthenticationFailed: return "authentication_failed";
    case ErrorCode::kBrokerUnavailable: return "broker_unavailable";
    case ErrorCode::kBrokerRejected: return "broker_rejected";
    case ErrorCode::kFatal: return "fatal";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown_error_code";
}

[[nodiscard]] constexpr std::string_view ToString(Delivery delivery) {
  switch (delivery) {
    case Delivery::kDelivered: return "delivered";
    case Delivery::kNotDelivered: return "not_delivered";
    case Delivery::kUnknown: return "unknown";
  }
  return "unknown_delivery";
}
///@}

// A code or outcome added after the last one is caught here: it would be
// named "unknown_..." and counted outside the arrays sized by the counts.
static_assert(ToString(static_cast<ErrorCode>(kErrorCodeCount - 1)) != "unknown_error_code" &&
                  ToString(static_cast<ErrorCode>(kErrorCodeCount)) == "unknown_error_code",
              "kErrorCodeCount must count every ErrorCode: the last one is kInternal");
static_assert(ToString(static_cast<Delivery>(kDeliveryCount - 1)) != "unknown_delivery" &&
                  ToString(static_cast<Delivery>(kDeliveryCount)) == "unknown_delivery",
              "kDeliveryCount must count every Delivery: the last one is kUnknown");

/// The answer to one publish: a value, never an exception, because a failed
/// publish is an ordinary event in a dispatcher loop.
///
/// `[[nodiscard]]`: a dropped result is a row whose fate nobody recorded, the
/// bug an outbox exists to prevent, so every function that returns one warns
/// when its caller ignores it.
struct [[nodiscard]] Result {
  ErrorCode code = ErrorCode::kOk;  ///< what happened: switch on this, not on `message`
  /// Whether the message may be in the topic, and so whether a retry may
  /// duplicate it; meaningful on errors too.
  Delivery delivery = Delivery::kDelivered;
  /// True when the row itself is fine and publishing it again can succeed once
  /// the condition clears (or, after kFatal, once the publisher is recreated).
  /// False when the message itself is rejected (too large, invalid or
  /// unauthorized topic): the dispatcher should park the row, not retry it.
  bool retriable = false;
  /// For people: names the error and the topic. Never holds a secret.
  std::string message;
  /// Where the message landed, when delivered and known; -1 otherwise. An ok
  /// result can carry offset -1: after a retry, Kafka's idempotent producer
  /// may learn that a message is stored (from a later batch's acknowledgement
  /// or a duplicate-sequence answer) without learning its offset.
  ///@{
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  ///@}

  /// Delivered: mark the row published.
  bool ok() const { return code == ErrorCode::kOk; }
  /// Not ok and not worth retrying: park the row.
  bool permanent() const { return !ok() && !retriable; }

  /// A success, for implementations and for mocks.
  static Result Delivered(std::int32_t partition = -1, std::int64_t offset = -1) {
    Result r;
    r.partition = partition;
    r.offset = offset;
    return r;
  }
  /// A failure, for implementations and for mocks; `message` must not hold a
  /// secret.
  static Result Error(ErrorCode code, Delivery delivery, bool retriable, std::string message) {
    Result r;
    r.code = code;
    r.delivery = delivery;
    r.retriable = retriable;
    r.message = std::move(message);
    return r;
  }
};

/// The result of a call that stopped before publishing anything because its
/// context was already cancelled or expired; nullopt when the context is live.
[[nodiscard]] inline std::optional<Result> ContextError(const Context& ctx) {
  if (ctx.Cancelled()) {
    return Result::Error(ErrorCode::kCancelled, Delivery::kNotDelivered, true,
                         "context cancelled before publish; the message was not produced");
  }
  if (ctx.Expired()) {
    return Result::Error(ErrorCode::kDeadlineExceeded, Delivery::kNotDelivered, true,
                         "context deadline passed before publish; the message was not produced");
  }
  return std::nullopt;
}

/// Publishes outbox rows. Implementations are thread-safe: any number of
/// threads may call Publish and PublishBatch at once.
class Publisher {
 public:
  virtual ~Publisher() = default;

  /// Publishes one message and returns when it is acknowledged, fails, the
  /// context's deadline passes, or its token is stopped, whichever is first.
  virtual Result Publish(const Context& ctx, const Message& message) = 0;

  /// Publishes all messages and returns one result per message, in input
  /// order. Mark published exactly the rows whose result is ok(). This default
  /// publishes one at a time; a Kafka publisher keeps them in flight together.
  [[nodiscard]] virtual std::vector<Result> PublishBatch(const Context& ctx,
                                                         std::span<const Message> messages) {
    std::vector<Result> results;
    results.reserve(messages.size());
    for (const Message& message : messages) {
      results.push_back(Publish(ctx, message));
    }
    return results;
  }

  /// Whether PublishBatch keeps the messages of one topic and key in input
  /// order through failures, so that a caller may send several of them in
  /// one call (dispatch::Dispatcher then sends a key's claimed rows together
  /// instead of one per call). True promises, for the messages of one topic
  /// and key:
  /// - within a call, a message is written only after every earlier one of
  ///   them was written, or got a permanent result (Result::permanent());
  /// - across calls the same holds in call order, provided that after a call
  ///   that returned a not-ok result with Delivery::kUnknown for such a
  ///   message, the caller makes no further call and destroys the publisher
  ///   (which ends what it still has queued).
  ///
  /// The default, false, suits the base PublishBatch, which publishes one
  /// message after another whatever the earlier ones' results.
  /// dispatch::kafka::KafkaPublisher returns true when its producer is
  /// idempotent. The dispatcher asks once per round.
  virtual bool OrdersKeysInBatch() const { return false; }
};

}  // namespace dispatch
