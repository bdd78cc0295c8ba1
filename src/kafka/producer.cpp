#include "producer.h"

#include <string>

#include "internal.h"

namespace dispatch::kafka::internal {

CreatedProducer CreateProducer(const KafkaConfig& config, RdKafka::DeliveryReportCb* delivery,
                               RdKafka::EventCb* events) {
  const auto props = BuildProperties(config);
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string errstr;
  for (const auto& p : props) {
    if (conf->set(p.name, p.value, errstr) != RdKafka::Conf::CONF_OK) {
      if (IsSecretProperty(p.name)) errstr = Redact(errstr, p.value);
      throw ConfigError(p.field,
                        p.field + ": librdkafka rejected property \"" + p.name + "\": " + errstr);
    }
  }
  if (conf->set("dr_cb", delivery, errstr) != RdKafka::Conf::CONF_OK ||
      conf->set("event_cb", events, errstr) != RdKafka::Conf::CONF_OK) {
    throw ConfigError("(callbacks)", "cannot install callbacks: " + errstr);
  }
  CreatedProducer created;
  std::string value;
  if (conf->get("message.max.bytes", value) == RdKafka::Conf::CONF_OK) {
    created.max_message_bytes = std::stoll(value);
  }
  created.idempotent =
      conf->get("enable.idempotence", value) == RdKafka::Conf::CONF_OK && value == "true";
  created.producer.reset(RdKafka::Producer::create(conf.get(), errstr));
  if (!created.producer) {
    // Reached for combinations librdkafka checks only at creation (for
    // example SSL files that do not exist). Scrub every secret value.
    for (const auto& p : props) {
      if (IsSecretProperty(p.name)) errstr = Redact(errstr, p.value);
    }
    throw ConfigError("properties", "librdkafka rejected the configuration: " + errstr);
  }
  return created;
}

}  // namespace dispatch::kafka::internal
