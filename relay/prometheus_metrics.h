// The relay's snapshot as Prometheus metric families (prometheus-cpp's
// core types), and the collectable that /metrics serializes. The
// dispatcher's and the publisher's numbers are already totals, so each
// counter is set from the snapshot at scrape time: nothing is incremented
// here, and a scrape costs one snapshot (no database query).
//
// Names, in Prometheus's conventions (counters end in _total, times are in
// seconds): docs/relay-metrics.md lists them with what to alert on, and
// tests/relay/http_metrics_test.cpp checks them.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "snapshot.h"

namespace dispatch::relay {

// The families of `s`. `now` and `steady_now` turn s.started (steady clock)
// into the start time's wall clock; the start time is left out when
// s.started is the clock's epoch (not set).
std::vector<prometheus::MetricFamily> ToMetricFamilies(
    const RelaySnapshot& s, std::chrono::system_clock::time_point now,
    std::chrono::steady_clock::time_point steady_now);

// Prometheus's text exposition format (version 0.0.4) of `families`.
std::string SerializeText(const std::vector<prometheus::MetricFamily>& families);

// Takes a snapshot at each Collect (from the HTTP server's threads, perhaps
// two at once: `snapshot` must be thread-safe) and returns its families.
class SnapshotCollectable : public prometheus::Collectable {
 public:
  explicit SnapshotCollectable(std::function<RelaySnapshot()> snapshot);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<RelaySnapshot()> snapshot_;
};

}  // namespace dispatch::relay
