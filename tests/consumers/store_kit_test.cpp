// A service's store of its own, proved with the library's store contract
// suite as SqliteStore and PostgresStore are; and the library's in-memory
// store under the dispatcher.
#include <dispatch/dispatcher.h>
#include <dispatch/outbox_store.h>
#include <dispatch/testing/memory_outbox_store.h>
#include <dispatch/testing/mock_publisher.h>
#include <dispatch/testing/outbox_store_contract.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace shop {

// The service's own OutboxStore: rows in a vector, for one dispatcher.
class VectorOutboxStore final : public dispatch::OutboxStore {
 public:
  using Clock = std::chrono::system_clock;

  std::int64_t Insert(dispatch::OutboxRow row) {
    row.id = static_cast<std::int64_t>(rows_.size()) + 1;
    row.attempts = 0;
    if (row.created_at == Clock::time_point{}) row.created_at = Clock::now();
    rows_.push_back({row, dispatch::RowState::kPending, {}});
    return row.id;
  }

  std::vector<dispatch::OutboxRow> Claim(std::size_t limit, Clock::time_point now) override {
    std::set<std::string> blocked;  // keys whose earliest pending row is not due
    std::vector<dispatch::OutboxRow> out;
    for (const Entry& e : rows_) {
      if (e.state != dispatch::RowState::kPending || blocked.count(e.row.key) != 0) continue;
      if (e.retry_at > now) {
        blocked.insert(e.row.key);
      } else if (out.size() < limit) {
        out.push_back(e.row);
      }
    }
    claimed_.clear();
    for (const auto& r : out) claimed_.insert(r.id);
    return out;
  }

  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<dispatch::RowFailure>& failures) override {
    for (std::int64_t id : published) Check(id);
    for (const auto& f : failures) Check(f.id);
    for (std::int64_t id : published) At(id).state = dispatch::RowState::kPublished;
    for (const auto& f : failures) {
      Entry& e = At(f.id);
      ++e.row.attempts;
      e.retry_at = f.retry_at;
      if (f.park) e.state = dispatch::RowState::kParked;
    }
    claimed_.clear();
  }

  void Release() noexcept override { claimed_.clear(); }

  std::optional<Clock::time_point> OldestPending() override {
    std::optional<Clock::time_point> oldest;
    for (const Entry& e : rows_) {
      if (e.state == dispatch::RowState::kPending && (!oldest || e.row.created_at < *oldest)) {
        oldest = e.row.created_at;
      }
    }
    return oldest;
  }

  std::vector<std::int64_t> IdsIn(dispatch::RowState state) const {
    std::vector<std::int64_t> ids;
    for (const Entry& e : rows_) {
      if (e.state == state) ids.push_back(e.row.id);
    }
    return ids;
  }

 private:
  struct Entry {
    dispatch::OutboxRow row;
    dispatch::RowState state;
    Clock::time_point retry_at;
  };
  Entry& At(std::int64_t id) { return rows_.at(static_cast<std::size_t>(id - 1)); }
  void Check(std::int64_t id) {
    if (claimed_.count(id) == 0 || At(id).state != dispatch::RowState::kPending) {
      throw dispatch::StoreError("vector store: row " + std::to_string(id) + " is not claimed");
    }
  }

  std::vector<Entry> rows_;
  std::set<std::int64_t> claimed_;
};

// The harness the contract suite asks for: a fresh store per test.
class VectorStoreHarness {
 public:
  dispatch::OutboxStore& Store() { return store_; }
  std::int64_t Append(const dispatch::OutboxRow& row) { return store_.Insert(row); }
  std::vector<std::int64_t> Ids(dispatch::RowState state) { return store_.IdsIn(state); }

 private:
  VectorOutboxStore store_;
};

}  // namespace shop

namespace dispatch::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Vector, OutboxStoreContract, shop::VectorStoreHarness);
}  // namespace dispatch::testing

TEST(StoreKit, DispatcherPublishesAMemoryOutboxThroughTheMock) {
  dispatch::testing::MemoryOutboxStore store;
  const std::int64_t id = store.Append("order-1", "{}");
  dispatch::Dispatcher dispatcher(store, [] {
    auto publisher = std::make_unique<::testing::NiceMock<dispatch::testing::MockPublisher>>();
    ON_CALL(*publisher, Publish).WillByDefault(::testing::Return(dispatch::Result::Delivered()));
    return publisher;
  });
  EXPECT_EQ(dispatcher.RunOnce().published, 1u);
  EXPECT_EQ(store.Row(id).state, dispatch::RowState::kPublished);
}
