// KafkaPublisher over librdkafka's C++ API.
//
// One Publish, top to bottom: Publish -> Refuse (closed, fatal, context
// already done) -> Send, which registers a Call (waiters.h), Produces each
// message with a Pending as librdkafka's opaque, and waits on the Call ->
// dr_cb, served by the poller thread, completes the Call's slot and wakes the
// caller. Close and event_cb end waits through the WaitRegistry.
//
// Rooms beside this file: producer.cpp (the librdkafka configuration),
// waiters.h (Call, Pending, the registry of waiting calls), sticky_error.h
// (the fatal and authentication states), metrics.cpp (counters, histogram),
// log_routing.cpp (log lines and statistics to the user's hooks),
// result_mapping.cpp (librdkafka errors to Results).
#include "dispatch/kafka/kafka_publisher.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include "internal.h"
#include "log_routing.h"
#include "metrics.h"
#include "producer.h"
#include "sticky_error.h"
#include "waiters.h"

namespace dispatch::kafka {
namespace {

using Clock = Context::Clock;
using internal::Call;
using internal::Pending;

// How long Close waits, after purging, for the purged messages' reports.
constexpr auto kPurgeDrain = std::chrono::seconds(2);

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

Result ClosedResult() {
  return Result::Error(ErrorCode::kClosed, Delivery::kNotDelivered, true, "publisher is closed");
}

// What the message-size check of librdkafka counts of a message.
std::size_t Size(const Message& m) {
  std::size_t n = m.value.size() + (m.key ? m.key->size() : 0);
  for (const Header& h : m.headers) n += h.key.size() + h.value.size();
  return n;
}

}  // namespace

class KafkaPublisher::Impl : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
 public:
  explicit Impl(const KafkaConfig& config)
      : log_(config.log),
        statistics_(config.statistics),
        write_timeout_(config.write_timeout),
        close_timeout_(config.close_timeout),
        scram_caveat_(internal::ScramCaveat(config, rd_kafka_version(), rd_kafka_version_str())) {
    auto created = internal::CreateProducer(config, this, this);
    producer_ = std::move(created.producer);
    max_message_bytes_ = created.max_message_bytes;
    poller_ = std::thread([this] {
      while (!stop_poller_.load()) producer_->poll(50);
    });
  }

  ~Impl() override { (void)Close(); }

  // --- One publish, from the call to its delivery report ---

  // The result for a call that must not produce at all, or nullopt.
  std::optional<Result> Refuse(const Context& ctx) const {
    if (closed_.load()) return ClosedResult();
    if (auto fatal = fatal_.Get()) return fatal;
    return ContextError(ctx);
  }

  // The earlier of the context's deadline and the write timeout.
  std::optional<Clock::time_point> Deadline(const Context& ctx) const {
    std::optional<Clock::time_point> d = ctx.deadline();
    if (write_timeout_.count() > 0) {
      const auto own = Clock::now() + write_timeout_;
      if (!d || own < *d) d = own;
    }
    return d;
  }

  // Produces one message for slot `index` of `call`. Returns the result when
  // the message could not be produced (it is then certainly not delivered),
  // nullopt when it is in librdkafka's hands and a report will follow.
  // The topic name has been checked (TopicNameProblem) by the caller.
  std::optional<Result> Produce(const Message& m, const std::shared_ptr<Call>& call,
                                std::size_t index, std::optional<Clock::time_point> deadline,
                                const std::stop_token& stop) {
    std::unique_ptr<RdKafka::Headers> headers;
    if (!m.headers.empty()) {
      headers.reset(RdKafka::Headers::create());
      for (const Header& h : m.headers) headers->add(h.key, h.value.data(), h.value.size());
    }
    auto pending = std::make_unique<Pending>(Pending{call, index});
    for (;;) {
      producing_.fetch_add(1);
      if (closed_.load()) {
        producing_.fetch_sub(1);
        return ClosedResult();
      }
      in_flight_.fetch_add(1);
      // Without headers, the overload without them: librdkafka then builds
      // no empty header list per message.
      auto* value = const_cast<char*>(m.value.data());
      const void* key = m.key ? m.key->data() : nullptr;
      const std::size_t key_size = m.key ? m.key->size() : 0;
      const RdKafka::ErrorCode err =
          headers ? producer_->produce(m.topic, RdKafka::Topic::PARTITION_UA,
                                       RdKafka::Producer::RK_MSG_COPY, value, m.value.size(), key,
                                       key_size, 0, headers.get(), pending.get())
                  : producer_->produce(m.topic, RdKafka::Topic::PARTITION_UA,
                                       RdKafka::Producer::RK_MSG_COPY, value, m.value.size(), key,
                                       key_size, 0, pending.get());
      if (err == RdKafka::ERR_NO_ERROR) {
        producing_.fetch_sub(1);
        (void)headers.release();  // owned by librdkafka now
        (void)pending.release();  // deleted by dr_cb
        return std::nullopt;
      }
      in_flight_.fetch_sub(1);
      // Still counted as producing, so Close cannot free the producer here.
      if (err == RdKafka::ERR__FATAL) RecordFatal();
      producing_.fetch_sub(1);
      if (err == RdKafka::ERR__FATAL) return FatalResult();
      // A full local queue drains as reports arrive: wait for room until
      // the call's own bound, then give up with nothing produced.
      if (err == RdKafka::ERR__QUEUE_FULL) {
        if (stop.stop_requested()) {
          return Result::Error(ErrorCode::kCancelled, Delivery::kNotDelivered, true,
                               "cancelled while the local queue was full (topic " +
                                   internal::Printable(m.topic) + ")");
        }
        if (!deadline || Clock::now() < *deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
      }
      Result r = internal::MapError(err, internal::Persisted::kNot, m.topic, "");
      if (err == RdKafka::ERR_MSG_SIZE_TOO_LARGE) {
        r.message = "message too large: " + std::to_string(Size(m)) +
                    " bytes exceed message.max.bytes " + std::to_string(max_message_bytes_) +
                    " (topic " + internal::Printable(m.topic) + ")";
      }
      return r;
    }
  }

  // Produces `messages` and waits until every one has its report, or the
  // deadline or the stop token ends the wait; open slots then get kUnknown.
  std::vector<Result> Send(const Context& ctx, std::span<const Message> messages) {
    const auto deadline = Deadline(ctx);
    auto call = std::make_shared<Call>(messages);
    const internal::WaitRegistry::Registration registration(waiting_, call.get());
    const std::string* checked_topic = nullptr;  // a batch mostly has one topic: check it once
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const Message& m = messages[i];
      if (checked_topic == nullptr || m.topic != *checked_topic) {
        if (auto problem = internal::TopicNameProblem(m.topic)) {
          call->Complete(i, Result::Error(ErrorCode::kInvalidMessage, Delivery::kNotDelivered,
                                          false, "invalid message: " + *problem));
          continue;
        }
        checked_topic = &m.topic;
      }
      if (auto failed = Produce(m, call, i, deadline, ctx.stop_token())) {
        call->Complete(i, std::move(*failed));
      }
    }
    std::unique_lock lock(call->mu);
    // Authentication is failing: waiting would only end at the deadline.
    if (call->remaining > 0) {
      if (auto failure = auth_failure_.Get()) call->FinishOpenSlots(*failure);
    }
    const auto all_done = [&call] { return call->remaining == 0; };
    const std::stop_token& stop = ctx.stop_token();
    const bool finished = deadline ? call->cv.wait_until(lock, stop, *deadline, all_done)
                                   : call->cv.wait(lock, stop, all_done);
    if (!finished) {
      if (stop.stop_requested()) {
        call->FinishOpenSlots(Result::Error(
            ErrorCode::kCancelled, Delivery::kUnknown, true,
            "cancelled while the message was queued or in flight; it may still be written"));
      } else {
        const bool own = !ctx.deadline() || *deadline < *ctx.deadline();
        call->FinishOpenSlots(Result::Error(
            ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true,
            (own ? "write timeout of " + std::to_string(write_timeout_.count()) + " ms"
                 : std::string("context deadline")) +
                " passed while the message was queued or in flight; it may still be written"));
      }
    }
    return std::move(call->results);
  }

  Result Publish(const Context& ctx, const Message& message) {
    const auto start = Clock::now();
    Result r = Refuse(ctx).value_or(Result());
    if (r.ok()) r = std::move(Send(ctx, std::span<const Message>(&message, 1))[0]);
    metrics_.Record(r, MicrosSince(start));
    return r;
  }

  std::vector<Result> PublishBatch(const Context& ctx, std::span<const Message> messages) {
    const auto start = Clock::now();
    std::vector<Result> results;
    if (auto early = Refuse(ctx)) {
      results.assign(messages.size(), *early);
    } else {
      results = Send(ctx, messages);
    }
    const double us = MicrosSince(start);  // one clock read for the whole batch
    for (const Result& r : results) metrics_.Record(r, us);
    return results;
  }

  // The delivery report of one message, on the poller thread (or on Close's
  // thread while it drains purged messages).
  void dr_cb(RdKafka::Message& m) override {
    auto* pending = static_cast<Pending*>(m.msg_opaque());
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
      r.delivery = m.status() == RdKafka::Message::MSG_STATUS_NOT_PERSISTED
                       ? Delivery::kNotDelivered
                       : Delivery::kUnknown;
    } else {
      r = internal::MapError(m.err(), static_cast<internal::Persisted>(m.status()), m.topic_name(),
                             m.errstr());
    }
    // Counted out before the caller wakes, so a caller that returned never
    // sees its own message in InFlight().
    in_flight_.fetch_sub(1);
    Call& call = *pending->call;
    if (call.Complete(pending->index, std::move(r))) call.cv.notify_all();
    delete pending;
  }

  // --- The producer's other events ---

  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_LOG: {
        const std::string text = event.str();
        const auto [broker, message] = internal::SplitBroker(text);
        internal::CallLog(log_, static_cast<LogLevel>(event.severity()), event.fac(), message,
                          broker);
        break;
      }
      case RdKafka::Event::EVENT_STATS: internal::CallStatistics(statistics_, event.str()); break;
      case RdKafka::Event::EVENT_ERROR: {
        if (event.fatal()) RecordFatal();
        const std::string text = RdKafka::err2str(event.err()) + ": " + event.str();
        internal::CallLog(log_, event.fatal() ? LogLevel::kCritical : LogLevel::kError, "ERROR",
                          text);
        if (!event.fatal() &&
            (event.err() == RdKafka::ERR__SSL || event.err() == RdKafka::ERR__AUTHENTICATION)) {
          EndWaitsOnAuthenticationFailure(event.err(), text);
        }
        break;
      }
      default: break;
    }
  }

  // librdkafka keeps messages queued through TLS and SASL failures (it
  // retries the connection) until message.timeout.ms, so a wrong CA or
  // password would look like a timeout. Waiting callers learn the reason
  // now, and later callers at once, until a delivery succeeds (librdkafka
  // reports an identical failure again only now and then). The messages stay
  // queued and may still be written if the broker side is fixed in time:
  // hence kUnknown, as for a deadline.
  void EndWaitsOnAuthenticationFailure(RdKafka::ErrorCode err, const std::string& text) {
    Result r = Result::Error(ErrorCode::kAuthenticationFailed, Delivery::kUnknown, true,
                             std::string(ToString(ErrorCode::kAuthenticationFailed)) + ": " + text +
                                 " (librdkafka " +
                                 rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) +
                                 "); the message stays queued and may still be written" +
                                 (err == RdKafka::ERR__AUTHENTICATION ? scram_caveat_ : ""));
    auth_failure_.Set(r);
    waiting_.FinishAll(r);
  }

  bool ProducerIsFatal() const {
    if (fatal_.IsSet()) return true;
    std::string ignored;
    return producer_->fatal_error(ignored) != RdKafka::ERR_NO_ERROR;
  }

  // Keeps librdkafka's reason for the first fatal error; every later call
  // fails fast with it.
  void RecordFatal() {
    if (fatal_.IsSet()) return;
    fatal_.SetOnce([this] {
      std::string reason;
      const RdKafka::ErrorCode code = producer_->fatal_error(reason);
      return Result::Error(ErrorCode::kFatal, Delivery::kNotDelivered, true,
                           "fatal producer error: " + RdKafka::err2str(code) + ": " + reason +
                               "; recreate the publisher");
    });
  }

  Result FatalResult() const { return *fatal_.Get(); }

  // --- Close and the counters ---

  Result Close() {
    std::lock_guard close_lock(close_mu_);
    if (!producer_) return Result::Delivered();
    closed_.store(true);
    // Every Produce that saw closed_ == false has finished its produce() call.
    while (producing_.load() > 0) std::this_thread::yield();

    producer_->flush(static_cast<int>(close_timeout_.count()));
    const int left = in_flight_.load();
    if (left > 0) {
      producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT |
                       RdKafka::Producer::PURGE_NON_BLOCKING);
      // Purged messages get their reports at once; serve them so every
      // waiter has its result before the producer goes.
      const auto bound = Clock::now() + kPurgeDrain;
      while (in_flight_.load() > 0 && Clock::now() < bound) producer_->poll(10);
    }
    stop_poller_.store(true);
    poller_.join();
    const int lost = in_flight_.load();
    if (lost > 0) {
      internal::CallLog(log_, LogLevel::kError, "DISPATCH",
                        std::to_string(lost) + " message(s) had no delivery report after purge");
    }
    // Whatever still waits (a report librdkafka never sent) ends now: the
    // message may or may not have been written.
    waiting_.FinishAll(Result::Error(ErrorCode::kClosed, Delivery::kUnknown, true,
                                     "publisher closed before the delivery report"));
    producer_.reset();
    if (left > 0) {
      std::string text = "close timeout of " + std::to_string(close_timeout_.count()) +
                         " ms passed; " + std::to_string(left) +
                         " message(s) were purged and reported kClosed";
      internal::CallLog(log_, LogLevel::kWarning, "DISPATCH", text);
      return Result::Error(ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true, std::move(text));
    }
    return Result::Delivered();
  }

  int InFlight() const { return in_flight_.load(); }

  PublisherMetrics Metrics() const {
    PublisherMetrics m = metrics_.Snapshot();
    m.in_flight = in_flight_.load();
    // Close may be releasing the producer: read it under the same lock.
    std::unique_lock lock(close_mu_, std::try_to_lock);
    if (lock.owns_lock() && producer_) m.queue_depth = producer_->outq_len();
    return m;
  }

 private:
  const LogHook log_;
  const StatisticsHook statistics_;
  const std::chrono::milliseconds write_timeout_;
  const std::chrono::milliseconds close_timeout_;
  const std::string scram_caveat_;  // see internal::ScramCaveat
  long long max_message_bytes_ = 0;

  std::unique_ptr<RdKafka::Producer> producer_;
  std::thread poller_;
  std::atomic<bool> stop_poller_{false};

  mutable std::mutex close_mu_;
  std::atomic<bool> closed_{false};
  std::atomic<int> producing_{0};  // Produce calls between their closed_ check and produce()
  std::atomic<int> in_flight_{0};  // produced, report not yet in

  internal::WaitRegistry waiting_;
  internal::StickyError fatal_;         // set once; the producer is unusable
  internal::StickyError auth_failure_;  // the last TLS or SASL failure, until a delivery
  internal::MetricsRecorder metrics_;
};

KafkaPublisher::KafkaPublisher(const KafkaConfig& config) : impl_(std::make_unique<Impl>(config)) {}

KafkaPublisher::~KafkaPublisher() = default;

Result KafkaPublisher::Publish(const Context& ctx, const Message& message) {
  return impl_->Publish(ctx, message);
}

std::vector<Result> KafkaPublisher::PublishBatch(const Context& ctx,
                                                 std::span<const Message> messages) {
  if (messages.empty()) return {};
  return impl_->PublishBatch(ctx, messages);
}

Result KafkaPublisher::Close() { return impl_->Close(); }

int KafkaPublisher::InFlight() const { return impl_->InFlight(); }

PublisherMetrics KafkaPublisher::Metrics() const { return impl_->Metrics(); }

}  // namespace dispatch::kafka
