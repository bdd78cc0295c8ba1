// An OutboxStore in memory for the dispatcher's unit tests. It keeps the
// store contract (include/dispatch/outbox_store.h), which
// tests/support/outbox_store_contract.h checks, and lets a test fail Claim or
// Finish, watch claims, and read each row's state.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "dispatch/outbox_store.h"

namespace dispatch::test {

class FakeOutboxStore : public OutboxStore {
 public:
  using Clock = std::chrono::system_clock;
  enum class State { kPending, kPublished, kParked };

  struct StoredRow {
    OutboxRow row;
    State state = State::kPending;
    Clock::time_point retry_at;
    std::string last_error;
  };

  // Appends a pending row as a service would; created_at is now unless set.
  // Returns its id.
  std::int64_t Append(OutboxRow row) {
    std::lock_guard lock(mu_);
    row.id = next_id_++;
    row.attempts = 0;
    if (row.created_at == Clock::time_point{}) row.created_at = Clock::now();
    const std::int64_t id = row.id;
    rows_[id] = StoredRow{std::move(row), State::kPending, {}, {}};
    return id;
  }
  std::int64_t Append(std::string key, std::string payload, std::string topic = "orders") {
    OutboxRow row;
    row.key = std::move(key);
    row.payload = std::move(payload);
    row.topic = std::move(topic);
    return Append(std::move(row));
  }

  std::vector<OutboxRow> Claim(std::size_t limit, Clock::time_point now) override {
    std::function<void()> hook;
    std::vector<OutboxRow> out;
    {
      std::lock_guard lock(mu_);
      ++claims_;
      hook = on_claim_;
      if (fail_claims_ > 0) {
        --fail_claims_;
        throw StoreError("fake store: Claim failed");
      }
      if (claim_open_) throw StoreError("fake store: Claim while a claim is open");
      std::unordered_set<std::string> blocked;  // keys whose earliest pending row is not due
      for (const auto& [id, stored] : rows_) {
        if (stored.state != State::kPending || blocked.count(stored.row.key) != 0) continue;
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

  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<RowFailure>& failures) override {
    std::lock_guard lock(mu_);
    ++finishes_;
    if (fail_finishes_ > 0) {
      --fail_finishes_;
      throw StoreError("fake store: Finish failed");
    }
    const auto check = [this](std::int64_t id) {
      if (!claim_open_ || claimed_.count(id) == 0 || rows_.at(id).state != State::kPending) {
        throw StoreError("fake store: Finish: row " + std::to_string(id) + " is not claimed");
      }
    };
    for (std::int64_t id : published) check(id);
    for (const RowFailure& f : failures) check(f.id);
    for (std::int64_t id : published) rows_.at(id).state = State::kPublished;
    for (const RowFailure& f : failures) {
      StoredRow& stored = rows_.at(f.id);
      ++stored.row.attempts;
      stored.last_error = f.error;
      stored.retry_at = f.retry_at;
      if (f.park) stored.state = State::kParked;
    }
    claim_open_ = false;
  }

  void Release() noexcept override {
    std::lock_guard lock(mu_);
    ++releases_;
    claim_open_ = false;
  }

  std::optional<Clock::time_point> OldestPending() override {
    std::lock_guard lock(mu_);
    std::optional<Clock::time_point> oldest;
    for (const auto& [id, stored] : rows_) {
      if (stored.state == State::kPending && (!oldest || stored.row.created_at < *oldest)) {
        oldest = stored.row.created_at;
      }
    }
    return oldest;
  }

  // Gives a row a history of failed publishes.
  void SetAttempts(std::int64_t id, int attempts) {
    std::lock_guard lock(mu_);
    rows_.at(id).row.attempts = attempts;
  }

  // Faults: the next `n` calls throw StoreError.
  void FailClaims(int n) {
    std::lock_guard lock(mu_);
    fail_claims_ = n;
  }
  void FailFinishes(int n) {
    std::lock_guard lock(mu_);
    fail_finishes_ = n;
  }
  // Called after each Claim, outside the lock (it may request a stop).
  void OnClaim(std::function<void()> hook) {
    std::lock_guard lock(mu_);
    on_claim_ = std::move(hook);
  }

  std::vector<std::int64_t> Ids(State state) const {
    std::lock_guard lock(mu_);
    std::vector<std::int64_t> ids;
    for (const auto& [id, stored] : rows_) {
      if (stored.state == state) ids.push_back(id);
    }
    return ids;
  }
  StoredRow Row(std::int64_t id) const {
    std::lock_guard lock(mu_);
    return rows_.at(id);
  }
  bool ClaimOpen() const {
    std::lock_guard lock(mu_);
    return claim_open_;
  }
  int Claims() const {
    std::lock_guard lock(mu_);
    return claims_;
  }
  int Finishes() const {
    std::lock_guard lock(mu_);
    return finishes_;
  }
  int Releases() const {
    std::lock_guard lock(mu_);
    return releases_;
  }

 private:
  mutable std::mutex mu_;  // Run's thread and the test's thread both look
  std::map<std::int64_t, StoredRow> rows_;
  std::int64_t next_id_ = 1;
  std::unordered_set<std::int64_t> claimed_;
  bool claim_open_ = false;
  int fail_claims_ = 0;
  int fail_finishes_ = 0;
  int claims_ = 0;
  int finishes_ = 0;
  int releases_ = 0;
  std::function<void()> on_claim_;
};

}  // namespace dispatch::test
