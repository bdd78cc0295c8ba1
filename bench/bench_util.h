// Helpers shared by the benchmarks: broker selection (embedded cluster or
// --brokers), the raw-librdkafka baseline's configuration, statistics.
//
// The baseline producer gets the librdkafka properties that KafkaPublisher
// applies (EffectiveProperties), so that a ratio measures the wrapper, not a
// different setting, and the baseline cannot drift from the library.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"
#include "testing/rdkafka_util.h"

namespace bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The publisher under test, with the library's defaults.
inline dispatch::kafka::KafkaConfig OurConfig(const std::string& brokers) {
  return dispatch::kafka::DefaultKafkaConfig(dispatch::testing::internal::SplitList(brokers));
}

// The baseline's properties: those KafkaPublisher applies with the library's
// defaults. A bench that deliberately sets the baseline differently says so
// beside the difference.
inline std::unique_ptr<RdKafka::Conf> RawConf(const std::string& brokers) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  for (const auto& [name, value] : dispatch::kafka::EffectiveProperties(OurConfig(brokers))) {
    if (value == "[redacted]") {
      throw std::runtime_error("baseline: " + name + " is a secret that EffectiveProperties hides");
    }
    if (conf->set(name, value, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
  }
  return conf;
}

// Creates `topic` on a real cluster unless metadata already lists it (the
// embedded cluster creates topics itself). A failure is reported and the run
// goes on: the topic may still be auto-created, and a topic that cannot be
// written shows as failures in the benchmark's own output.
inline void EnsureTopic(const std::string& brokers, const std::string& topic, int partitions) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), errstr, sizeof errstr);
  const dispatch::testing::internal::RdKafkaPtr client(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr));
  if (client == nullptr) throw std::runtime_error(errstr);
  rd_kafka_t* rk = client.get();
  const rd_kafka_metadata_t* md = nullptr;
  bool exists = false;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < md->topic_cnt; ++i) {
      exists = exists || (topic == md->topics[i].topic && md->topics[i].err == 0);
    }
    rd_kafka_metadata_destroy(md);
  }
  std::string problem;
  if (!exists) {
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, errstr, sizeof errstr);
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 15000);
    if (ev == nullptr) {
      problem = "no answer to CreateTopics within 15 s";
    } else if (const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev)) {
      size_t n = 0;
      const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(res, &n);
      for (size_t i = 0; i < n; ++i) {
        const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(topics[i]);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          problem = rd_kafka_err2str(e);
        }
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
  }
  if (!problem.empty()) {
    std::fprintf(stderr, "warning: cannot create topic %s (%s); going on\n", topic.c_str(),
                 problem.c_str());
  }
}

// The broker a benchmark runs on: the embedded cluster unless --brokers was
// given.
class Broker {
 public:
  Broker(std::string brokers, const std::string& topic, int partitions)
      : bootstrap_(std::move(brokers)) {
    if (bootstrap_.empty()) {
      embedded_ = std::make_unique<dispatch::testing::EmbeddedKafkaCluster>(1);
      embedded_->CreateTopic(topic, partitions, 1);
      bootstrap_ = embedded_->Bootstrap();
    } else {
      EnsureTopic(bootstrap_, topic, partitions);
    }
  }
  const std::string& bootstrap() const { return bootstrap_; }
  const char* kind() const { return embedded_ ? "embedded" : "real"; }

 private:
  std::unique_ptr<dispatch::testing::EmbeddedKafkaCluster> embedded_;
  std::string bootstrap_;
};

// Raw librdkafka with the publisher's properties, as a competent user
// writes produce-and-wait by hand: produce one message, then poll until its
// report arrives (B1 and the first-publish bench). Waits 10 s at most.
class RawProducer : public RdKafka::DeliveryReportCb {
 public:
  explicit RawProducer(const std::string& brokers) {
    auto conf = RawConf(brokers);
    std::string err;
    conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(this), err);
    producer_.reset(RdKafka::Producer::create(conf.get(), err));
    if (!producer_) throw std::runtime_error(err);
  }
  ~RawProducer() override { producer_->flush(5000); }
  RawProducer(const RawProducer&) = delete;
  RawProducer& operator=(const RawProducer&) = delete;

  // True when the message was acknowledged.
  bool ProduceAndWait(const std::string& topic, const std::string& key, const std::string& value) {
    done_ = false;
    if (producer_->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                           const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0,
                           nullptr) != RdKafka::ERR_NO_ERROR) {
      return false;
    }
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (!done_ && Clock::now() < until) producer_->poll(100);
    return done_ && ok_;
  }

  void dr_cb(RdKafka::Message& m) override {
    ok_ = m.err() == RdKafka::ERR_NO_ERROR;
    done_ = true;
  }

 private:
  std::unique_ptr<RdKafka::Producer> producer_;
  bool done_ = false;
  bool ok_ = false;
};

// Sorted-sample percentile, q in [0, 1].
inline double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Resident set size of this process, from /proc/self/status, in MiB.
inline double RssMib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

}  // namespace bench
