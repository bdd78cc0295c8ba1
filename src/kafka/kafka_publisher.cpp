// KafkaPublisher over librdkafka's C++ API: the façade, and the Impl's
// construction. Each job of the Impl lives in a file of its own; the list,
// and where each function is, opens publisher_impl.h:
//
//   publish_call.cpp     one Publish or PublishBatch: refuse, produce,
//                        hand-over, the deadlines
//   report_serving.cpp   delivery reports: the leading caller, the idle loop,
//                        dr_cb
//   topics.cpp           Prepare
//   producer_events.cpp  fatal errors, TLS / SASL failures, logs, statistics
//   close.cpp            Close and the counters
#include "dispatch/kafka/kafka_publisher.h"

#include "internal.h"
#include "producer.h"
#include "publisher_impl.h"

namespace dispatch::kafka {
namespace {

// librdkafka 2.10.1 (rd_kafka_version() 0x020a01ff): the first librdkafka whose
// producer requests an unseen topic's metadata at once rather than on its
// timer.
constexpr int kVersionWithoutMetadataTimer = 0x020a0100;

}  // namespace

KafkaPublisher::Impl::Impl(const KafkaConfig& config)
    : log_(config.log),
      statistics_(config.statistics),
      write_timeout_(config.write_timeout),
      close_timeout_(config.close_timeout),
      scram_caveat_(internal::ScramCaveat(config, rd_kafka_version(), rd_kafka_version_str())),
      look_up_new_topics_(rd_kafka_version() < kVersionWithoutMetadataTimer) {
  auto created = internal::CreateProducer(config, this, this);
  producer_ = std::move(created.producer);
  rk_ = producer_->c_ptr();
  main_queue_ = rd_kafka_queue_get_main(rk_);
  max_message_bytes_ = created.max_message_bytes;
  orders_keys_ = created.idempotent;
  poller_ = std::thread([this] { ServeWhileNoCallerDoes(); });
}

KafkaPublisher::Impl::~Impl() { (void)Close(); }

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

bool KafkaPublisher::OrdersKeysInBatch() const { return impl_->OrdersKeysInBatch(); }

Result KafkaPublisher::Close() { return impl_->Close(); }

int KafkaPublisher::InFlight() const { return impl_->InFlight(); }

PublisherMetrics KafkaPublisher::Metrics() const { return impl_->Metrics(); }

}  // namespace dispatch::kafka
