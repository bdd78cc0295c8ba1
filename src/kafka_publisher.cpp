// KafkaPublisher over librdkafka's C++ API.
//
// Each Publish / PublishBatch call owns a Call: its results and a condition
// variable. Each produced message carries, as librdkafka's opaque, a heap
// Pending that holds a shared_ptr to its Call. The delivery report (served by
// the poller thread) fills the result, wakes the caller and deletes the
// Pending. A caller that stops waiting (deadline, cancel) marks its open slots
// done and leaves; a late report then finds the Call still alive through its
// own shared_ptr and changes nothing.
#include "dispatch/kafka/kafka_publisher.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "internal.h"

namespace dispatch::kafka {
namespace {

using Clock = Context::Clock;

// How long Close waits, after purging, for the purged messages' reports.
constexpr auto kPurgeDrain = std::chrono::seconds(2);

struct Call {
  explicit Call(std::span<const Message> m)
      : messages(m), results(m.size()), done(m.size(), 0), remaining(m.size()) {}

  // The caller's messages: valid only while the caller waits (used to name
  // topics in results written by the caller or by Close, never by reports).
  std::span<const Message> messages;
  std::mutex mu;
  std::condition_variable_any cv;
  std::vector<Result> results;
  std::vector<char> done;
  std::size_t remaining;

  // Gives every open slot `r` (with its own topic named) and wakes the
  // caller. Caller holds `mu`.
  void FinishOpenSlots(const Result& r) {
    for (std::size_t i = 0; i < done.size(); ++i) {
      if (done[i]) continue;
      results[i] = r;
      results[i].message += " (topic " + internal::Printable(messages[i].topic) + ")";
      done[i] = 1;
    }
    remaining = 0;
  }

  // Sets slot `i` unless the caller already gave up on it. Returns true when
  // this was the last open slot.
  bool Complete(std::size_t i, Result r) {
    std::lock_guard lock(mu);
    if (done[i]) return false;
    results[i] = std::move(r);
    done[i] = 1;
    return --remaining == 0;
  }
};

struct Pending {
  std::shared_ptr<Call> call;
  std::size_t index;
};

void CallLog(const LogHook& hook, LogLevel level, std::string_view facility,
             std::string_view message, std::string_view broker = {}) {
  if (!hook) return;
  try {
    hook(LogEntry{level, facility, message, broker});
  } catch (...) {
    // A throwing hook must not unwind into librdkafka's threads.
  }
}

// librdkafka prefixes a log line with its thread, "[thrd:NAME]: ". A broker
// thread is named "host:port/id" (or "proto://host:port/id"); "main", "app"
// and the internal broker ":0/internal" are no broker.
std::pair<std::string_view, std::string_view> SplitBroker(std::string_view text) {
  constexpr std::string_view kPrefix = "[thrd:";
  if (text.substr(0, kPrefix.size()) != kPrefix) return {{}, text};
  const auto end = text.find("]: ");
  if (end == std::string_view::npos) return {{}, text};
  const std::string_view thread = text.substr(kPrefix.size(), end - kPrefix.size());
  const std::string_view rest = text.substr(end + 3);
  const bool is_broker =
      !thread.empty() && thread.front() != ':' && thread.find(':') != std::string_view::npos;
  return {is_broker ? thread : std::string_view(), rest};
}

// Latencies in buckets four to a doubling of microseconds (about 19% wide),
// updated with relaxed atomics so recording costs no lock.
class LatencyHistogram {
 public:
  void Record(double us) {
    const double clamped = std::max(us, 1.0);
    const auto i =
        std::min<std::size_t>(static_cast<std::size_t>(4.0 * std::log2(clamped)), kBuckets - 1);
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    double max = max_us_.load(std::memory_order_relaxed);
    while (us > max && !max_us_.compare_exchange_weak(max, us, std::memory_order_relaxed)) {
    }
  }
  // The upper bound of the bucket holding quantile `q`; 0 with no samples.
  double Quantile(double q) const {
    std::array<std::uint64_t, kBuckets> c{};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kBuckets; ++i)
      total += c[i] = counts_[i].load(std::memory_order_relaxed);
    if (total == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += c[i];
      if (seen > rank) return std::min(std::exp2(static_cast<double>(i + 1) / 4.0), Max());
    }
    return Max();
  }
  double Max() const { return max_us_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t kBuckets = std::size_t{4} * 27;  // up to 2^27 us, about 2 minutes
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<double> max_us_{0};
};

}  // namespace

class KafkaPublisher::Impl : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
 public:
  explicit Impl(const KafkaConfig& config)
      : log_(config.log),
        statistics_(config.statistics),
        write_timeout_(config.write_timeout),
        close_timeout_(config.close_timeout) {
    const auto props = internal::BuildProperties(config);
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string errstr;
    for (const auto& p : props) {
      if (conf->set(p.name, p.value, errstr) != RdKafka::Conf::CONF_OK) {
        if (internal::IsSecretProperty(p.name)) errstr = internal::Redact(errstr, p.value);
        throw ConfigError(p.field,
                          p.field + ": librdkafka rejected property \"" + p.name + "\": " + errstr);
      }
    }
    if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(this), errstr) !=
            RdKafka::Conf::CONF_OK ||
        conf->set("event_cb", static_cast<RdKafka::EventCb*>(this), errstr) !=
            RdKafka::Conf::CONF_OK) {
      throw ConfigError("(callbacks)", "cannot install callbacks: " + errstr);
    }
    std::string value;
    if (conf->get("message.max.bytes", value) == RdKafka::Conf::CONF_OK) {
      max_message_bytes_ = std::stoll(value);
    }
    producer_.reset(RdKafka::Producer::create(conf.get(), errstr));
    if (!producer_) {
      // Reached for combinations librdkafka checks only at creation (for
      // example SSL files that do not exist). Scrub every secret value.
      for (const auto& p : props) {
        if (internal::IsSecretProperty(p.name)) errstr = internal::Redact(errstr, p.value);
      }
      throw ConfigError("properties", "librdkafka rejected the configuration: " + errstr);
    }
    poller_ = std::thread([this] { Poll(); });
  }

  ~Impl() override { Close(); }

  Result Publish(const Context& ctx, const Message& message) {
    const auto start = Clock::now();
    Result r = Refuse(ctx).value_or(Result());
    if (r.ok()) r = std::move(Send(ctx, std::span<const Message>(&message, 1))[0]);
    Account(r, MicrosSince(start));
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
    for (const Result& r : results) Account(r, us);
    return results;
  }

  PublisherMetrics Metrics() const {
    PublisherMetrics m;
    m.published = published_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
      m.failed_by_code[i] = failed_by_code_[i].load(std::memory_order_relaxed);
      m.failed += m.failed_by_code[i];
    }
    for (std::size_t i = 0; i < m.by_delivery.size(); ++i) {
      m.by_delivery[i] = by_delivery_[i].load(std::memory_order_relaxed);
    }
    m.in_flight = in_flight_.load();
    {
      // Close may be releasing the producer: read it under the same lock.
      std::unique_lock lock(close_mu_, std::try_to_lock);
      if (lock.owns_lock() && producer_) m.queue_depth = producer_->outq_len();
    }
    m.latency_p50_us = latency_.Quantile(0.50);
    m.latency_p99_us = latency_.Quantile(0.99);
    m.latency_max_us = latency_.Max();
    return m;
  }

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
      CallLog(log_, LogLevel::kError, "DISPATCH",
              std::to_string(lost) + " message(s) had no delivery report after purge");
    }
    // Whatever still waits (a report librdkafka never sent) ends now: the
    // message may or may not have been written.
    {
      std::lock_guard calls_lock(calls_mu_);
      for (Call* call : calls_) {
        std::lock_guard lock(call->mu);
        if (call->remaining == 0) continue;
        call->FinishOpenSlots(Result::Error(ErrorCode::kClosed, Delivery::kUnknown, true,
                                            "publisher closed before the delivery report"));
        call->cv.notify_all();
      }
    }
    producer_.reset();
    if (left > 0) {
      std::string text = "close timeout of " + std::to_string(close_timeout_.count()) +
                         " ms passed; " + std::to_string(left) +
                         " message(s) were purged and reported kClosed";
      CallLog(log_, LogLevel::kWarning, "DISPATCH", text);
      return Result::Error(ErrorCode::kDeadlineExceeded, Delivery::kUnknown, true, std::move(text));
    }
    return Result::Delivered();
  }

  int InFlight() const { return in_flight_.load(); }

  // librdkafka callbacks.
  void dr_cb(RdKafka::Message& m) override {
    auto* pending = static_cast<Pending*>(m.msg_opaque());
    Result r;
    if (m.err() == RdKafka::ERR_NO_ERROR) {
      // librdkafka says -1001 (invalid) where the offset is unknown.
      r = Result::Delivered(m.partition(), m.offset() >= 0 ? m.offset() : -1);
      ClearAuthenticationFailure();
      // With acks=0 librdkafka cannot know: it reports "possibly persisted".
      if (m.status() != RdKafka::Message::MSG_STATUS_PERSISTED) r.delivery = Delivery::kUnknown;
    } else {
      // The error that broke idempotence reaches its own message under its
      // own code (for example OUT_OF_ORDER_SEQUENCE_NUMBER); the producer is
      // fatal by then, so say that.
      if (m.err() == RdKafka::ERR__FATAL || ProducerIsFatal()) {
        RecordFatal();
        r = FatalResult();
        r.delivery = m.status() == RdKafka::Message::MSG_STATUS_NOT_PERSISTED
                         ? Delivery::kNotDelivered
                         : Delivery::kUnknown;
      } else {
        r = internal::MapError(m.err(), static_cast<internal::Persisted>(m.status()),
                               m.topic_name(), m.errstr());
      }
    }
    // Counted out before the caller wakes, so a caller that returned never
    // sees its own message in InFlight().
    in_flight_.fetch_sub(1);
    Call& call = *pending->call;
    if (call.Complete(pending->index, std::move(r))) call.cv.notify_all();
    delete pending;
  }

  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_LOG: {
        const std::string text = event.str();
        const auto [broker, message] = SplitBroker(text);
        CallLog(log_, static_cast<LogLevel>(event.severity()), event.fac(), message, broker);
        break;
      }
      case RdKafka::Event::EVENT_STATS:
        if (statistics_) {
          try {
            statistics_(event.str());
          } catch (...) {
            // As with the log hook: never unwind into librdkafka.
          }
        }
        break;
      case RdKafka::Event::EVENT_ERROR: {
        if (event.fatal()) RecordFatal();
        const std::string text = RdKafka::err2str(event.err()) + ": " + event.str();
        CallLog(log_, event.fatal() ? LogLevel::kCritical : LogLevel::kError, "ERROR", text);
        if (!event.fatal() &&
            (event.err() == RdKafka::ERR__SSL || event.err() == RdKafka::ERR__AUTHENTICATION)) {
          EndWaitsOnAuthenticationFailure(event.err(), text);
        }
        break;
      }
      default: break;
    }
  }

 private:
  static double MicrosSince(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  }

  void Account(const Result& r, double latency_us) {
    if (r.ok()) {
      published_.fetch_add(1, std::memory_order_relaxed);
    } else {
      failed_by_code_[static_cast<std::size_t>(r.code)].fetch_add(1, std::memory_order_relaxed);
    }
    by_delivery_[static_cast<std::size_t>(r.delivery)].fetch_add(1, std::memory_order_relaxed);
    latency_.Record(latency_us);
  }

  // The result for a call that must not produce at all, or nullopt.
  std::optional<Result> Refuse(const Context& ctx) {
    if (closed_.load()) return ClosedResult();
    if (fatal_.load()) return FatalResult();
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
    Registration registration(*this, call.get());
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
      if (auto failure = StandingAuthenticationFailure()) call->FinishOpenSlots(*failure);
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

  // Keeps a waiting call known to Close for as long as its caller waits.
  class Registration {
   public:
    Registration(Impl& impl, Call* call) : impl_(impl), call_(call) {
      std::lock_guard lock(impl_.calls_mu_);
      impl_.calls_.insert(call_);
    }
    ~Registration() {
      std::lock_guard lock(impl_.calls_mu_);
      impl_.calls_.erase(call_);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    Impl& impl_;
    Call* call_;
  };

  void Poll() {
    while (!stop_poller_.load()) producer_->poll(50);
  }

  // librdkafka keeps messages queued through TLS and SASL failures (it
  // retries the connection) until message.timeout.ms, so a wrong CA or
  // password would look like a timeout. Waiting callers learn the reason
  // now. Their messages stay queued and may still be written if the broker
  // side is fixed in time: hence kUnknown, as for a deadline.
  void EndWaitsOnAuthenticationFailure(RdKafka::ErrorCode err, const std::string& text) {
    const Result r = Result::Error(ErrorCode::kAuthenticationFailed, Delivery::kUnknown, true,
                                   std::string(ToString(ErrorCode::kAuthenticationFailed)) + ": " +
                                       text + " (librdkafka " +
                                       rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) +
                                       "); the message stays queued and may still be written");
    {
      std::lock_guard lock(auth_mu_);
      auth_failure_ = r;
      auth_failed_.store(true);
    }
    std::lock_guard calls_lock(calls_mu_);
    for (Call* call : calls_) {
      std::lock_guard lock(call->mu);
      if (call->remaining == 0) continue;
      call->FinishOpenSlots(r);
      call->cv.notify_all();
    }
  }

  // librdkafka reports an identical failure again only now and then, so the
  // last one stands until a delivery shows that authentication works again.
  std::optional<Result> StandingAuthenticationFailure() {
    if (!auth_failed_.load()) return std::nullopt;
    std::lock_guard lock(auth_mu_);
    return auth_failure_;
  }

  void ClearAuthenticationFailure() {
    if (!auth_failed_.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(auth_mu_);
    auth_failure_.reset();
    auth_failed_.store(false);
  }

  bool ProducerIsFatal() const {
    if (fatal_.load()) return true;
    std::string ignored;
    return producer_->fatal_error(ignored) != RdKafka::ERR_NO_ERROR;
  }

  void RecordFatal() {
    std::lock_guard lock(fatal_mu_);
    if (fatal_.load()) return;
    std::string reason;
    const RdKafka::ErrorCode code = producer_->fatal_error(reason);
    fatal_reason_ = "fatal producer error: " + RdKafka::err2str(code) + ": " + reason +
                    "; recreate the publisher";
    fatal_.store(true);
  }

  Result FatalResult() {
    std::lock_guard lock(fatal_mu_);
    return Result::Error(ErrorCode::kFatal, Delivery::kNotDelivered, true, fatal_reason_);
  }

  static Result ClosedResult() {
    return Result::Error(ErrorCode::kClosed, Delivery::kNotDelivered, true, "publisher is closed");
  }

  static std::size_t Size(const Message& m) {
    std::size_t n = m.value.size() + (m.key ? m.key->size() : 0);
    for (const Header& h : m.headers) n += h.key.size() + h.value.size();
    return n;
  }

  const LogHook log_;
  const StatisticsHook statistics_;
  const std::chrono::milliseconds write_timeout_;
  const std::chrono::milliseconds close_timeout_;
  long long max_message_bytes_ = 0;

  std::unique_ptr<RdKafka::Producer> producer_;
  std::thread poller_;
  std::atomic<bool> stop_poller_{false};

  mutable std::mutex close_mu_;
  std::atomic<bool> closed_{false};
  std::atomic<int> producing_{0};
  std::atomic<int> in_flight_{0};

  // Calls whose callers are waiting, so that Close can end every wait.
  std::mutex calls_mu_;
  std::unordered_set<Call*> calls_;

  std::atomic<std::uint64_t> published_{0};
  std::array<std::atomic<std::uint64_t>, kErrorCodeCount> failed_by_code_{};
  std::array<std::atomic<std::uint64_t>, 3> by_delivery_{};
  LatencyHistogram latency_;

  std::mutex fatal_mu_;
  std::atomic<bool> fatal_{false};
  std::string fatal_reason_;

  // The last TLS or SASL failure, until a delivery succeeds.
  std::mutex auth_mu_;
  std::atomic<bool> auth_failed_{false};
  std::optional<Result> auth_failure_;
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
