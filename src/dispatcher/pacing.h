// When the next round of Dispatcher::Run starts: the retry backoff after a
// failed round, the poll backoff on a store that cannot wake, and on one that
// can, the wait for new rows (OutboxStore::WaitForRows), bounded by poll_max
// and by the earliest retry time this dispatcher recorded. The round itself
// is dispatcher.cpp's.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>

#include "dispatch/dispatcher.h"
#include "dispatch/outbox_store.h"

namespace dispatch::pacing {

// Retry times of the failures this dispatcher recorded that may still be
// ahead: a row that backs off becomes claimable at its retry time with no
// insert to wake a waiting dispatcher, so the wait ends then.
class RetryTimes {
 public:
  void Add(std::chrono::system_clock::time_point retry_at);
  // Forgets the times at or before `claimed_at`: a claim made then saw their
  // rows due (and took them, or another claim held them).
  void DropThrough(std::chrono::system_clock::time_point claimed_at);
  std::optional<std::chrono::system_clock::time_point> Earliest() const;

 private:
  // Enough for the rows of a few rounds; beyond it the latest times are
  // dropped, and poll_max bounds how late their rows are noticed.
  static constexpr std::size_t kMaxTimes = 4096;
  std::multiset<std::chrono::system_clock::time_point> times_;
};

// Run's pauses between rounds; one per Run call, on Run's thread. Every
// pause ends at once when the stop is requested.
class Pacer {
 public:
  Pacer(OutboxStore& store, const DispatcherOptions& options);

  // After a failed round: sleeps `pause`.
  void AfterFailedRound(std::chrono::milliseconds pause, const std::stop_token& stop);
  // After a round that claimed rows: no pause, and the poll backoff starts
  // again from poll_min.
  void AfterRowsFound();
  // After a round that claimed nothing: waits for new rows on a store that
  // wakes (until poll_max or `next_retry`, then wake_coalesce after a wake),
  // else polls (poll_min doubling to poll_max).
  void AfterNothingClaimed(std::optional<std::chrono::system_clock::time_point> next_retry,
                           const std::stop_token& stop);

 private:
  void SleepUntil(std::chrono::steady_clock::time_point until, const std::stop_token& stop);
  void WaitForRows(std::chrono::steady_clock::time_point until, const std::stop_token& stop);

  OutboxStore& store_;
  const DispatcherOptions& options_;
  std::chrono::milliseconds poll_;  // the next poll pause of a store that does not wake
  std::mutex mu_;
  std::condition_variable_any stopped_;  // woken by nothing but the stop request
};

}  // namespace dispatch::pacing
