// PublisherTally: the publisher's counters over the relay's life, not only
// over the life of the publisher the dispatcher holds now. The dispatcher
// destroys a publisher that returned kFatal and makes another through its
// factory; a counter read from the new one alone would fall back to zero,
// which Prometheus reads as a counter reset and which loses what the old
// one did. The relay's factory wraps each publisher it makes with Wrap; the
// tally keeps the last snapshot of each retired one.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/kafka/metrics.h"
#include "dispatch/publisher.h"

namespace dispatch::relay {

// Thread-safe: Wrap, the wrapped publishers and their destruction may run on
// the dispatcher's thread while Total and Fatal run on the HTTP server's.
// The tally must outlive every publisher it wrapped.
class PublisherTally {
 public:
  // Reads a publisher's counters; called under the tally's lock, until the
  // wrapper is destroyed, so it must not call back into the tally.
  using MetricsFn = std::function<kafka::PublisherMetrics()>;

  PublisherTally() = default;
  PublisherTally(const PublisherTally&) = delete;
  PublisherTally& operator=(const PublisherTally&) = delete;

  // A Publisher that forwards every call to `publisher` and notes a kFatal
  // result. When the wrapper is destroyed, `metrics` is read a last time and
  // that snapshot joins the retired ones. The newest wrapper is the live
  // one (Fatal). Throws std::invalid_argument on a null publisher or an
  // empty metrics function.
  std::unique_ptr<Publisher> Wrap(std::unique_ptr<Publisher> publisher, MetricsFn metrics);
  // The same for a Kafka publisher, whose Metrics() is read; its wrapper
  // closes it (KafkaPublisher::Close, bounded) before the last read, so
  // the results of what Close purges are counted.
  std::unique_ptr<Publisher> Wrap(std::unique_ptr<kafka::KafkaPublisher> publisher);

  // The counters of every publisher wrapped so far, the retired ones' last
  // snapshots plus the current values of the ones not yet destroyed:
  // published, failed, by code, by delivery, topic lookups, the latency
  // buckets and sum are added; latency_max_us is the largest. The gauges
  // in_flight and queue_depth, and latency_p50_us / p99_us (which do not
  // add up), are those of the publishers not yet destroyed (the newest one
  // for the quantiles); 0 when there is none.
  kafka::PublisherMetrics Total() const;

  // Whether the newest publisher returned a kFatal result. Stays true after
  // the dispatcher destroys it, until Wrap is given its replacement: while
  // the factory fails, the relay has no working publisher.
  bool Fatal() const;

 private:
  // One wrapped publisher: how to read it, and whether it returned kFatal.
  struct Entry {
    MetricsFn metrics;
    std::atomic<bool> fatal{false};
  };
  class Wrapper;
  // Called by a wrapper's destructor while its publisher still exists.
  void Retire(const std::shared_ptr<Entry>& entry);

  mutable std::mutex mu_;
  kafka::PublisherMetrics retired_;           // guarded by mu_
  std::vector<std::shared_ptr<Entry>> live_;  // wrappers not yet destroyed; guarded by mu_
  std::shared_ptr<Entry> newest_;             // guarded by mu_
};

// Adds `b`'s counters to `a` as Total describes (counters and buckets
// summed, max taken; gauges and quantiles left as in `a`).
void AddCounters(kafka::PublisherMetrics& a, const kafka::PublisherMetrics& b);

}  // namespace dispatch::relay
