// The producer's events other than delivery reports: log lines and
// statistics to the user's hooks, fatal errors (kept once, every later call
// fails fast with them) and TLS / SASL failures (they end the waits at once
// instead of at the timeout).
#include "internal.h"
#include "log_routing.h"
#include "publisher_impl.h"

namespace dispatch::kafka {

void KafkaPublisher::Impl::event_cb(RdKafka::Event& event) {
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
void KafkaPublisher::Impl::EndWaitsOnAuthenticationFailure(RdKafka::ErrorCode err,
                                                           const std::string& text) {
  Result r =
      Result::Error(ErrorCode::kAuthenticationFailed, Delivery::kUnknown, true,
                    std::string(ToString(ErrorCode::kAuthenticationFailed)) + ": " + text +
                        " (librdkafka " + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) +
                        "); the message stays queued and may still be written" +
                        (err == RdKafka::ERR__AUTHENTICATION ? scram_caveat_ : ""));
  auth_failure_.Set(r);
  waiting_.FinishAll(r, /*final=*/false, [this] { WakeServer(); });
}

bool KafkaPublisher::Impl::ProducerIsFatal() const {
  if (fatal_.IsSet()) return true;
  std::string ignored;
  return producer_->fatal_error(ignored) != RdKafka::ERR_NO_ERROR;
}

// Keeps librdkafka's reason for the first fatal error; every later call
// fails fast with it.
void KafkaPublisher::Impl::RecordFatal() {
  if (fatal_.IsSet()) return;
  fatal_.SetOnce([this] {
    std::string reason;
    const RdKafka::ErrorCode code = producer_->fatal_error(reason);
    return Result::Error(ErrorCode::kFatal, Delivery::kNotDelivered, true,
                         "fatal producer error: " + RdKafka::err2str(code) + ": " + reason +
                             "; recreate the publisher");
  });
}

}  // namespace dispatch::kafka
