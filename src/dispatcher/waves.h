// Which claimed rows travel together in one PublishBatch (a wave), and what a
// wave's results mean for each row: the per-key rule of docs/outbox-dispatcher.md,
// "A key's order through failures". The round around it is dispatcher.cpp's.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

#include "dispatch/outbox_store.h"
#include "dispatch/publisher.h"

namespace dispatch::waves {

struct Wave {
  std::vector<OutboxRow> rows;   // to publish now, in claim (id) order
  std::vector<OutboxRow> later;  // for the next waves, in claim order
  std::size_t deferred = 0;      // rows of keys in `failed_keys`: not sent this round
  bool has_run = false;          // some key has several rows in `rows`
};

// The next wave of `remaining` (claimed rows in id order). Rows of a key in
// `failed_keys` are dropped (counted in `deferred`). Otherwise each key sends
// its first remaining row and, when `runs` (the publisher orders a key's
// messages within a batch), the rows after it up to the first one with
// another topic: a run. The rest waits for a later wave.
Wave Next(std::vector<OutboxRow> remaining, const std::unordered_set<std::string>& failed_keys,
          bool runs);

// What the dispatcher does with one row of a wave, given its result.
enum class Outcome {
  kPublished,  // ok: mark it published
  kPark,       // permanent: park it; its key goes on
  kRetry,      // retriable: record the failure with a backoff; its key stops
  kRelease,    // leave it pending, unchanged (stop, fatal, or after its key stopped)
};

// Walks a wave's results in order and decides each row's outcome. Once a
// key's row is neither ok nor permanent, the key stops for the round: only
// ok results of its later rows count (those rows are in Kafka), the others
// are released unchanged, and `failed_keys` gets the key when the stopping
// row is retried.
class Walk {
 public:
  // `has_run`: the wave carried several rows of some key. `stopping`: the
  // round's stop was requested (a kCancelled result is then ours, not the
  // row's).
  Walk(bool has_run, bool stopping, std::unordered_set<std::string>& failed_keys)
      : has_run_(has_run), stopping_(stopping), failed_keys_(failed_keys) {}

  Outcome Decide(const OutboxRow& row, const Result& result);

  // The wave carried a run and a row came back not ok with
  // Delivery::kUnknown: the publisher may still hold rows of the run queued,
  // so it must be destroyed before another call (the caller's part of
  // Publisher::OrdersKeysInBatch).
  bool must_abandon_publisher() const { return must_abandon_; }
  // Rows released because an earlier row of their key in this wave was
  // retried (RoundStats::deferred).
  std::size_t deferred() const { return deferred_; }

 private:
  const bool has_run_;
  const bool stopping_;
  std::unordered_set<std::string>& failed_keys_;
  std::unordered_set<std::string> stopped_keys_;  // stopped in this wave
  bool must_abandon_ = false;
  std::size_t deferred_ = 0;
};

}  // namespace dispatch::waves
