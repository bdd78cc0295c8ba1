#include "relay/relay.h"

#include <cstdio>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

#include "dispatch/kafka/kafka_publisher.h"
#include "relay/http_endpoint.h"
#include "relay/publisher_tally.h"
#include "relay/retention.h"
#include "relay/store_factory.h"
#include "relay/store_health.h"

namespace dispatch::relay {
namespace {

// librdkafka's warnings and errors go to stderr; its chatter does not. The
// lines never hold a secret (the library redacts them).
void LogToStderr(const kafka::LogEntry& entry) {
  if (entry.level > kafka::LogLevel::kWarning) return;
  std::fprintf(stderr, "dispatch-relay: kafka %.*s: %.*s\n",
               static_cast<int>(entry.facility.size()), entry.facility.data(),
               static_cast<int>(entry.message.size()), entry.message.data());
}

}  // namespace

struct Relay::Impl {
  explicit Impl(RelayConfig c) : config(std::move(c)) {}

  // Every publisher the dispatcher's factory makes passes through the
  // tally, so that its counters add up across replaced (fatal) publishers.
  std::unique_ptr<Publisher> TrackPublisher(std::unique_ptr<kafka::KafkaPublisher> publisher) {
    return tally.Wrap(std::move(publisher));
  }

  RelayConfig config;
  kafka::KafkaConfig kafka_config;
  std::unique_ptr<OutboxStore> store;
  std::unique_ptr<HealthTrackingStore> tracked;
  std::unique_ptr<Dispatcher> dispatcher;
  std::unique_ptr<RetentionJob> retention;
  std::stop_source stop;
  std::thread runner;
  std::mutex stop_mutex;
  std::optional<DispatcherMetrics> totals;  // set by the first Stop
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  PublisherTally tally;
  std::unique_ptr<HttpEndpoint> http;  // started after the dispatcher's thread, stopped before it
};

Relay::Relay(RelayConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {
  Impl& i = *impl_;
  i.kafka_config = i.config.Kafka();
  i.kafka_config.log = LogToStderr;
  // Made first, so that librdkafka's refusal (an unknown property, a
  // missing certificate) ends the start before any connection, and not
  // every round.
  auto first = std::make_shared<std::unique_ptr<kafka::KafkaPublisher>>(
      std::make_unique<kafka::KafkaPublisher>(i.kafka_config));
  i.store = MakeStore(i.config.store);
  i.tracked = std::make_unique<HealthTrackingStore>(*i.store);
  i.dispatcher = std::make_unique<Dispatcher>(
      *i.tracked,
      [&i, first]() -> std::unique_ptr<Publisher> {
        if (*first) return i.TrackPublisher(std::move(*first));
        return i.TrackPublisher(std::make_unique<kafka::KafkaPublisher>(i.kafka_config));
      },
      i.config.dispatcher);
  if (i.config.retention.enabled) {
    i.retention = std::make_unique<RetentionJob>(MakeAdmin(i.config.store), i.config.retention);
  }
}

Relay::~Relay() { Stop(); }

void Relay::Start() {
  Impl& i = *impl_;
  i.started = std::chrono::steady_clock::now();
  i.runner = std::thread([&i] { i.dispatcher->Run(i.stop.get_token()); });
  if (i.retention) i.retention->Start();
  Relay* self = this;
  i.http = std::make_unique<HttpEndpoint>(HttpOptions{i.config.http.listen, i.config.http.max_lag},
                                          [self] { return self->Snapshot(); });
}

DispatcherMetrics Relay::Stop() {
  Impl& i = *impl_;
  std::lock_guard lock(i.stop_mutex);
  if (i.totals) return *i.totals;
  i.stop.request_stop();
  if (i.runner.joinable()) i.runner.join();
  if (i.retention) i.retention->Stop();
  i.http.reset();
  i.totals = i.dispatcher->Metrics();
  // Closes the publisher within kafka.close_timeout.
  i.dispatcher.reset();
  return *i.totals;
}

RelaySnapshot Relay::Snapshot() const {
  const Impl& i = *impl_;
  RelaySnapshot s;
  // The HTTP endpoint stops before the dispatcher goes (Stop), so it never
  // reads a destroyed one; a call after Stop reads the totals.
  s.dispatcher = i.dispatcher ? i.dispatcher->Metrics() : i.totals.value_or(DispatcherMetrics{});
  s.publisher = i.tally.Total();
  s.publisher_fatal = i.tally.Fatal();
  if (i.retention) s.retention = i.retention->Metrics();
  s.retention_enabled = i.config.retention.enabled;
  const HealthTrackingStore::Health health = i.tracked->Get();
  s.store_ok = health.ok;
  s.store_error = health.error;
  s.started = i.started;
  return s;
}

}  // namespace dispatch::relay
