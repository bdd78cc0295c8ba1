#include "relay/retention.h"

#include <cstdio>
#include <exception>
#include <utility>

namespace dispatch::relay {

RetentionJob::RetentionJob(std::unique_ptr<OutboxAdmin> admin, RetentionConfig config, Clock now)
    : admin_(std::move(admin)), config_(config), now_(std::move(now)) {}

RetentionJob::~RetentionJob() { Stop(); }

void RetentionJob::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      lock.unlock();
      RunPass();
      lock.lock();
      wake_.wait_for(lock, config_.interval, [this] { return stop_; });
    }
  });
}

void RetentionJob::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RetentionJob::RunPass() {
  const auto before = now_() - config_.published_age;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
    }
    const auto started = std::chrono::steady_clock::now();
    std::int64_t deleted = 0;
    try {
      deleted = admin_->DeletePublished(before, config_.batch);
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      ++metrics_.errors;
      std::fprintf(stderr, "dispatch-relay: retention: %s\n", e.what());
      return;
    }
    const auto took = std::chrono::steady_clock::now() - started;
    std::unique_lock lock(mutex_);
    ++metrics_.batches;
    metrics_.deleted += static_cast<std::uint64_t>(deleted);
    metrics_.last_batch_seconds = std::chrono::duration<double>(took).count();
    if (deleted < static_cast<std::int64_t>(config_.batch)) return;
    // Paced: a pause as long as the batch took, so that a backlog of old
    // rows takes at most half of one database session's time. Deleting flat
    // out, 1M-5M published rows cost a claim 1.7-2.0 times its database CPU
    // (bench/retention_claim, docs/benchmarks.md).
    wake_.wait_for(lock, took, [this] { return stop_; });
  }
}

RetentionMetrics RetentionJob::Metrics() const {
  std::lock_guard lock(mutex_);
  return metrics_;
}

}  // namespace dispatch::relay
