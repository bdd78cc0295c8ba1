// KafkaPublisher::Impl: the publisher's state, and which file does each of
// its jobs. One class, so that the jobs share the producer and the counters
// without handing pointers around; one file per job, each read top to
// bottom:
//
//   publish_call.cpp     the call: Refuse (closed, fatal, context already
//                        done), Produce each message with its Slot as
//                        librdkafka's opaque, the hand-over loop (Run) and
//                        the deadlines; Publish and PublishBatch
//   report_serving.cpp   serving delivery reports: the waiting caller that
//                        leads serves librdkafka's queue itself (Wait,
//                        Serve), the others sleep until their report or the
//                        lead reaches them; the idle loop of the publisher's
//                        own thread; dr_cb
//   topics.cpp           Prepare: topics looked up before their first message;
//                        a topic refused as unknown looked up again
//   producer_events.cpp  event_cb: logs, statistics, fatal errors and
//                        TLS / SASL failures
//   close.cpp            Close (flush, purge, release) and the counters
//
// Rooms of their own beside these: producer.cpp (the librdkafka
// configuration), waiters.h (Call, Slot, the list of waiting calls and the
// lead), sticky_error.h (the fatal and authentication states), metrics.cpp
// (counters, histogram), log_routing.cpp (log lines and statistics to the
// user's hooks), result_mapping.cpp (librdkafka errors to Results).
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "metrics.h"
#include "sticky_error.h"
#include "waiters.h"

namespace dispatch::kafka {

class KafkaPublisher::Impl : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
 public:
  using Clock = Context::Clock;

  // kafka_publisher.cpp: creates the producer and starts the idle loop.
  explicit Impl(const KafkaConfig& config);
  ~Impl() override;

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // publish_call.cpp
  Result Publish(const Context& ctx, const Message& message);
  std::vector<Result> PublishBatch(const Context& ctx, std::span<const Message> messages);

  bool OrdersKeysInBatch() const { return orders_keys_; }

  // topics.cpp
  std::vector<Result> Prepare(const Context& ctx, std::span<const std::string> topics);

  // close.cpp
  Result Close();
  int InFlight() const { return in_flight_.load(); }
  PublisherMetrics Metrics() const;

  // report_serving.cpp and producer_events.cpp: librdkafka's callbacks.
  void dr_cb(RdKafka::Message& m) override;
  void event_cb(RdKafka::Event& event) override;

 private:
  // publish_call.cpp
  std::optional<Result> Refuse(const Context& ctx) const;
  std::optional<Result> Produce(const Message& m, internal::Slot& slot, const Context& ctx);
  std::optional<Clock::time_point> WriteDeadline(Clock::time_point from) const;
  static std::optional<Result> NotHandedOver(const Context& ctx, const char* when,
                                             Clock::duration reserve = Clock::duration::zero());
  void Run(internal::Call& call, const Context& ctx);

  // report_serving.cpp
  void WakeCaller(internal::Call& call);
  void WakeServer();
  bool Wait(internal::Call& call, const std::stop_token& stop,
            std::optional<Clock::time_point> deadline);
  bool Serve(internal::Call& call, const std::stop_token& stop,
             std::optional<Clock::time_point> deadline);
  void ServeWhileNoCallerDoes();

  // topics.cpp
  Result PrepareOne(const Context& ctx, const std::string& topic);
  bool FirstToName(const std::string& topic);
  void LookUp(const Context& ctx, std::optional<Clock::time_point> deadline,
              const std::string& topic);
  std::optional<Result> ProduceIfFoundAgain(const Message& m, internal::Slot& slot,
                                            const Context& ctx, Result unknown);

  // producer_events.cpp
  void EndWaitsOnAuthenticationFailure(RdKafka::ErrorCode err, const std::string& text);
  bool ProducerIsFatal() const;
  void RecordFatal();
  Result FatalResult() const { return *fatal_.Get(); }

  const LogHook log_;
  const StatisticsHook statistics_;
  const std::chrono::milliseconds write_timeout_;
  const std::chrono::milliseconds close_timeout_;
  const std::string scram_caveat_;  // see internal::ScramCaveat
  long long max_message_bytes_ = 0;
  // The idempotent producer keeps each partition's messages in order (see
  // KafkaPublisher::OrdersKeysInBatch); set once, at construction.
  bool orders_keys_ = false;

  std::unique_ptr<RdKafka::Producer> producer_;
  rd_kafka_t* rk_ = nullptr;  // producer_'s C handle, for produce
  std::mutex main_queue_mu_;
  rd_kafka_queue_t* main_queue_ = nullptr;  // the queue that poll() serves, to wake a poll()
  // librdkafka before 2.10.1 holds the first message to an unseen topic for
  // its metadata timer: the call looks the topic up itself (topics.cpp).
  const bool look_up_new_topics_;
  std::mutex topics_mu_;
  std::map<std::string, std::unique_ptr<RdKafka::Topic>> topics_;  // from Prepare, until Close
  std::unordered_set<std::string> seen_topics_;  // under topics_mu_; for LookUpIfNew
  std::atomic<std::uint64_t> topic_lookups_{0};
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

namespace internal {

inline Result ClosedResult() {
  return Result::Error(ErrorCode::kClosed, Delivery::kNotDelivered, true, "publisher is closed");
}

}  // namespace internal
}  // namespace dispatch::kafka
