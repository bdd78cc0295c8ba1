// What the relay knows about itself at one moment: the numbers /metrics
// exposes and the facts /readyz decides on. relay.cpp fills it (on the HTTP
// server's thread, at each request); http_endpoint.cpp reads it. Cheap to
// take: atomic loads and the dispatcher's own snapshot, no database query.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "dispatch/dispatcher.h"
#include "dispatch/kafka/metrics.h"

namespace dispatch::relay {

// The retention job's counters (retention.cpp).
struct RetentionMetrics {
  std::uint64_t batches = 0;      // DeletePublished calls that ran
  std::uint64_t deleted = 0;      // published rows deleted
  std::uint64_t errors = 0;       // batches that threw StoreError
  double last_batch_seconds = 0;  // how long the last batch took
};

struct RelaySnapshot {
  DispatcherMetrics dispatcher;
  // Cumulative over every publisher the dispatcher made: the counters of a
  // publisher it replaced (a fatal one) stay in (publisher_tally.h).
  kafka::PublisherMetrics publisher;
  RetentionMetrics retention;
  bool retention_enabled = false;
  // The store answered its last call (the dispatcher's store, as the relay
  // wraps it); false from the first failed call until the next one that
  // succeeds. store_error is the failure's message (never a secret).
  bool store_ok = true;
  std::string store_error;
  // The current publisher returned a fatal result and has not been replaced.
  bool publisher_fatal = false;
  std::chrono::steady_clock::time_point started;
};

}  // namespace dispatch::relay
