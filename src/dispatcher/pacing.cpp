#include "pacing.h"

#include <algorithm>
#include <exception>
#include <iterator>

namespace dispatch::pacing {
namespace {

using SystemClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

// A retry time on the steady clock that the waits use. A millisecond late,
// so that the claim that follows sees the row due even when the two clocks
// disagree by a hair.
SteadyClock::time_point ToSteady(SystemClock::time_point t) {
  const auto ahead = std::chrono::duration_cast<SteadyClock::duration>(t - SystemClock::now());
  return SteadyClock::now() + ahead + std::chrono::milliseconds(1);
}

}  // namespace

void RetryTimes::Add(SystemClock::time_point retry_at) {
  times_.insert(retry_at);
  if (times_.size() > kMaxTimes) times_.erase(std::prev(times_.end()));
}

void RetryTimes::DropThrough(SystemClock::time_point claimed_at) {
  times_.erase(times_.begin(), times_.upper_bound(claimed_at));
}

std::optional<SystemClock::time_point> RetryTimes::Earliest() const {
  if (times_.empty()) return std::nullopt;
  return *times_.begin();
}

Pacer::Pacer(OutboxStore& store, const DispatcherOptions& options)
    : store_(store), options_(options), poll_(options.poll_min) {}

void Pacer::AfterFailedRound(std::chrono::milliseconds pause, const std::stop_token& stop) {
  SleepUntil(SteadyClock::now() + pause, stop);
}

void Pacer::AfterRowsFound() { poll_ = options_.poll_min; }

void Pacer::AfterNothingClaimed(std::optional<SystemClock::time_point> next_retry,
                                const std::stop_token& stop) {
  if (!store_.WakesOnNewRows()) {
    const auto pause = poll_;
    poll_ = std::min(poll_ * 2, options_.poll_max);
    SleepUntil(SteadyClock::now() + pause, stop);
    return;
  }
  auto until = SteadyClock::now() + options_.poll_max;
  if (next_retry) until = std::min(until, ToSteady(*next_retry));
  WaitForRows(until, stop);
}

void Pacer::WaitForRows(SteadyClock::time_point until, const std::stop_token& stop) {
  bool woken = false;
  try {
    woken = store_.WaitForRows(until, stop);
  } catch (const std::exception&) {
    // A store that broke its word: wait as a store that cannot tell would,
    // rather than claim again at once, over and over.
    SleepUntil(until, stop);
    return;
  }
  // The rows of a burst of commits, each of one row, go out in one claim.
  if (woken) SleepUntil(SteadyClock::now() + options_.wake_coalesce, stop);
}

void Pacer::SleepUntil(SteadyClock::time_point until, const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  stopped_.wait_until(lock, stop, until, [] { return false; });
}

}  // namespace dispatch::pacing
