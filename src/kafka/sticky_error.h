// A Result that stands once set, until it is cleared: the publisher's fatal
// state (set once, never cleared: the producer is unusable) and its last
// authentication failure (replaced by a newer one, cleared by a delivery).
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <utility>

#include "dispatch/publisher.h"

namespace dispatch::kafka::internal {

class StickyError {
 public:
  // Cheap enough for every publish: one atomic load while nothing is set.
  bool IsSet() const { return set_.load(std::memory_order_acquire); }

  std::optional<Result> Get() const {
    if (!IsSet()) return std::nullopt;
    std::lock_guard lock(mu_);
    return result_;
  }

  // Sets `make()` unless a result is set already; the first one stands.
  // `make` runs under the lock, so it is built once.
  template <typename Make>
  void SetOnce(Make make) {
    std::lock_guard lock(mu_);
    if (result_) return;
    result_ = make();
    set_.store(true, std::memory_order_release);
  }

  // Sets `r`, replacing any earlier result: the latest one stands.
  void Set(Result r) {
    std::lock_guard lock(mu_);
    result_ = std::move(r);
    set_.store(true, std::memory_order_release);
  }

  void Clear() {
    if (!IsSet()) return;
    std::lock_guard lock(mu_);
    result_.reset();
    set_.store(false, std::memory_order_release);
  }

 private:
  mutable std::mutex mu_;
  std::atomic<bool> set_{false};
  std::optional<Result> result_;
};

}  // namespace dispatch::kafka::internal
