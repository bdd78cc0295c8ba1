/// @file
/// dispatch::kafka::KafkaPublisher: dispatch::Publisher over librdkafka.
///
/// librdkafka stays behind a pimpl: this header needs the standard library and
/// the project's own headers only. It includes the configuration
/// (<dispatch/kafka/config.h>) and the metrics (<dispatch/kafka/metrics.h>),
/// so one include gives everything a service needs to publish.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dispatch/kafka/config.h"
#include "dispatch/kafka/metrics.h"
#include "dispatch/publisher.h"

namespace dispatch::kafka {

/// Publishes to Kafka through librdkafka's idempotent producer.
///
/// Thread safety: Publish, PublishBatch and Close may be called from any
/// threads at once; callers never poll. While calls wait, one waiting caller
/// serves librdkafka's delivery reports on its own thread and wakes the
/// others (the oldest one still waiting takes over when it is done); while
/// none waits, an internal thread does, every 50 ms.
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
  ///  - ok, kDelivered: acknowledged as `required_acks` asks; with
  ///    RequiredAcks::None, ok carries kUnknown and offset -1 (no
  ///    acknowledgement comes back);
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
  /// for all of them. One result per message, in input order; the results
  /// are those of Publish, and:
  ///  - the context bounds the whole call, also while messages are being
  ///    handed to librdkafka: a message the call has not handed over when the
  ///    deadline passes or the stop token is stopped is not produced and gets
  ///    kDeadlineExceeded / kCancelled with kNotDelivered, and the call returns
  ///    within about a millisecond of the deadline or the stop request, at any
  ///    batch size;
  ///  - the write timeout counts per message from its hand-over (as
  ///    librdkafka's message.timeout.ms does), not from the start of the call:
  ///    the call waits until the write timeout has passed for the last message
  ///    handed over, so a batch whose enqueueing takes longer than the write
  ///    timeout (a full local queue, a slow broker) does not fail its tail. A
  ///    message that waits for room in a full local queue for the write
  ///    timeout gets kDeadlineExceeded with kNotDelivered;
  ///  - a message that could not be handed over with a retriable result (its
  ///    wait for room ended, the context ended) stops the later messages of
  ///    its topic and key in the batch: they are not produced, and get the
  ///    same code, kNotDelivered and retriable, so that none of them can be
  ///    written before it (see OrdersKeysInBatch).
  std::vector<Result> PublishBatch(const Context& ctx, std::span<const Message> messages) override;

  /// True when the producer is idempotent (required_acks All, and
  /// `enable.idempotence` not turned off in `properties`). Then the messages
  /// of one topic and key go to one partition and are written in produce
  /// order within a producer id and epoch (librdkafka's INTRODUCTION.md,
  /// "Idempotent Producer"), with up to 5 requests in flight; librdkafka
  /// times no message out (`message.timeout.ms` is 0 under acks All), so no
  /// timeout leaves a gap in that order; a message that could not be handed
  /// over stops the later ones of its key (PublishBatch). What remains is a
  /// permanent broker refusal, after which later messages are written
  /// (librdkafka starts a new epoch); the refused message gets the permanent
  /// result. So Publisher::OrdersKeysInBatch's promise holds; the argument,
  /// with its one exception, is in docs/outbox-dispatcher.md, "A key's order
  /// through failures".
  bool OrdersKeysInBatch() const override;

  /// Looks up `topics` on the cluster before the first publish, one result
  /// per topic in input order, so that a service learns at start that a
  /// topic is missing or forbidden. Without it the first publish to a topic
  /// is fast too: on librdkafka before 2.10.1, whose producer holds the first
  /// message to a topic it has not seen for a metadata timer (about 1 s), a
  /// call looks such a topic up itself after handing its messages over
  /// (PublisherMetrics::topic_lookups), bounded by its deadline and by that
  /// second. Returns:
  ///  - ok: the topic exists and this client may see it; the producer knows
  ///    its partitions and leaders (delivery and offset carry nothing);
  ///  - kUnknownTopic / kNotAuthorized (permanent), kInvalidMessage for a bad
  ///    name;
  ///  - kBrokerUnavailable and other retriable codes, or kDeadlineExceeded
  ///    when no broker answered in time: the context's deadline bounds the
  ///    call, else the write timeout, else 10 s; the stop token is checked
  ///    every 200 ms;
  ///  - kClosed, kFatal: as for Publish.
  /// Every result has kNotDelivered: nothing is produced. Thread-safe; a
  /// topic prepared twice is looked up twice.
  std::vector<Result> Prepare(const Context& ctx, std::span<const std::string> topics);

  /// Stops accepting messages (later calls return kClosed), waits up to
  /// `close_timeout` for queued messages, purges what remains (their waiters
  /// get kClosed with the delivery outcome librdkafka reports), stops
  /// serving delivery reports and releases the producer. Idempotent: a second call
  /// returns ok at once. Returns ok when nothing had to be purged, else
  /// kDeadlineExceeded naming how many messages were purged and their
  /// outcomes, with the delivery its waiters got: kNotDelivered when every
  /// purged message was reported not persisted, kUnknown when any may have
  /// been written. A Prepare in progress delays it by at most 200 ms.
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
