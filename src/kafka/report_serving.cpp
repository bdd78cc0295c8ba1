// Serving delivery reports. While callers wait, the one that leads serves
// librdkafka's queue itself with poll() (Wait, Serve), so a report reaches
// its own caller without a hand-off between threads; the others sleep on
// their Call's condition variable until their report or the lead reaches
// them (waiters.h). While no caller waits, the publisher's own thread serves
// the queue (ServeWhileNoCallerDoes). dr_cb runs on whichever thread serves.
#include <algorithm>

#include "internal.h"
#include "publisher_impl.h"

namespace dispatch::kafka {
namespace {

using Clock = Context::Clock;
using internal::Call;
using internal::Slot;

// The longest poll() of a caller that serves reports: it also wakes on its
// own report, a stop request and Close, so this only bounds a missed wake-up.
constexpr std::chrono::milliseconds kServeSlice(100);
// How often the publisher's own thread serves librdkafka's queue while no
// caller does: statistics, errors and the reports of calls that stopped
// waiting arrive this late at most.
constexpr std::chrono::milliseconds kIdleServeInterval(50);

// The Call whose caller serves reports on this thread now, if any.
thread_local const Call* serving_here = nullptr;

}  // namespace

// Wakes `call`'s caller: from its condition variable, and out of poll()
// when it serves reports.
void KafkaPublisher::Impl::WakeCaller(Call& call) {
  {
    const std::lock_guard lock(call.mu);
    call.cv.notify_all();
  }
  if (call.serving.load()) WakeServer();
}

// Makes a poll() of a serving caller return now. A stop request may call
// it at any time, even while Close releases the queue: hence the lock.
void KafkaPublisher::Impl::WakeServer() {
  const std::lock_guard lock(main_queue_mu_);
  if (main_queue_ != nullptr) rd_kafka_queue_yield(main_queue_);
}

// Waits until every slot of `call` is done (true), or the stop request or
// `deadline` comes first (false). Serves librdkafka's queue while it leads
// (WaitList).
bool KafkaPublisher::Impl::Wait(Call& call, const std::stop_token& stop,
                                std::optional<Clock::time_point> deadline) {
  {
    const std::lock_guard lock(call.mu);
    if (call.remaining.load(std::memory_order_relaxed) == 0) return true;
  }
  const bool lead = waiting_.Enter(&call);
  const auto wake = [this, &call] { WakeCaller(call); };
  std::optional<std::stop_callback<decltype(wake)>> on_stop;
  if (stop.stop_possible()) on_stop.emplace(stop, wake);
  bool finished = false;
  for (bool leading = lead;; leading = true) {
    if (leading) {
      if (Serve(call, stop, deadline)) {
        finished = true;
        break;
      }
      if (!waiting_.LeadEnded()) break;  // stopped or expired
      waiting_.StepDown(&call);          // Close: wait without serving
    }
    std::unique_lock lock(call.mu);
    const auto woken = [&] {
      return call.remaining.load(std::memory_order_relaxed) == 0 || call.offered_lead ||
             stop.stop_requested();
    };
    if (deadline) {
      (void)call.cv.wait_until(lock, *deadline, woken);
    } else {
      call.cv.wait(lock, woken);
    }
    finished = call.remaining.load(std::memory_order_relaxed) == 0;
    if (finished || !call.offered_lead) break;  // done, stopped or expired
    // Led from now on; Serve returns at once if the call was stopped or
    // expired meanwhile, and Leave passes the lead on.
    call.offered_lead = false;
  }
  waiting_.Leave(&call);
  return finished;
}

// Serves librdkafka's queue as the leading caller until every slot of
// `call` is done (true), or the stop request, `deadline` or Close comes
// first (false).
bool KafkaPublisher::Impl::Serve(Call& call, const std::stop_token& stop,
                                 std::optional<Clock::time_point> deadline) {
  call.serving.store(true);
  serving_here = &call;
  bool finished = false;
  for (;;) {
    {
      const std::lock_guard lock(call.mu);
      finished = call.remaining.load(std::memory_order_relaxed) == 0;
    }
    if (finished || stop.stop_requested() || waiting_.LeadEnded()) break;
    auto slice = kServeSlice;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) break;
      slice = std::min(slice, left);
    }
    producer_->poll(static_cast<int>(slice.count()));
  }
  serving_here = nullptr;
  call.serving.store(false);
  return finished;
}

// The publisher's own thread: serves librdkafka's queue every
// kIdleServeInterval while no caller serves it.
void KafkaPublisher::Impl::ServeWhileNoCallerDoes() {
  std::unique_lock lock(poller_mu_);
  while (!stop_poller_) {
    poller_cv_.wait_for(lock, kIdleServeInterval, [this] { return stop_poller_; });
    if (stop_poller_) break;
    lock.unlock();
    if (!waiting_.Led()) producer_->poll(0);
    lock.lock();
  }
}

// The delivery report of one message, on the thread that serves
// librdkafka's queue: a waiting caller, the publisher's own thread, or
// Close's while it flushes and drains purged messages.
void KafkaPublisher::Impl::dr_cb(RdKafka::Message& m) {
  auto* slot = static_cast<Slot*>(m.msg_opaque());
  Result r;
  if (m.err() == RdKafka::ERR_NO_ERROR) {
    // librdkafka says -1001 (invalid) where the offset is unknown.
    r = Result::Delivered(m.partition(), m.offset() >= 0 ? m.offset() : -1);
    auth_failure_.Clear();  // a delivery shows that authentication works again
    // With acks=0 librdkafka cannot know: it reports "possibly persisted".
    if (m.status() != RdKafka::Message::MSG_STATUS_PERSISTED) r.delivery = Delivery::kUnknown;
  } else if (m.err() == RdKafka::ERR__FATAL || ProducerIsFatal()) {
    // The error that broke idempotence reaches its own message under its
    // own code (for example OUT_OF_ORDER_SEQUENCE_NUMBER); the producer is
    // fatal by then, so say that.
    RecordFatal();
    r = FatalResult();
    r.delivery = m.status() == RdKafka::Message::MSG_STATUS_NOT_PERSISTED ? Delivery::kNotDelivered
                                                                          : Delivery::kUnknown;
  } else {
    r = internal::MapError(m.err(), static_cast<internal::Persisted>(m.status()), m.topic_name(),
                           m.errstr());
  }
  // What Close reports of the messages it purged (see Close).
  if (purging_.load() && !r.ok()) {
    (r.delivery == Delivery::kNotDelivered ? purged_not_delivered_ : purged_unknown_).fetch_add(1);
  }
  // Counted out before the caller wakes, so a caller that returned never
  // sees its own message in InFlight().
  in_flight_.fetch_sub(1);
  Call& call = *slot->call;
  if (call.Complete(*slot, std::move(r)) && serving_here != &call) {
    // Its caller sleeps on the condition variable, or serves reports on
    // another thread (this one served its report): wake it either way.
    call.cv.notify_all();
    if (call.serving.load()) WakeServer();
  }
  call.Release();  // this report's reference
}

}  // namespace dispatch::kafka
