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

/// Makes a publisher; the dispatcher calls it at start and again after a
/// kFatal result (a fatal publisher cannot recover by itself). May throw;
/// the dispatcher then retries it after the retry backoff.
using PublisherFactory = std::function<std::unique_ptr<Publisher>()>;

struct DispatcherOptions {
  std::size_t batch_size = 500;  ///< rows claimed per round
  /// Deadline of one wave's PublishBatch; a wave that runs out gets
  /// kDeadlineExceeded and its rows are retried.
  std::chrono::milliseconds publish_timeout = std::chrono::seconds(10);
  /// Backoff of a retriable failure, per row: min(cap, base * 2^(attempts-1)),
  /// with full jitter.
  std::chrono::milliseconds retry_base = std::chrono::milliseconds(100);
  std::chrono::milliseconds retry_cap = std::chrono::seconds(30);
  /// Run's pause after an empty round, doubling up to poll_max; reset by a
  /// round that found rows.
  std::chrono::milliseconds poll_min = std::chrono::milliseconds(10);
  std::chrono::milliseconds poll_max = std::chrono::seconds(1);
  /// The header that carries the row id, for consumers to deduplicate on.
  std::string id_header = "outbox-id";
};

/// What one round did.
struct RoundStats {
  std::size_t claimed = 0;
  std::size_t published = 0;
  std::size_t retried = 0;   ///< retriable failures: pending, with a backoff
  std::size_t parked = 0;    ///< permanent failures
  std::size_t deferred = 0;  ///< later rows of a key whose earlier row failed
  std::string last_error;
};

/// Totals since construction, readable from any thread.
struct DispatcherMetrics {
  std::uint64_t rounds = 0;
  std::uint64_t published = 0;
  std::uint64_t retried = 0;
  std::uint64_t parked = 0;
  std::uint64_t publisher_recreated = 0;
  std::uint64_t store_errors = 0;
  /// Age of the oldest pending row at the last round (outbox lag).
  std::chrono::milliseconds oldest_pending_age{0};
  double rows_per_second = 0;  ///< published rows / s over the last rounds
};

class Dispatcher {
 public:
  Dispatcher(OutboxStore& store, PublisherFactory factory, DispatcherOptions options = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// One round: claim, publish in waves of at most one row per key, record.
  /// A stop request ends the round after the wave in flight: its rows get
  /// their results, and only ok rows are marked. Throws nothing: store and
  /// factory errors are counted and reported in RoundStats::last_error.
  RoundStats RunOnce(std::stop_token stop = {});

  /// Rounds until `stop` is requested, pausing between empty rounds.
  /// Returns within publish_timeout of the request.
  void Run(std::stop_token stop);

  DispatcherMetrics Metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The Message a row becomes: key, topic, payload, headers, plus
/// `id_header` holding the row id in decimal.
Message ToMessage(const OutboxRow& row, const std::string& id_header = "outbox-id");

}  // namespace dispatch
