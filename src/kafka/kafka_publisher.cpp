// KafkaPublisher over librdkafka's C++ API.
//
// One Publish, top to bottom: Publish -> Refuse (closed, fatal, context
// already done) -> Run, which creates a Call (waiters.h), Produces each
// message with the Call's Slot as librdkafka's opaque, and Waits: the caller
// serves librdkafka's queue itself when no other caller does (then dr_cb
// completes its slot on its own thread), else it sleeps until the serving
// caller's dr_cb completes it or hands it the lead. Close and event_cb end
// waits through the WaitList.
//
// Rooms beside this file: producer.cpp (the librdkafka configuration),
// waiters.h (Call, Slot, the list of waiting calls and the lead), sticky_error.h
// (the fatal and authentication states), metrics.cpp (counters, histogram),
// log_routing.cpp (log lines and statistics to the user's hooks),
// result_mapping.cpp (librdkafka errors to Results).
#include "dispatch/kafka/kafka_publisher.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
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
using internal::CallPtr;
using internal::Slot;

// How long Prepare waits for a topic's metadata when neither the context nor
// the write timeout bounds it.
constexpr auto kPrepareTimeout = std::chrono::seconds(10);

// Prepare's lookups run in slices of this length, so that Close and a stop
// request wait at most one slice for it.
constexpr std::chrono::milliseconds kPrepareSlice(200);
// Prepare's pause before asking again after an answer that may change.
constexpr std::chrono::milliseconds kPrepareRetryPause(50);

// The longest poll() of a caller that serves reports: it also wakes on its
// own report, a stop request and Close, so this only bounds a missed wake-up.
constexpr std::chrono::milliseconds kServeSlice(100);
// How often the publisher's own thread serves librdkafka's queue while no
// caller does: statistics, errors and the reports of calls that stopped
// waiting arrive this late at most.
constexpr std::chrono::milliseconds kIdleServeInterval(50);

// The Call whose caller serves reports on this thread now, if any.
thread_local const Call* serving_here = nullptr;

// How long Close waits, after purging, for the purged messages' reports.
constexpr auto kPurgeDrain = std::chrono::seconds(2);

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

Result ClosedResult() {
  return Result::Error(ErrorCode::kClosed, Delivery::kNotDelivered, true, "publisher is closed");
}

// How often the enqueue loop of a call reads the clock: after this many
// messages or this many value bytes since the last read, whichever comes
// first. A read per message costs about 2% of a small message's produce()
// (bench B2); at these bounds the loop notices a passed deadline within a few
// hundred microseconds at any message size.
constexpr std::size_t kClockEveryMessages = 64;
constexpr std::size_t kClockEveryBytes = std::size_t{256} * 1024;
// What writing one result costs a call that ends at its deadline (a result
// text copied into the slot: measured 25 to 90 ns on a loaded 2-core
// machine). A batch stops handing messages over this long per message before
// its deadline, so that a call of 300,000 messages still returns at the
// deadline; a message handed over that late could not be acknowledged in
// time anyway, and comes back not delivered instead of unknown.
constexpr std::chrono::nanoseconds kResultCost(60);

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
    rk_ = producer_->c_ptr();
    main_queue_ = rd_kafka_queue_get_main(rk_);
    max_message_bytes_ = created.max_message_bytes;
    poller_ = std::thread([this] { ServeWhileNoCallerDoes(); });
  }

  ~Impl() override { (void)Close(); }

  // --- One publish, from the call to its delivery report ---

  // The result for a call that must not produce at all, or nullopt.
  std::optional<Result> Refuse(const Context& ctx) const {
    if (closed_.load()) return ClosedResult();
    if (auto fatal = fatal_.Get()) return fatal;
    return ContextError(ctx);
  }

  // Produces one message for `slot` of its call. Returns the result when
  // the message could not be produced (it is then certainly not delivered),
  // nullopt when it is in librdkafka's hands and a report will follow.
  // The caller has checked the topic name (TopicNameProblem), is counted in
  // producing_, and counted this message in the call's references.
  std::optional<Result> Produce(const Message& m, Slot& slot, const Context& ctx) {
    rd_kafka_headers_t* headers = nullptr;
    if (!m.headers.empty()) {
      headers = rd_kafka_headers_new(m.headers.size());
      for (const Header& h : m.headers) {
        rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    // Set when the local queue is first full: how long this message may wait
    // for room (its write timeout counts from here, as librdkafka's
    // message.timeout.ms counts from the produce() that accepts it).
    std::optional<Clock::time_point> room_deadline;
    for (;;) {
      if (closed_.load()) {  // ordered with Close's wait for producing_
        if (headers != nullptr) rd_kafka_headers_destroy(headers);
        return ClosedResult();
      }
      // librdkafka's C call: it takes the topic as a C string (the C++ API
      // copies it into a std::string per message) and no header list when
      // there are no headers.
      const char* topic = m.topic.c_str();
      auto* value = const_cast<char*>(m.value.data());
      const std::size_t value_size = m.value.size();
      const void* key = m.key ? m.key->data() : nullptr;
      const std::size_t key_size = m.key ? m.key->size() : 0;
      in_flight_.fetch_add(1);  // before the report can count it out
      const auto err = static_cast<RdKafka::ErrorCode>(
          rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_VALUE(value, value_size), RD_KAFKA_V_KEY(key, key_size),
                            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&slot), RD_KAFKA_V_END));
      if (err == RdKafka::ERR_NO_ERROR) return std::nullopt;  // headers: librdkafka's now
      in_flight_.fetch_sub(1);
      if (err == RdKafka::ERR__FATAL) RecordFatal();
      // A full local queue drains as reports are served: wait for room until
      // the context ends or this message's write timeout passes, then give
      // up with nothing produced.
      if (err == RdKafka::ERR__QUEUE_FULL && !NotHandedOver(ctx, "")) {
        const auto now = Clock::now();
        if (!room_deadline) room_deadline = WriteDeadline(now);
        if (!room_deadline || now < *room_deadline) {
          // Serves reports itself when no waiting caller does (it is counted
          // in producing_, so Close keeps the producer meanwhile).
          if (waiting_.Led()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          } else {
            producer_->poll(1);
          }
          continue;
        }
      }
      if (headers != nullptr) rd_kafka_headers_destroy(headers);
      if (err == RdKafka::ERR__FATAL) return FatalResult();
      if (err == RdKafka::ERR__QUEUE_FULL) {
        if (auto done = NotHandedOver(ctx, "while the local queue was full")) {
          done->message += " (topic " + internal::Printable(m.topic) + ")";
          return done;
        }
      }
      Result r = internal::MapError(err, internal::Persisted::kNot, m.topic, "");
      if (err == RdKafka::ERR_MSG_SIZE_TOO_LARGE) {
        r.message = internal::TooLargeText(m, max_message_bytes_);
      } else if (err == RdKafka::ERR__QUEUE_FULL) {
        r.message += "; the local queue stayed full for the write timeout of " +
                     std::to_string(write_timeout_.count()) + " ms";
      }
      return r;
    }
  }

  // The time a message handed over at `from` stops being waited for under
  // the write timeout; nullopt: no write timeout.
  std::optional<Clock::time_point> WriteDeadline(Clock::time_point from) const {
    if (write_timeout_.count() <= 0) return std::nullopt;
    return from + write_timeout_;
  }

  // The result (without the topic) of a message that the context ended
  // before it was handed to librdkafka, so certainly not delivered; nullopt
  // while the context lives. Reads the clock only when the context has a
  // deadline.
  // `reserve`: how long before the deadline to give up, so that a batch can
  // still write its results by the deadline.
  static std::optional<Result> NotHandedOver(const Context& ctx, const char* when,
                                             Clock::duration reserve = Clock::duration::zero()) {
    if (ctx.Cancelled()) {
      return Result::Error(ErrorCode::kCancelled, Delivery::kNotDelivered, true,
                           std::string("cancelled ") + when + "; the message was not produced");
    }
    if (ctx.deadline() && Clock::now() + reserve >= *ctx.deadline()) {
      return Result::Error(
          ErrorCode::kDeadlineExceeded, Delivery::kNotDelivered, true,
          std::string("context deadline reached ") + when + "; the message was not produced");
    }
    return std::nullopt;
  }

  // Produces the call's messages and waits until every one has its report,
  // or until the context ends, or until the write timeout has passed since
  // the last message was handed over: so each message is waited for at least
  // the write timeout from its own hand-over, as librdkafka's
  // message.timeout.ms counts. Slots still open then get kUnknown. Messages
  // that the context ended before their hand-over get kNotDelivered without
  // being produced. Every slot of `call` is done when this returns.
  void Run(Call& call, const Context& ctx) {
    const std::span<const Message> messages = call.messages;
    const std::stop_token& stop = ctx.stop_token();
    const bool has_deadline = ctx.deadline().has_value();
    const std::string* checked_topic = nullptr;  // a batch mostly has one topic: check it once
    // Refuse() checked the context before the first message; the loop checks
    // the stop token per message (an atomic load) and the clock only now and
    // then (kClockEvery...).
    std::size_t since_clock = 0;
    std::size_t bytes_since_clock = 0;
    // Counted once for the whole loop rather than per message: as producing
    // (Close waits for the loop, whose messages fail fast once closed_ is
    // set) and as the reports' references to the call; the references of
    // what was not produced are dropped after the loop.
    producing_.fetch_add(1);
    call.refs.fetch_add(messages.size(), std::memory_order_relaxed);
    std::size_t produced = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const Message& m = messages[i];
      if (stop.stop_requested() ||
          (has_deadline && (++since_clock >= kClockEveryMessages ||
                            (bytes_since_clock += m.value.size()) >= kClockEveryBytes))) {
        since_clock = 0;
        bytes_since_clock = 0;
        if (auto done = NotHandedOver(ctx, "before the message's turn in the batch",
                                      kResultCost * messages.size())) {
          // No report can touch these slots: none of them was produced.
          const std::lock_guard lock(call.mu);
          call.FinishOpenSlots(*done, i);
          break;
        }
      }
      if (checked_topic == nullptr || m.topic != *checked_topic) {
        if (auto problem = internal::TopicNameProblem(m.topic)) {
          call.Complete(call.slot(i),
                        Result::Error(ErrorCode::kInvalidMessage, Delivery::kNotDelivered, false,
                                      "invalid message: " + *problem));
          continue;
        }
        checked_topic = &m.topic;
      }
      if (auto failed = Produce(m, call.slot(i), ctx)) {
        call.Complete(call.slot(i), std::move(*failed));
      } else {
        ++produced;
      }
    }
    const std::size_t unproduced = messages.size() - produced;
    producing_.fetch_sub(1);
    call.refs.fetch_sub(unproduced, std::memory_order_relaxed);  // the caller still holds one
    // The last hand-over was just now: the write timeout of every message
    // has passed at `deadline`, or the context has ended.
    std::optional<Clock::time_point> deadline = WriteDeadline(Clock::now());
    const bool own = deadline && (!has_deadline || *deadline < *ctx.deadline());
    if (!own) deadline = ctx.deadline();

    // Authentication is failing: waiting would only end at the deadline.
    if (auto failure = auth_failure_.Get()) {
      const std::lock_guard lock(call.mu);
      if (call.remaining.load(std::memory_order_relaxed) > 0) call.FinishOpenSlots(*failure);
    }
    if (Wait(call, stop, deadline)) return;
    const std::lock_guard lock(call.mu);
    if (stop.stop_requested()) {
      call.FinishOpenSlots(Result::Error(
          ErrorCode::kCancelled, Delivery::kUnknown, true,
          "cancelled while the message was queued or in flight; it may still be written"));
    } else {
      call.FinishOpenSlots(Result::Error(
          ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true,
          (own ? "write timeout of " + std::to_string(write_timeout_.count()) + " ms"
               : std::string("context deadline")) +
              " passed while the message was queued or in flight; it may still be written"));
    }
  }

  // Wakes `call`'s caller: from its condition variable, and out of poll()
  // when it serves reports.
  void WakeCaller(Call& call) {
    {
      const std::lock_guard lock(call.mu);
      call.cv.notify_all();
    }
    if (call.serving.load()) WakeServer();
  }

  // Makes a poll() of a serving caller return now. A stop request may call
  // it at any time, even while Close releases the queue: hence the lock.
  void WakeServer() {
    const std::lock_guard lock(main_queue_mu_);
    if (main_queue_ != nullptr) rd_kafka_queue_yield(main_queue_);
  }

  // Waits until every slot of `call` is done (true), or the stop request or
  // `deadline` comes first (false). Serves librdkafka's queue while it leads
  // (WaitList).
  bool Wait(Call& call, const std::stop_token& stop, std::optional<Clock::time_point> deadline) {
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
  bool Serve(Call& call, const std::stop_token& stop, std::optional<Clock::time_point> deadline) {
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
  void ServeWhileNoCallerDoes() {
    std::unique_lock lock(poller_mu_);
    while (!stop_poller_) {
      poller_cv_.wait_for(lock, kIdleServeInterval, [this] { return stop_poller_; });
      if (stop_poller_) break;
      lock.unlock();
      if (!waiting_.Led()) producer_->poll(0);
      lock.lock();
    }
  }

  Result Publish(const Context& ctx, const Message& message) {
    const auto start = Clock::now();
    Result r = Refuse(ctx).value_or(Result());
    if (r.ok()) {
      const CallPtr call(Call::Create(std::span<const Message>(&message, 1)));
      Run(*call, ctx);
      r = std::move(call->slot(0).result);
    }
    metrics_.Record(r, MicrosSince(start));
    return r;
  }

  std::vector<Result> PublishBatch(const Context& ctx, std::span<const Message> messages) {
    const auto start = Clock::now();
    std::vector<Result> results;
    if (auto early = Refuse(ctx)) {
      results.assign(messages.size(), *early);
    } else {
      const CallPtr call(Call::Create(messages));
      Run(*call, ctx);
      results.reserve(messages.size());
      for (std::size_t i = 0; i < messages.size(); ++i) {
        results.push_back(std::move(call->slot(i).result));
      }
    }
    metrics_.Record(results, MicrosSince(start));  // one clock read for the whole batch
    return results;
  }

  // --- Topics named up front ---

  // Looks each topic up with a metadata request of its own, so that the
  // producer knows its partitions and leaders before the first message (the
  // first produce to an unseen topic otherwise waits for that lookup: about
  // 1 s on librdkafka before 2.10.1). The topic handles stay with the
  // publisher until Close, so librdkafka keeps what it learned.
  std::vector<Result> Prepare(const Context& ctx, std::span<const std::string> topics) {
    std::vector<Result> results;
    results.reserve(topics.size());
    for (const std::string& topic : topics) {
      if (auto early = Refuse(ctx)) {
        results.push_back(*std::move(early));
        continue;
      }
      results.push_back(PrepareOne(ctx, topic));
    }
    return results;
  }

  Result PrepareOne(const Context& ctx, const std::string& topic) {
    if (auto problem = internal::TopicNameProblem(topic)) {
      return Result::Error(ErrorCode::kInvalidMessage, Delivery::kNotDelivered, false,
                           "invalid topic: " + *problem);
    }
    // Counted as producing, so Close keeps the producer until this returns;
    // the lookup runs in slices so that Close and the stop token wait at most
    // one slice.
    producing_.fetch_add(1);
    struct Done {
      std::atomic<int>& producing;
      ~Done() { producing.fetch_sub(1); }
    } done{producing_};
    if (closed_.load()) return ClosedResult();
    std::string errstr;
    std::unique_ptr<RdKafka::Topic> handle(
        RdKafka::Topic::create(producer_.get(), topic, nullptr, errstr));
    if (!handle) {
      return Result::Error(
          ErrorCode::kInternal, Delivery::kNotDelivered, true,
          "cannot create a topic handle for " + internal::Printable(topic) + ": " + errstr);
    }
    // The context's deadline bounds the lookup, else the write timeout,
    // else kPrepareTimeout.
    const Clock::time_point deadline = ctx.deadline().value_or(
        Clock::now() + (write_timeout_.count() > 0 ? Clock::duration(write_timeout_)
                                                   : Clock::duration(kPrepareTimeout)));
    // Asks again while the answer may still change: no broker reached yet,
    // or the topic's leader not elected yet.
    RdKafka::ErrorCode err = RdKafka::ERR__TIMED_OUT;
    for (;;) {
      if (closed_.load()) return ClosedResult();
      if (ctx.Cancelled()) {
        return Result::Error(
            ErrorCode::kCancelled, Delivery::kNotDelivered, true,
            "prepare: cancelled while looking up topic " + internal::Printable(topic));
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      RdKafka::Metadata* raw = nullptr;
      err = producer_->metadata(false, handle.get(), &raw,
                                static_cast<int>(std::min(left, kPrepareSlice).count()));
      const std::unique_ptr<RdKafka::Metadata> metadata(raw);
      if (err == RdKafka::ERR_NO_ERROR) err = TopicError(*metadata, topic);
      if (err != RdKafka::ERR__TIMED_OUT && err != RdKafka::ERR__TRANSPORT &&
          err != RdKafka::ERR_LEADER_NOT_AVAILABLE) {
        break;
      }
      // A refused connection answers at once: do not spin on it.
      std::this_thread::sleep_for(std::min(left, kPrepareRetryPause));
    }
    std::lock_guard lock(topics_mu_);
    topics_.try_emplace(topic, std::move(handle));
    if (err == RdKafka::ERR_NO_ERROR) return Result::Delivered();
    Result r = internal::MapError(err, internal::Persisted::kNot, topic, "");
    if (Clock::now() >= deadline) {
      r = Result::Error(ErrorCode::kDeadlineExceeded, Delivery::kNotDelivered, true,
                        "deadline_exceeded: no metadata for topic " + internal::Printable(topic) +
                            " before the deadline; last answer: " + RdKafka::err2str(err));
    }
    r.message = "prepare: " + r.message;
    r.delivery = Delivery::kNotDelivered;  // nothing was produced
    return r;
  }

  // The topic's own error in a metadata answer; a topic without partitions
  // or missing from the answer is unknown.
  static RdKafka::ErrorCode TopicError(const RdKafka::Metadata& metadata,
                                       const std::string& topic) {
    for (const RdKafka::TopicMetadata* t : *metadata.topics()) {
      if (t->topic() != topic) continue;
      if (t->err() == RdKafka::ERR_NO_ERROR && t->partitions()->empty()) break;
      return t->err();
    }
    return RdKafka::ERR_UNKNOWN_TOPIC_OR_PART;
  }

  // The delivery report of one message, on the thread that serves
  // librdkafka's queue: a waiting caller, the publisher's own thread, or
  // Close's while it flushes and drains purged messages.
  void dr_cb(RdKafka::Message& m) override {
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
      r.delivery = m.status() == RdKafka::Message::MSG_STATUS_NOT_PERSISTED
                       ? Delivery::kNotDelivered
                       : Delivery::kUnknown;
    } else {
      r = internal::MapError(m.err(), static_cast<internal::Persisted>(m.status()), m.topic_name(),
                             m.errstr());
    }
    // What Close reports of the messages it purged (see Close).
    if (purging_.load() && !r.ok()) {
      (r.delivery == Delivery::kNotDelivered ? purged_not_delivered_ : purged_unknown_)
          .fetch_add(1);
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
    waiting_.FinishAll(r, /*final=*/false, [this] { WakeServer(); });
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
                         " not delivered, " + std::to_string(unknown) +
                         " possibly written (unknown)";
      internal::CallLog(log_, LogLevel::kWarning, "DISPATCH", text);
      return Result::Error(ErrorCode::kDeadlineExceeded,
                           unknown == 0 ? Delivery::kNotDelivered : Delivery::kUnknown, true,
                           std::move(text));
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
  rd_kafka_t* rk_ = nullptr;  // producer_'s C handle, for produce
  std::mutex main_queue_mu_;
  rd_kafka_queue_t* main_queue_ = nullptr;  // the queue that poll() serves, to wake a poll()
  std::mutex topics_mu_;
  std::map<std::string, std::unique_ptr<RdKafka::Topic>> topics_;  // from Prepare, until Close
  std::thread poller_;
  std::mutex poller_mu_;
  std::condition_variable poller_cv_;
  bool stop_poller_ = false;  // under poller_mu_

  mutable std::mutex close_mu_;
  std::atomic<bool> closed_{false};
  // Enqueue loops of calls, and Prepare's lookups: Close waits for them
  // after setting closed_, which they check before each produce().
  std::atomic<int> producing_{0};
  std::atomic<int> in_flight_{0};  // produced, report not yet in
  // Set by Close before it purges; the purged messages' outcomes, counted by
  // dr_cb, make Close's own result.
  std::atomic<bool> purging_{false};
  std::atomic<int> purged_not_delivered_{0};
  std::atomic<int> purged_unknown_{0};

  internal::WaitList waiting_;
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

std::vector<Result> KafkaPublisher::Prepare(const Context& ctx,
                                            std::span<const std::string> topics) {
  return impl_->Prepare(ctx, topics);
}

Result KafkaPublisher::Close() { return impl_->Close(); }

int KafkaPublisher::InFlight() const { return impl_->InFlight(); }

PublisherMetrics KafkaPublisher::Metrics() const { return impl_->Metrics(); }

}  // namespace dispatch::kafka
