/// @file
/// dispatch::testing::MemoryOutboxStore: an OutboxStore in memory, for unit
/// tests of code that runs a dispatch::Dispatcher, and a reference for a
/// store of your own. It keeps the contract of <dispatch/outbox_store.h> (it
/// passes <dispatch/testing/outbox_store_contract.h>) and adds what a test
/// needs: appending rows, reading each row's state, counting calls, and
/// making the next Claim or Finish fail. It wakes on new rows, as the
/// library's stores do: WaitForRows returns when Append adds a row (turn it
/// off with SetWakesOnNewRows to test a dispatcher polling).
///
/// @code
///   dispatch::testing::MemoryOutboxStore store;
///   const std::int64_t id = store.Append("order-7", R"({"paid":true})");
///   dispatch::Dispatcher dispatcher(store, make_publisher);
///   dispatcher.RunOnce();
///   EXPECT_EQ(store.Row(id).state, dispatch::RowState::kPublished);
/// @endcode
///
/// Header-only; target dispatch::testing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dispatch/outbox_store.h"

namespace dispatch::testing {

/// An OutboxStore on a std::map, for one dispatcher. Every member is
/// thread-safe, so a test may read the rows while Dispatcher::Run works on
/// another thread. A claim lives in the object (there is no holder to die):
/// Claim while a claim is open throws StoreError, as SqliteStore does.
class MemoryOutboxStore : public OutboxStore {
 public:
  /// The clock of the rows' times.
  using Clock = std::chrono::system_clock;

  /// One row as the store keeps it: what Claim hands out, and what a real
  /// store keeps in its other columns.
  struct StoredRow {
    OutboxRow row;  ///< id, key, topic, payload, headers, attempts, created_at
    RowState state = RowState::kPending;            ///< column `state`
    Clock::time_point retry_at;                     ///< column `retry_at`; epoch: at once
    std::string last_error;                         ///< column `last_error`; empty when none
    std::optional<Clock::time_point> published_at;  ///< column `published_at`
  };

  /// Appends a pending row, as a service would: the row's key, topic,
  /// payload and headers, and its created_at (now when unset); its id and
  /// attempts are the store's. Returns the new id (1, 2, ...).
  /// Wakes a WaitForRows in progress.
  std::int64_t Append(OutboxRow row) {
    std::int64_t id = 0;
    {
      std::lock_guard lock(mu_);
      row.id = next_id_++;
      row.attempts = 0;
      if (row.created_at == Clock::time_point{}) row.created_at = Clock::now();
      id = row.id;
      rows_[id] = StoredRow{std::move(row), RowState::kPending, {}, {}, std::nullopt};
      ++appended_;
    }
    appended_cv_.notify_all();
    return id;
  }

  /// Appends a pending row of `key` with `payload` to `topic`, without
  /// headers. Returns the new id.
  std::int64_t Append(std::string key, std::string payload, std::string topic = "orders") {
    OutboxRow row;
    row.key = std::move(key);
    row.payload = std::move(payload);
    row.topic = std::move(topic);
    return Append(std::move(row));
  }

  /// Pending rows due at `now`, in id order, up to `limit`, skipping every
  /// row of a key whose earliest pending row is not due. Throws StoreError
  /// while a claim is open, or when FailClaims asked for it. Calls the
  /// OnClaim hook after claiming.
  std::vector<OutboxRow> Claim(std::size_t limit, Clock::time_point now) override {
    std::function<void()> hook;
    std::vector<OutboxRow> out;
    {
      std::lock_guard lock(mu_);
      ++claims_;
      hook = on_claim_;
      if (fail_claims_ > 0) {
        --fail_claims_;
        throw StoreError("memory store: Claim failed");
      }
      if (claim_open_) throw StoreError("memory store: Claim while a claim is open");
      seen_ = appended_;                        // this claim sees every row appended so far
      std::unordered_set<std::string> blocked;  // keys whose earliest pending row is not due
      for (const auto& [id, stored] : rows_) {
        if (stored.state != RowState::kPending || blocked.count(stored.row.key) != 0) continue;
        if (stored.retry_at > now) {
          blocked.insert(stored.row.key);
          continue;
        }
        if (out.size() == limit) break;
        out.push_back(stored.row);
      }
      claimed_.clear();
      for (const OutboxRow& r : out) claimed_.insert(r.id);
      claim_open_ = true;
    }
    if (hook) hook();
    return out;
  }

  /// Marks `published` rows and records `failures` all at once, and ends the
  /// claim. Throws StoreError, recording nothing and leaving the claim open,
  /// when a row is not in the open claim or no longer pending, or when
  /// FailFinishes asked for it.
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<RowFailure>& failures) override {
    std::lock_guard lock(mu_);
    ++finishes_;
    if (fail_finishes_ > 0) {
      --fail_finishes_;
      throw StoreError("memory store: Finish failed");
    }
    const auto check = [this](std::int64_t id) {
      const auto it = rows_.find(id);
      if (!claim_open_ || claimed_.count(id) == 0 || it == rows_.end() ||
          it->second.state != RowState::kPending) {
        throw StoreError("memory store: Finish: row " + std::to_string(id) +
                         " is not in the open claim");
      }
    };
    for (std::int64_t id : published) check(id);
    for (const RowFailure& f : failures) check(f.id);
    const Clock::time_point now = Clock::now();
    for (std::int64_t id : published) {
      StoredRow& stored = rows_.at(id);
      stored.state = RowState::kPublished;
      stored.published_at = now;
    }
    for (const RowFailure& f : failures) {
      StoredRow& stored = rows_.at(f.id);
      ++stored.row.attempts;
      stored.last_error = f.error;
      stored.retry_at = f.retry_at;
      if (f.park) stored.state = RowState::kParked;
    }
    claimed_.clear();
    claim_open_ = false;
  }

  /// Ends the claim; nothing is written.
  void Release() noexcept override {
    std::lock_guard lock(mu_);
    ++releases_;
    claimed_.clear();
    claim_open_ = false;
  }

  /// The earliest created_at of the pending rows, or nullopt.
  std::optional<Clock::time_point> OldestPending() override {
    std::lock_guard lock(mu_);
    std::optional<Clock::time_point> oldest;
    for (const auto& [id, stored] : rows_) {
      if (stored.state == RowState::kPending && (!oldest || stored.row.created_at < *oldest)) {
        oldest = stored.row.created_at;
      }
    }
    return oldest;
  }

  /// True unless SetWakesOnNewRows(false).
  bool WakesOnNewRows() const override {
    std::lock_guard lock(mu_);
    return wakes_;
  }

  /// Returns true as soon as a row was appended since the last Claim (or the
  /// last WaitForRows that returned true); false at `until` or on the stop
  /// request. Polls, as OutboxStore's default does, after
  /// SetWakesOnNewRows(false).
  bool WaitForRows(std::chrono::steady_clock::time_point until,
                   const std::stop_token& stop) override {
    std::unique_lock lock(mu_);
    if (!wakes_) {
      lock.unlock();
      return OutboxStore::WaitForRows(until, stop);
    }
    if (!appended_cv_.wait_until(lock, stop, until, [this] { return appended_ != seen_; })) {
      return false;
    }
    seen_ = appended_;
    return true;
  }

  /// Whether the store wakes on new rows (WakesOnNewRows); on by default.
  /// Off, a Dispatcher polls it as it polls a store without the operation.
  void SetWakesOnNewRows(bool wakes) {
    std::lock_guard lock(mu_);
    wakes_ = wakes;
  }

  /// Ids of the rows in `state`, ascending; of one topic when `topic` is not
  /// empty (as SqliteStore::Ids and PostgresStore::Ids).
  std::vector<std::int64_t> Ids(RowState state, const std::string& topic = "") const {
    std::lock_guard lock(mu_);
    std::vector<std::int64_t> ids;
    for (const auto& [id, stored] : rows_) {
      if (stored.state == state && (topic.empty() || stored.row.topic == topic)) {
        ids.push_back(id);
      }
    }
    return ids;
  }

  /// Rows per state.
  OutboxCounts Count() const {
    std::lock_guard lock(mu_);
    OutboxCounts counts;
    for (const auto& [id, stored] : rows_) {
      switch (stored.state) {
        case RowState::kPending: ++counts.pending; break;
        case RowState::kPublished: ++counts.published; break;
        case RowState::kParked: ++counts.parked; break;
      }
    }
    return counts;
  }

  /// A copy of row `id`. Throws std::out_of_range when there is none.
  StoredRow Row(std::int64_t id) const {
    std::lock_guard lock(mu_);
    return rows_.at(id);
  }

  /// Gives row `id` a history of `attempts` failed publishes. Throws
  /// std::out_of_range when there is no such row.
  void SetAttempts(std::int64_t id, int attempts) {
    std::lock_guard lock(mu_);
    rows_.at(id).row.attempts = attempts;
  }

  /// The next `n` calls of Claim throw StoreError (counted in Claims()).
  void FailClaims(int n) {
    std::lock_guard lock(mu_);
    fail_claims_ = n;
  }
  /// The next `n` calls of Finish throw StoreError, recording nothing.
  void FailFinishes(int n) {
    std::lock_guard lock(mu_);
    fail_finishes_ = n;
  }
  /// Calls `hook` after each successful Claim, on the claiming thread and
  /// outside the store's lock (it may request a stop, or read the store).
  void OnClaim(std::function<void()> hook) {
    std::lock_guard lock(mu_);
    on_claim_ = std::move(hook);
  }

  /// True between a Claim and its Finish or Release.
  bool ClaimOpen() const {
    std::lock_guard lock(mu_);
    return claim_open_;
  }
  /// Calls of Claim so far, failed ones included.
  int Claims() const {
    std::lock_guard lock(mu_);
    return claims_;
  }
  /// Calls of Finish so far, failed ones included.
  int Finishes() const {
    std::lock_guard lock(mu_);
    return finishes_;
  }
  /// Calls of Release so far.
  int Releases() const {
    std::lock_guard lock(mu_);
    return releases_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::int64_t, StoredRow> rows_;
  std::int64_t next_id_ = 1;
  std::set<std::int64_t> claimed_;
  bool claim_open_ = false;
  int fail_claims_ = 0;
  int fail_finishes_ = 0;
  int claims_ = 0;
  int finishes_ = 0;
  int releases_ = 0;
  std::function<void()> on_claim_;
  std::condition_variable_any appended_cv_;  // notified by Append
  std::uint64_t appended_ = 0;               // rows appended so far
  std::uint64_t seen_ = 0;                   // appended_ at the last Claim or wake
  bool wakes_ = true;
};

}  // namespace dispatch::testing
