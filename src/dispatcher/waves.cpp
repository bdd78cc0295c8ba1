#include "waves.h"

#include <unordered_map>
#include <utility>

namespace dispatch::waves {

Wave Next(std::vector<OutboxRow> remaining, const std::unordered_set<std::string>& failed_keys,
          bool runs) {
  Wave wave;
  // Per key in this wave: the topic of its run, and whether the run ended
  // (a row of the key went to `later`, so every later row of it must too).
  struct Run {
    std::string topic;
    bool ended;
    std::size_t rows;
  };
  std::unordered_map<std::string, Run> keys;
  for (OutboxRow& row : remaining) {
    if (failed_keys.count(row.key) != 0) {
      ++wave.deferred;
      continue;
    }
    auto [it, first] = keys.try_emplace(row.key, Run{row.topic, false, 0});
    Run& run = it->second;
    if (first || (runs && !run.ended && run.topic == row.topic)) {
      wave.rows.push_back(std::move(row));
      if (++run.rows == 2) wave.has_run = true;
    } else {
      run.ended = true;
      wave.later.push_back(std::move(row));
    }
  }
  return wave;
}

Outcome Walk::Decide(const OutboxRow& row, const Result& result) {
  if (!result.ok() && result.delivery == Delivery::kUnknown && has_run_) must_abandon_ = true;
  if (result.ok()) return Outcome::kPublished;  // in Kafka, whatever came before it
  if (stopped_keys_.count(row.key) != 0) {
    if (failed_keys_.count(row.key) != 0) ++deferred_;
    return Outcome::kRelease;
  }
  if (result.permanent() && result.code != ErrorCode::kFatal) return Outcome::kPark;
  stopped_keys_.insert(row.key);
  // kFatal: the row is fine, the producer is not. kCancelled during our stop:
  // not the row's failure. Both leave it pending, unchanged.
  if (result.code == ErrorCode::kFatal) return Outcome::kRelease;
  if (result.code == ErrorCode::kCancelled && stopping_) return Outcome::kRelease;
  failed_keys_.insert(row.key);
  return Outcome::kRetry;
}

}  // namespace dispatch::waves
