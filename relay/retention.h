// RetentionJob: deletes published rows older than retention.published_age,
// on a thread of its own with a store connection of its own. A pass calls
// OutboxAdmin::DeletePublished(now - published_age, batch) while it
// returns a full batch, then the job waits `interval` (a stop ends the wait
// at once). A pass that finds another relay's batch running gets 0 and
// waits for the next interval (the store allows one relay at a time).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "dispatch/outbox_admin.h"
#include "relay/config.h"
#include "relay/snapshot.h"

namespace dispatch::relay {

class RetentionJob {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  // Owns `admin`; `now` is the wall clock unless a test gives another.
  RetentionJob(
      std::unique_ptr<OutboxAdmin> admin, RetentionConfig config,
      Clock now = [] { return std::chrono::system_clock::now(); });
  ~RetentionJob();  // Stop()
  RetentionJob(const RetentionJob&) = delete;
  RetentionJob& operator=(const RetentionJob&) = delete;

  // Starts the thread; its first pass runs at once.
  void Start();
  // Ends the wait at once, or the pass after the batch in flight; joins.
  // Idempotent.
  void Stop();
  // One pass on the calling thread (the thread's body; tests call it).
  void RunPass();
  // Any thread.
  RetentionMetrics Metrics() const;

 private:
  std::unique_ptr<OutboxAdmin> admin_;
  RetentionConfig config_;
  Clock now_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  RetentionMetrics metrics_;
  std::thread thread_;
};

}  // namespace dispatch::relay
