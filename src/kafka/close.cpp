// Close: stop accepting, flush within the close timeout, purge what remains
// so that every waiter gets its result, stop the publisher's thread, release
// the producer. Also the counters a caller reads at any time.
#include <thread>

#include "internal.h"
#include "log_routing.h"
#include "publisher_impl.h"

namespace dispatch::kafka {
namespace {

using Clock = Context::Clock;

// How long Close waits, after purging, for the purged messages' reports.
constexpr auto kPurgeDrain = std::chrono::seconds(2);

}  // namespace

Result KafkaPublisher::Impl::Close() {
  std::lock_guard close_lock(close_mu_);
  if (!producer_) return Result::Delivered();
  closed_.store(true);
  // Every Produce that saw closed_ == false has finished its produce() call.
  while (producing_.load() > 0) std::this_thread::yield();

  producer_->flush(static_cast<int>(close_timeout_.count()));
  const int left = in_flight_.load();
  if (left > 0) {
    purging_.store(true);
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT |
                     RdKafka::Producer::PURGE_NON_BLOCKING);
    // Purged messages get their reports at once; serve them so every
    // waiter has its result before the producer goes.
    const auto bound = Clock::now() + kPurgeDrain;
    while (in_flight_.load() > 0 && Clock::now() < bound) producer_->poll(10);
  }
  // No caller serves reports from now on (none may be in poll() when the
  // producer goes); the publisher's thread stops too.
  waiting_.EndLeading([this] { WakeServer(); });
  {
    const std::lock_guard lock(poller_mu_);
    stop_poller_ = true;
  }
  poller_cv_.notify_all();
  poller_.join();
  const int lost = in_flight_.load();
  if (lost > 0) {
    internal::CallLog(log_, LogLevel::kError, "DISPATCH",
                      std::to_string(lost) + " message(s) had no delivery report after purge");
  }
  // Whatever still waits (a report librdkafka never sent) ends now: the
  // message may or may not have been written.
  // Calls that begin to wait later get this result at once.
  waiting_.FinishAll(Result::Error(ErrorCode::kClosed, Delivery::kUnknown, true,
                                   "publisher closed before the delivery report"),
                     /*final=*/true, [] {});
  {
    std::lock_guard lock(topics_mu_);
    topics_.clear();  // handles before the producer they belong to
  }
  {
    const std::lock_guard lock(main_queue_mu_);
    rd_kafka_queue_destroy(main_queue_);
    main_queue_ = nullptr;
  }
  producer_.reset();
  if (left > 0) {
    // The same outcomes the purged messages' waiters got: not delivered
    // only when librdkafka reported every one of them not persisted.
    const int not_delivered = purged_not_delivered_.load();
    const int unknown = purged_unknown_.load() + lost;
    std::string text = "close timeout of " + std::to_string(close_timeout_.count()) +
                       " ms passed; " + std::to_string(not_delivered + unknown) +
                       " message(s) were purged: " + std::to_string(not_delivered) +
                       " not delivered, " + std::to_string(unknown) + " possibly written (unknown)";
    internal::CallLog(log_, LogLevel::kWarning, "DISPATCH", text);
    return Result::Error(ErrorCode::kDeadlineExceeded,
                         unknown == 0 ? Delivery::kNotDelivered : Delivery::kUnknown, true,
                         std::move(text));
  }
  return Result::Delivered();
}

PublisherMetrics KafkaPublisher::Impl::Metrics() const {
  PublisherMetrics m = metrics_.Snapshot();
  m.in_flight = in_flight_.load();
  m.topic_lookups = topic_lookups_.load(std::memory_order_relaxed);
  // Close may be releasing the producer: read it under the same lock.
  std::unique_lock lock(close_mu_, std::try_to_lock);
  if (lock.owns_lock() && producer_) m.queue_depth = producer_->outq_len();
  return m;
}

}  // namespace dispatch::kafka
