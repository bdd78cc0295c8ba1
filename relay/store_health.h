// HealthTrackingStore: the dispatcher's store as the relay wraps it, to know
// whether the store answered its last call (RelaySnapshot::store_ok) without
// asking the database anything more. Every call goes to the wrapped store.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "dispatch/outbox_store.h"

namespace dispatch::relay {

class HealthTrackingStore final : public OutboxStore {
 public:
  // `store` must outlive this object.
  explicit HealthTrackingStore(OutboxStore& store) : store_(store) {}

  std::vector<OutboxRow> Claim(std::size_t limit,
                               std::chrono::system_clock::time_point now) override;
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<RowFailure>& failures) override;
  void Release() noexcept override { store_.Release(); }
  std::optional<std::chrono::system_clock::time_point> OldestPending() override;
  bool WakesOnNewRows() const override { return store_.WakesOnNewRows(); }
  bool WaitForRows(std::chrono::steady_clock::time_point until,
                   const std::stop_token& stop) override {
    return store_.WaitForRows(until, stop);
  }

  // Whether the last Claim, Finish or OldestPending succeeded, and the
  // error of the one that failed (StoreError's text: never a password).
  // Any thread.
  struct Health {
    bool ok = true;
    std::string error;
  };
  Health Get() const;

 private:
  template <typename Call>
  auto Track(Call&& call) -> decltype(call());

  OutboxStore& store_;
  mutable std::mutex mutex_;
  Health health_;
};

}  // namespace dispatch::relay
