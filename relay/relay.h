// Relay: dispatch-relay's running parts. The store (wrapped to track its
// health), a Dispatcher making KafkaPublishers, the Dispatcher's Run on a
// thread of its own, the retention job, and the HTTP endpoint (relay-http's,
// plugged in at the hook points of relay.cpp).
//
// Stop(): the dispatcher's Run returns within dispatcher.publish_timeout
// (the wave in flight is cancelled; only rows Kafka acknowledged are
// marked: the Dispatcher's guarantee), then the dispatcher is destroyed,
// which closes its publisher within kafka.close_timeout.
#pragma once

#include <memory>

#include "dispatch/dispatcher.h"
#include "relay/config.h"
#include "relay/snapshot.h"

namespace dispatch::relay {

class Relay {
 public:
  // Connects the store (StoreError when it is unusable), makes the first
  // publisher (kafka::ConfigError when librdkafka refuses the
  // configuration) and, with retention enabled, the retention job's store
  // (std::runtime_error when the store lacks OutboxAdmin). Starts nothing.
  explicit Relay(RelayConfig config);
  ~Relay();  // Stop()
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Starts the dispatcher's thread, the retention job and the HTTP endpoint.
  void Start();
  // Bounded (see above) and idempotent; returns the dispatcher's totals.
  DispatcherMetrics Stop();
  // What /metrics and /readyz read. Cheap, any thread.
  RelaySnapshot Snapshot() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch::relay
