// The librdkafka producer that a KafkaPublisher drives, configured from a
// KafkaConfig.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <memory>

#include "dispatch/kafka/config.h"

namespace dispatch::kafka::internal {

struct CreatedProducer {
  std::unique_ptr<RdKafka::Producer> producer;
  long long max_message_bytes = 0;  // librdkafka's message.max.bytes, as configured
  bool idempotent = false;          // librdkafka's enable.idempotence, as configured
};

// Applies the properties `config` maps to (BuildProperties), installs the two
// callbacks and creates the producer. Throws ConfigError naming the field or
// property that librdkafka rejected, with every secret value scrubbed from
// librdkafka's text.
CreatedProducer CreateProducer(const KafkaConfig& config, RdKafka::DeliveryReportCb* delivery,
                               RdKafka::EventCb* events);

}  // namespace dispatch::kafka::internal
