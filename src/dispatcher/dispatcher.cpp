#include "dispatch/dispatcher.h"

#include <algorithm>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include "pacing.h"
#include "waves.h"

namespace dispatch {
namespace {

using SystemClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// rows_per_second covers the rounds that ended this long ago or less.
constexpr auto kRateWindow = std::chrono::seconds(10);

std::string Ms(milliseconds d) { return std::to_string(d.count()) + " ms"; }

void Require(bool holds, const char* field, const std::string& value, const std::string& rule) {
  if (!holds) {
    throw std::invalid_argument(std::string("DispatcherOptions::") + field + " = " + value + ": " +
                                rule);
  }
}

void Validate(const DispatcherOptions& o) {
  Require(o.batch_size > 0, "batch_size", std::to_string(o.batch_size), "must be at least 1");
  Require(o.publish_timeout > milliseconds(0), "publish_timeout", Ms(o.publish_timeout),
          "must be positive");
  Require(o.retry_base > milliseconds(0), "retry_base", Ms(o.retry_base), "must be positive");
  Require(o.retry_cap >= o.retry_base, "retry_cap", Ms(o.retry_cap),
          "must be at least retry_base (" + Ms(o.retry_base) + ")");
  Require(o.poll_min > milliseconds(0), "poll_min", Ms(o.poll_min), "must be positive");
  Require(o.poll_max >= o.poll_min, "poll_max", Ms(o.poll_max),
          "must be at least poll_min (" + Ms(o.poll_min) + ")");
  Require(o.wake_coalesce > milliseconds(0) && o.wake_coalesce <= o.poll_max, "wake_coalesce",
          Ms(o.wake_coalesce), "must be positive and at most poll_max (" + Ms(o.poll_max) + ")");
  Require(!o.id_header.empty(), "id_header", "\"\"", "must not be empty");
}

// min(cap, base * 2^(failures-1)), doubling no further than the cap so that
// a row with many attempts cannot overflow it.
milliseconds BackoffCeiling(const DispatcherOptions& o, int failures) {
  milliseconds ceiling = o.retry_base;
  for (int i = 1; i < failures; ++i) {
    if (ceiling > o.retry_cap / 2) return o.retry_cap;
    ceiling *= 2;
  }
  return std::min(ceiling, o.retry_cap);
}

// Rows marked per second over the rounds of the last kRateWindow.
class RateWindow {
 public:
  void Add(SteadyClock::time_point start, SteadyClock::time_point end, std::size_t published) {
    rounds_.push_back({start, end, published});
    total_ += published;
    while (rounds_.front().end < end - kRateWindow) {
      total_ -= rounds_.front().published;
      rounds_.pop_front();
    }
  }
  double PerSecond() const {
    const double seconds =
        std::chrono::duration<double>(rounds_.back().end - rounds_.front().start).count();
    return seconds > 0 ? static_cast<double>(total_) / seconds : 0;
  }

 private:
  struct Round {
    SteadyClock::time_point start;
    SteadyClock::time_point end;
    std::size_t published;
  };
  std::deque<Round> rounds_;
  std::size_t total_ = 0;
};

}  // namespace

Message ToMessage(const OutboxRow& row, const std::string& id_header) {
  Message m{row.topic, row.key, row.payload, row.headers};
  m.headers.push_back({id_header, std::to_string(row.id)});
  return m;
}

struct Dispatcher::Impl {
  Impl(OutboxStore& s, PublisherFactory f, DispatcherOptions o)
      : store(s), factory(std::move(f)), options(std::move(o)) {}

  // A uniformly random pause in [0, BackoffCeiling(failures)] ("full
  // jitter"), so that rows and dispatchers that failed together do not retry
  // together.
  milliseconds Jittered(int failures) {
    std::uniform_int_distribution<milliseconds::rep> pick(
        0, BackoffCeiling(options, failures).count());
    return milliseconds(pick(rng));
  }

  RoundStats RunOnce(const std::stop_token& stop);
  // Publishes the claimed rows wave by wave and records them in one Finish.
  void PublishClaim(const std::stop_token& stop, std::vector<OutboxRow> remaining,
                    RoundStats& stats);
  // Makes a publisher when there is none; false (and the error in `stats`)
  // when the factory failed.
  bool EnsurePublisher(RoundStats& stats);
  void StoreFailed(const StoreError& e, RoundStats& stats);

  OutboxStore& store;
  const PublisherFactory factory;
  const DispatcherOptions options;
  std::unique_ptr<Publisher> publisher;
  bool replacing_publisher = false;  // the next publisher made replaces a broken one
  std::mt19937_64 rng{std::random_device{}()};
  pacing::RetryTimes retry_times;  // of the failures recorded, for Run's waits

  mutable std::mutex metrics_mu;
  DispatcherMetrics metrics;  // guarded by metrics_mu
  RateWindow rate;            // guarded by metrics_mu
};

void Dispatcher::Impl::StoreFailed(const StoreError& e, RoundStats& stats) {
  stats.round_failed = true;
  stats.last_error = e.what();
  std::lock_guard lock(metrics_mu);
  ++metrics.store_errors;
}

bool Dispatcher::Impl::EnsurePublisher(RoundStats& stats) {
  if (publisher) return true;
  std::string why;
  try {
    publisher = factory();
    if (!publisher) why = "it returned no publisher";
  } catch (const std::exception& e) {
    why = e.what();
  }
  std::lock_guard lock(metrics_mu);
  if (!why.empty()) {
    ++metrics.factory_failures;
    stats.round_failed = true;
    stats.last_error = "publisher factory failed: " + why;
    return false;
  }
  if (replacing_publisher) {
    ++metrics.publisher_recreated;
    replacing_publisher = false;
  }
  return true;
}

RoundStats Dispatcher::Impl::RunOnce(const std::stop_token& stop) {
  RoundStats stats;
  if (stop.stop_requested()) return stats;
  const auto started = SteadyClock::now();
  if (EnsurePublisher(stats)) {
    std::vector<OutboxRow> claimed;
    try {
      const auto claimed_at = SystemClock::now();
      claimed = store.Claim(options.batch_size, claimed_at);
      retry_times.DropThrough(claimed_at);
    } catch (const StoreError& e) {
      StoreFailed(e, stats);  // and released below, like an empty claim
    }
    stats.claimed = claimed.size();
    if (claimed.empty()) {
      store.Release();
    } else {
      PublishClaim(stop, std::move(claimed), stats);
    }
  }
  std::optional<milliseconds> lag;
  try {
    const auto oldest = store.OldestPending();
    lag = oldest ? std::max(milliseconds(0),
                            std::chrono::duration_cast<milliseconds>(SystemClock::now() - *oldest))
                 : milliseconds(0);
  } catch (const StoreError& e) {
    StoreFailed(e, stats);
  }

  std::lock_guard lock(metrics_mu);
  ++metrics.rounds;
  metrics.published += stats.published;
  metrics.retried += stats.retried;
  metrics.parked += stats.parked;
  if (lag) metrics.oldest_pending_age = *lag;
  rate.Add(started, SteadyClock::now(), stats.published);
  metrics.rows_per_second = rate.PerSecond();
  return stats;
}

void Dispatcher::Impl::PublishClaim(const std::stop_token& stop, std::vector<OutboxRow> remaining,
                                    RoundStats& stats) {
  std::vector<std::int64_t> published;
  std::vector<RowFailure> failures;
  std::size_t retried = 0;
  std::size_t parked = 0;
  std::unordered_set<std::string> failed_keys;
  // A kFatal result, or a publisher that broke its contract: no more waves
  // on it.
  bool publisher_broken = false;
  // A run of a key left rows unknown: the publisher must go before another
  // call (Publisher::OrdersKeysInBatch).
  bool abandon_publisher = false;
  // Asked per round: a publisher made after a fatal one may answer otherwise.
  const bool runs = publisher->OrdersKeysInBatch();

  while (!remaining.empty() && !publisher_broken && !abandon_publisher && !stop.stop_requested()) {
    waves::Wave wave = waves::Next(std::move(remaining), failed_keys, runs);
    stats.deferred += wave.deferred;
    remaining = std::move(wave.later);
    if (wave.rows.empty()) break;

    std::vector<Message> messages;
    messages.reserve(wave.rows.size());
    for (const OutboxRow& row : wave.rows) messages.push_back(ToMessage(row, options.id_header));
    // The stop token goes into the wave, so a stop cuts it short instead of
    // waiting for its deadline.
    const Context ctx = Context::WithStopToken(stop, Context::WithTimeout(options.publish_timeout));
    std::vector<Result> results;
    {
      std::lock_guard lock(metrics_mu);
      ++metrics.waves;
    }
    try {
      results = publisher->PublishBatch(ctx, messages);
    } catch (const std::exception& e) {
      stats.last_error = std::string("publisher threw: ") + e.what();
      publisher_broken = true;
      break;
    }
    if (results.size() != wave.rows.size()) {
      stats.last_error = "publisher returned " + std::to_string(results.size()) + " results for " +
                         std::to_string(wave.rows.size()) + " messages";
      publisher_broken = true;
      break;
    }

    const auto failed_at = SystemClock::now();
    waves::Walk walk(wave.has_run, stop.stop_requested(), failed_keys);
    for (std::size_t i = 0; i < wave.rows.size(); ++i) {
      const OutboxRow& row = wave.rows[i];
      const Result& r = results[i];
      if (!r.ok()) stats.last_error = r.message;
      if (r.code == ErrorCode::kFatal) publisher_broken = true;
      switch (walk.Decide(row, r)) {
        case waves::Outcome::kPublished: published.push_back(row.id); break;
        case waves::Outcome::kPark:
          failures.push_back({row.id, r.message, true, {}});
          ++parked;
          break;
        case waves::Outcome::kRetry:
          failures.push_back({row.id, r.message, false, failed_at + Jittered(row.attempts + 1)});
          ++retried;
          break;
        case waves::Outcome::kRelease: break;
      }
    }
    stats.deferred += walk.deferred();
    abandon_publisher = walk.must_abandon_publisher();
  }

  if (publisher_broken || abandon_publisher) {
    // Before recording, which may take long: a publisher that still holds
    // rows of a run must end them (Close purges its queue) before anything
    // else could be written after them. Destroyed before its successor
    // exists: a Kafka publisher closes (within its bound) and releases its
    // connections first.
    publisher.reset();
    replacing_publisher = true;
  }

  try {
    if (published.empty() && failures.empty()) {
      store.Release();
    } else {
      store.Finish(published, failures);
      for (const RowFailure& f : failures) {
        if (!f.park) retry_times.Add(f.retry_at);
      }
    }
    stats.published = published.size();
    stats.retried = retried;
    stats.parked = parked;
    stats.released = stats.claimed - published.size() - failures.size() - stats.deferred;
  } catch (const StoreError& e) {
    store.Release();
    StoreFailed(e, stats);
    stats.released = stats.claimed - stats.deferred;
  }

  if (publisher_broken) stats.round_failed = true;
  if (!publisher) EnsurePublisher(stats);
}

Dispatcher::Dispatcher(OutboxStore& store, PublisherFactory factory, DispatcherOptions options) {
  if (!factory) throw std::invalid_argument("Dispatcher: the PublisherFactory is empty");
  Validate(options);
  impl_ = std::make_unique<Impl>(store, std::move(factory), std::move(options));
}

Dispatcher::~Dispatcher() = default;

// By value in the public signatures, as std::jthread passes its token.
// NOLINTNEXTLINE(performance-unnecessary-value-param)
RoundStats Dispatcher::RunOnce(std::stop_token stop) { return impl_->RunOnce(stop); }

// NOLINTNEXTLINE(performance-unnecessary-value-param): see RunOnce
void Dispatcher::Run(std::stop_token stop) {
  pacing::Pacer pacer(impl_->store, impl_->options);
  int failed_rounds = 0;
  while (!stop.stop_requested()) {
    const RoundStats round = impl_->RunOnce(stop);
    if (round.round_failed) {
      pacer.AfterFailedRound(impl_->Jittered(++failed_rounds), stop);
      continue;
    }
    failed_rounds = 0;
    if (round.claimed == 0) {
      pacer.AfterNothingClaimed(impl_->retry_times.Earliest(), stop);
    } else {
      pacer.AfterRowsFound();
    }
  }
}

DispatcherMetrics Dispatcher::Metrics() const {
  std::lock_guard lock(impl_->metrics_mu);
  return impl_->metrics;
}

}  // namespace dispatch
