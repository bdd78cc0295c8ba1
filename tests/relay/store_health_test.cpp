// HealthTrackingStore: RelaySnapshot::store_ok follows the store's last call.
#include "relay/store_health.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dispatch::relay {
namespace {

// Fails every call while `failing` holds.
class FlakyStore : public OutboxStore {
 public:
  bool failing = false;
  std::vector<OutboxRow> Claim(std::size_t, std::chrono::system_clock::time_point) override {
    if (failing) throw StoreError("Claim: connection refused");
    return {};
  }
  void Finish(const std::vector<std::int64_t>&, const std::vector<RowFailure>&) override {
    if (failing) throw StoreError("Finish: server closed the connection");
  }
  void Release() noexcept override {}
  std::optional<std::chrono::system_clock::time_point> OldestPending() override {
    if (failing) throw StoreError("OldestPending: timeout");
    return std::nullopt;
  }
};

TEST(RelayStoreHealth, FollowsTheLastCallAndKeepsItsError) {
  FlakyStore flaky;
  HealthTrackingStore store(flaky);
  EXPECT_TRUE(store.Get().ok);

  flaky.failing = true;
  EXPECT_THROW(store.Claim(10, std::chrono::system_clock::now()), StoreError);
  EXPECT_FALSE(store.Get().ok);
  EXPECT_EQ(store.Get().error, "Claim: connection refused");
  EXPECT_THROW(store.Finish({}, {}), StoreError);
  EXPECT_EQ(store.Get().error, "Finish: server closed the connection");

  flaky.failing = false;
  EXPECT_FALSE(store.OldestPending().has_value());
  EXPECT_TRUE(store.Get().ok);
  EXPECT_EQ(store.Get().error, "");
}

}  // namespace
}  // namespace dispatch::relay
