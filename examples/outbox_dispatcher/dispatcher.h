// The outbox dispatcher: moves pending rows to a dispatch::Publisher and
// records what happened. It knows nothing of Kafka.
//
// Delivery is at least once: a row is marked published only after its publish
// returned ok, so a crash between the publish and the mark publishes the row
// again on the next run. Consumers deduplicate (each message carries the row
// id in its "outbox-id" header).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "dispatch/publisher.h"
#include "outbox_store.h"

namespace outbox {

struct DispatcherOptions {
  std::size_t batch_size = 500;  // rows fetched per round
  std::chrono::milliseconds publish_timeout = std::chrono::seconds(5);  // per PublishBatch
};

struct RoundStats {
  std::size_t fetched = 0;
  std::size_t published = 0;
  std::size_t failed = 0;    // retriable: stay pending for a later round
  std::size_t parked = 0;    // permanent: moved to the dead-letter state
  std::size_t deferred = 0;  // held back because an earlier row of the key failed
  // Per published or failed row: how long its PublishBatch call took.
  std::vector<double> latencies_ms;
  // The last failure's message, for reporting.
  std::string last_error;
};

class Dispatcher {
 public:
  Dispatcher(Store& store, dispatch::Publisher& publisher, DispatcherOptions options = {});

  // Runs one round: fetches up to batch_size pending rows in id order and
  // publishes them in waves, each wave one PublishBatch holding at most one
  // row per aggregate. A key whose row failed (retriably) in this round has
  // its later rows deferred to the next round, so per-key order holds. A row
  // with a permanent error is parked and does not hold back its key.
  RoundStats RunOnce();

 private:
  Store& store_;
  dispatch::Publisher& publisher_;
  DispatcherOptions options_;
};

// The Message a row becomes: key = aggregate id, headers + "outbox-id".
dispatch::Message ToMessage(const Row& row);

}  // namespace outbox
