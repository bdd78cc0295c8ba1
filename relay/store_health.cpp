#include "relay/store_health.h"

#include <exception>

namespace dispatch::relay {

template <typename Call>
auto HealthTrackingStore::Track(Call&& call) -> decltype(call()) {
  try {
    if constexpr (std::is_void_v<decltype(call())>) {
      call();
      std::lock_guard lock(mutex_);
      health_ = {};
    } else {
      auto result = call();
      std::lock_guard lock(mutex_);
      health_ = {};
      return result;
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    health_ = {false, e.what()};
    throw;
  }
}

std::vector<OutboxRow> HealthTrackingStore::Claim(std::size_t limit,
                                                  std::chrono::system_clock::time_point now) {
  return Track([&] { return store_.Claim(limit, now); });
}

void HealthTrackingStore::Finish(const std::vector<std::int64_t>& published,
                                 const std::vector<RowFailure>& failures) {
  Track([&] { store_.Finish(published, failures); });
}

std::optional<std::chrono::system_clock::time_point> HealthTrackingStore::OldestPending() {
  return Track([&] { return store_.OldestPending(); });
}

HealthTrackingStore::Health HealthTrackingStore::Get() const {
  std::lock_guard lock(mutex_);
  return health_;
}

}  // namespace dispatch::relay
