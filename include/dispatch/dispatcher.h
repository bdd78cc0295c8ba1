/// @file
/// dispatch::Dispatcher: the outbox loop. Claims pending rows from an
/// OutboxStore, publishes them through a dispatch::Publisher, and records
/// what happened. Knows nothing of Kafka or of any database.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "dispatch/outbox_store.h"
#include "dispatch/publisher.h"

namespace dispatch {

/// Makes a publisher; the dispatcher calls it at its first round and again
/// after a kFatal result (a fatal publisher cannot recover by itself). May
/// throw; the round then ends with RoundStats::round_failed, and the next
/// round calls it again (Run pauses with the retry backoff first).
using PublisherFactory = std::function<std::unique_ptr<Publisher>()>;

/// How a Dispatcher claims, publishes, backs off and polls. The Dispatcher
/// constructor rejects a bad value with std::invalid_argument naming the
/// field and the value.
struct DispatcherOptions {
  std::size_t batch_size = 500;  ///< rows claimed per round; at least 1
  /// Deadline of one wave's PublishBatch; a wave that runs out gets
  /// kDeadlineExceeded and its rows are retried. Also the bound of a stop:
  /// Run returns within it of the request. Positive.
  std::chrono::milliseconds publish_timeout = std::chrono::seconds(10);
  /// Backoff of a retriable failure, per row: a uniformly random time in
  /// [0, min(cap, base * 2^(attempts-1))] ("full jitter"), attempts counting
  /// this failure. Run's pause after a failed round (RoundStats::round_failed)
  /// uses the same formula with the number of failed rounds in a row.
  /// Positive, base <= cap.
  std::chrono::milliseconds retry_base = std::chrono::milliseconds(100);
  std::chrono::milliseconds retry_cap = std::chrono::seconds(30);  ///< see retry_base
  /// Run's pause after a round that claimed nothing, on a store that does
  /// not wake (OutboxStore::WakesOnNewRows false): poll_min, doubling up to
  /// poll_max; reset by a round that claimed rows. A row whose backoff ends
  /// while Run pauses waits for the pause to end. Positive, min <= max.
  std::chrono::milliseconds poll_min = std::chrono::milliseconds(10);
  /// See poll_min. On a store that wakes, the longest wait after a round
  /// that claimed nothing (OutboxStore::WaitForRows until now + poll_max,
  /// or until the earliest retry time this dispatcher recorded, if sooner):
  /// rows also become claimable with no insert (another dispatcher releases
  /// them or dies, an operator requeues them), and this bounds how late
  /// they are noticed.
  std::chrono::milliseconds poll_max = std::chrono::seconds(1);
  /// On a store that wakes, Run's pause after a wake before it claims, so
  /// that a burst of commits of one row each becomes one claim rather than
  /// one per row. It adds to the latency of every woken row. Positive, at
  /// most poll_max.
  std::chrono::milliseconds wake_coalesce = std::chrono::milliseconds(2);
  /// The header that carries the row id, for consumers to deduplicate on.
  /// Not empty.
  std::string id_header = "outbox-id";
};

/// What one round did.
struct RoundStats {
  std::size_t claimed = 0;    ///< rows the store handed out
  std::size_t published = 0;  ///< rows marked published (ok results, recorded)
  std::size_t retried = 0;    ///< retriable failures: pending, with a backoff
  std::size_t parked = 0;     ///< permanent failures
  std::size_t deferred = 0;   ///< later rows of a key whose earlier row failed
  /// Claimed rows given back unrecorded: not sent because of a stop or a
  /// fatal publisher, cancelled by the stop, failed with kFatal, or all the
  /// round's rows when recording failed. They stay pending, unchanged.
  std::size_t released = 0;
  /// A store error, a factory error or a broken publisher (kFatal, or one
  /// that threw or miscounted its results) ended the round; Run pauses with
  /// the retry backoff before the next. What was recorded is what
  /// `published`, `retried` and `parked` count (zero when Claim or Finish
  /// failed).
  bool round_failed = false;
  /// The round's last error: a publish failure, a store error or a factory
  /// error; empty when there was none.
  std::string last_error;
};

/// Totals since construction, readable from any thread.
struct DispatcherMetrics {
  std::uint64_t rounds = 0;     ///< RunOnce calls that ran (not stopped before claiming)
  std::uint64_t published = 0;  ///< rows marked published
  std::uint64_t retried = 0;    ///< retriable failures recorded with a backoff
  std::uint64_t parked = 0;     ///< rows parked on a permanent failure
  std::uint64_t waves = 0;      ///< PublishBatch calls: published / waves is the rows per call
  /// Publishers made to replace one that returned kFatal (or threw), or one
  /// that was ended because a run of a key came back unknown (see Dispatcher).
  std::uint64_t publisher_recreated = 0;
  std::uint64_t factory_failures = 0;  ///< PublisherFactory calls that threw
  std::uint64_t store_errors = 0;      ///< StoreError from any store call
  /// Age of the oldest pending row at the end of the last round that could
  /// read it (outbox lag); zero when nothing is pending.
  std::chrono::milliseconds oldest_pending_age{0};
  /// Rows marked published per second, over the rounds that ended in the last
  /// 10 seconds (from the start of the first of them to the end of the last).
  double rows_per_second = 0;
};

/// The outbox loop: claims rows from an OutboxStore, publishes them in waves
/// (one PublishBatch each), and records the round in one Finish.
///
/// - A wave carries each key's first remaining row; when the publisher
///   orders a key's messages within a batch (Publisher::OrdersKeysInBatch),
///   also the rows after it with the same topic (a run), in id order, so a
///   key with many rows moves at a batch per round trip, not a row. A key's
///   rows to another topic wait for a later wave.
/// - A row is marked published only after an ok result (at least once).
/// - A permanent failure parks the row; its key goes on.
/// - A retriable failure records a per-row backoff (RowFailure::retry_at);
///   the later rows of its key are released unchanged (deferred), other keys
///   go on.
/// - A kFatal result (or a publisher that throws) releases the rows not ok
///   and recreates the publisher through the factory.
/// - When a wave carried a run and a row came back not ok with
///   Delivery::kUnknown, the publisher is destroyed before the round is
///   recorded and a new one made, as OrdersKeysInBatch requires.
/// - A store error releases the claim; the round records nothing.
///
/// So the first copy of every row of a key reaches Kafka after the first
/// copies of the key's earlier rows, parked rows aside:
/// docs/outbox-dispatcher.md, "A key's order through failures".
///
/// RunOnce and Run are called from one thread at a time; Metrics from any.
class Dispatcher {
 public:
  /// Uses `store` (which must outlive the dispatcher) and makes publishers
  /// with `factory` (first called by the first round). Throws
  /// std::invalid_argument on an empty factory or a bad option.
  Dispatcher(OutboxStore& store, PublisherFactory factory, DispatcherOptions options = {});
  /// Destroys the publisher (a Kafka publisher closes within its bound).
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// One round: claim, publish in waves (see the class), record.
  /// A stop request ends the round after the wave in flight: the token is in
  /// that wave's Context, so PublishBatch returns promptly; rows cancelled by
  /// it are released and only ok rows are marked. A round started after the
  /// request claims nothing. Throws nothing: store and factory errors are
  /// counted and reported in RoundStats::last_error.
  RoundStats RunOnce(std::stop_token stop = {});

  /// Rounds until `stop` is requested, pausing after failed rounds (retry
  /// backoff) and after rounds that claimed nothing: on a store that wakes
  /// (OutboxStore::WakesOnNewRows), it waits in OutboxStore::WaitForRows
  /// until a sign of new rows (then wake_coalesce more), poll_max, or the
  /// earliest retry time it recorded, whichever is first; on another store
  /// it polls (poll_min doubling to poll_max). Every pause wakes at once on
  /// the request. Returns within publish_timeout of the request, plus the
  /// time of the Finish in flight, plus the publisher's close when the stop
  /// cut short a run of a key (a KafkaPublisher's close_timeout).
  void Run(std::stop_token stop);

  /// A copy of the totals; thread-safe.
  DispatcherMetrics Metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The Message a row becomes: key, topic, payload, headers, plus
/// `id_header` holding the row id in decimal.
Message ToMessage(const OutboxRow& row, const std::string& id_header = "outbox-id");

}  // namespace dispatch
