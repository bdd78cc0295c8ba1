// The call: one Publish or PublishBatch from the caller to its results.
// Refuse (closed, fatal, context already done) -> Run, which creates a Call
// (waiters.h), Produces each message with the Call's Slot as librdkafka's
// opaque, then Waits for the reports (report_serving.cpp). The deadlines:
// the context's, and the write timeout counted from each hand-over.
#include <algorithm>
#include <thread>

#include "internal.h"
#include "publisher_impl.h"

namespace dispatch::kafka {
namespace {

using Clock = Context::Clock;
using internal::Call;
using internal::CallPtr;
using internal::Slot;

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
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

// A message of a batch that could not be handed over with a retriable
// result, which stops the later messages of its topic and key.
struct StoppedKey {
  const Message* message;
  std::size_t index;  // in the batch
  Result result;
};

const StoppedKey* FindStopped(const std::vector<StoppedKey>& stopped, const Message& m) {
  for (const StoppedKey& s : stopped) {
    if (*s.message->key == *m.key && s.message->topic == m.topic) return &s;
  }
  return nullptr;
}

Result KeyStoppedResult(const StoppedKey& s) {
  return Result::Error(s.result.code, Delivery::kNotDelivered, true,
                       "not produced: message " + std::to_string(s.index) +
                           " of the batch, of the same topic and key, could not be handed over (" +
                           s.result.message + ")");
}

}  // namespace

// The result for a call that must not produce at all, or nullopt.
std::optional<Result> KafkaPublisher::Impl::Refuse(const Context& ctx) const {
  if (closed_.load()) return internal::ClosedResult();
  if (auto fatal = fatal_.Get()) return fatal;
  return ContextError(ctx);
}

// Produces one message for `slot` of its call. Returns the result when
// the message could not be produced (it is then certainly not delivered),
// nullopt when it is in librdkafka's hands and a report will follow.

// Produces one message for `slot` of its call. Returns the result when
// the message could not be produced (it is then certainly not delivered),
// nullopt when it is in librdkafka's hands and a report will follow.
// The caller has checked the topic name (TopicNameProblem), is counted in
// producing_, and counted this message in the call's references.
std::optional<Result> KafkaPublisher::Impl::Produce(const Message& m, Slot& slot,
                                                    const Context& ctx) {
  rd_kafka_headers_t* headers = nullptr;
  if (!m.headers.empty()) {
    headers = rd_kafka_headers_new(m.headers.size());
    for (const Header& h : m.headers) {
      rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
    }
  }
  // Set when the local queue is first full: how long this message may wait
  // for room (its write timeout counts from here, as librdkafka's
  // message.timeout.ms counts from the produce() that accepts it).
  std::optional<Clock::time_point> room_deadline;
  for (;;) {
    if (closed_.load()) {  // ordered with Close's wait for producing_
      if (headers != nullptr) rd_kafka_headers_destroy(headers);
      return internal::ClosedResult();
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
std::optional<Clock::time_point> KafkaPublisher::Impl::WriteDeadline(Clock::time_point from) const {
  if (write_timeout_.count() <= 0) return std::nullopt;
  return from + write_timeout_;
}

// The result (without the topic) of a message that the context ended
// before it was handed to librdkafka, so certainly not delivered; nullopt
// while the context lives. Reads the clock only when the context has a
// deadline.
// `reserve`: how long before the deadline to give up, so that a batch can
// still write its results by the deadline.
std::optional<Result> KafkaPublisher::Impl::NotHandedOver(const Context& ctx, const char* when,
                                                          Clock::duration reserve) {
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
void KafkaPublisher::Impl::Run(Call& call, const Context& ctx) {
  const std::span<const Message> messages = call.messages;
  const std::stop_token& stop = ctx.stop_token();
  const bool has_deadline = ctx.deadline().has_value();
  const std::string* checked_topic = nullptr;  // a batch mostly has one topic: check it once
  std::vector<const std::string*> new_topics;  // see LookUp: empty but on old librdkafka
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
  // Messages whose hand-over failed with a retriable result: the later ones
  // of their topic and key are not produced (OrdersKeysInBatch).
  std::vector<StoppedKey> stopped_keys;
  // Topics refused as unknown and looked up again by this call: still missing.
  std::vector<std::string> missing_topics;
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
      if (look_up_new_topics_ && FirstToName(m.topic)) new_topics.push_back(&m.topic);
    }
    if (!stopped_keys.empty() && m.key) {
      if (const StoppedKey* stopped = FindStopped(stopped_keys, m)) {
        call.Complete(call.slot(i), KeyStoppedResult(*stopped));
        continue;
      }
    }
    std::optional<Result> failed = Produce(m, call.slot(i), ctx);
    // A topic librdkafka holds missing may have been created since: look it
    // up again (topics.cpp), once per call and topic.
    if (failed && failed->code == ErrorCode::kUnknownTopic &&
        std::find(missing_topics.begin(), missing_topics.end(), m.topic) == missing_topics.end()) {
      failed = ProduceIfFoundAgain(m, call.slot(i), ctx, *std::move(failed));
      if (failed && failed->code == ErrorCode::kUnknownTopic) missing_topics.push_back(m.topic);
    }
    if (failed) {
      // Later messages of its topic and key must not be written before it.
      if (failed->retriable && m.key) stopped_keys.push_back({&m, i, *failed});
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
  // The call's messages to these topics wait in librdkafka's queue for the
  // topics' metadata, which this lookup brings within a round trip.
  for (const std::string* topic : new_topics) LookUp(ctx, deadline, *topic);

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

Result KafkaPublisher::Impl::Publish(const Context& ctx, const Message& message) {
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

std::vector<Result> KafkaPublisher::Impl::PublishBatch(const Context& ctx,
                                                       std::span<const Message> messages) {
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

}  // namespace dispatch::kafka
