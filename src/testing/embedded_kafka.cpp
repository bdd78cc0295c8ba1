#include "dispatch/testing/embedded_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "rdkafka_util.h"

namespace dispatch::testing {
namespace {

void Quiet(const rd_kafka_t*, int, const char*, const char*) {}

rd_kafka_conf_t* QuietConf() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, Quiet);
  return conf;
}

void Check(rd_kafka_resp_err_t err, const std::string& what) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("embedded kafka: " + what + ": " + rd_kafka_err2str(err));
  }
}

using Handle = internal::RdKafkaPtr;

// The first librdkafka whose mock cluster is known to offer Metadata v4 or
// later (see Impl).
constexpr int kMockWithMetadataV4 = 0x020e0200;  // 2.14.2

Handle NewHandle(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("embedded kafka: cannot create a client: ") + errstr);
  }
  return Handle(rk);
}

// librdkafka's rd_kafka_header_t (rdkafka_header.h), the same from 0.11.4
// through 2.14.2: the name's length sits in front of the name.
struct RdKafkaHeader {
  size_t ser_size;
  size_t value_size;
  size_t name_size;
  char* value;
  char name[1];
};

// A header's key, all its bytes. A Kafka header key may hold NUL bytes, but
// rd_kafka_header_get_all gives the name as a C string without its length,
// so the length is read from librdkafka's header struct, after checking
// that the struct is where and what the public API says (the value pointer
// and size, the NUL after the name); a librdkafka with another layout throws
// instead of cutting keys silently.
std::string HeaderKey(const char* name, const void* value, size_t value_size) {
  const auto* h = reinterpret_cast<const RdKafkaHeader*>(name - offsetof(RdKafkaHeader, name));
  if (h->value != value || h->value_size != value_size || h->name_size < std::strlen(name) ||
      name[h->name_size] != '\0' || (value != nullptr && h->value != name + h->name_size + 1)) {
    throw std::runtime_error(
        "embedded kafka: this librdkafka's header layout is not the one expected; cannot read "
        "header keys by length");
  }
  return std::string(name, h->name_size);
}

}  // namespace

class EmbeddedKafkaCluster::Impl {
 public:
  explicit Impl(int brokers) : rk_(NewHandle(RD_KAFKA_PRODUCER, QuietConf())) {
    if (brokers < 1) throw std::invalid_argument("embedded kafka: brokers must be 1 or more");
    mock_ = rd_kafka_mock_cluster_new(rk_.get(), brokers);
    if (mock_ == nullptr) throw std::runtime_error("embedded kafka: cannot start the mock cluster");
    broker_count_ = brokers;
    // Metadata v4 carries the client's allow.auto.create.topics, which the
    // mock obeys. Older mocks offer Metadata up to v2 only, where a broker
    // may create any topic asked for, so a typo would create a topic; their
    // handler reads and answers v4 correctly, so offer it. (2.14.2 offers
    // v12; v4 is enough for any version before it.)
    if (rd_kafka_version() < kMockWithMetadataV4) {
      Check(rd_kafka_mock_set_apiversion(mock_, static_cast<int16_t>(ApiKey::kMetadata), 0, 4),
            "offer Metadata v4");
    }
  }
  ~Impl() { rd_kafka_mock_cluster_destroy(mock_); }

  rd_kafka_mock_cluster_t* mock() const { return mock_; }
  int broker_count() const { return broker_count_; }

 private:
  Handle rk_;  // destroyed after the cluster (declared first)
  rd_kafka_mock_cluster_t* mock_ = nullptr;
  int broker_count_ = 0;
};

EmbeddedKafkaCluster::EmbeddedKafkaCluster(int brokers) : impl_(std::make_unique<Impl>(brokers)) {}
EmbeddedKafkaCluster::~EmbeddedKafkaCluster() = default;

std::string EmbeddedKafkaCluster::Bootstrap() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->mock());
}

std::vector<std::string> EmbeddedKafkaCluster::Brokers() const {
  return internal::SplitList(Bootstrap());
}

void EmbeddedKafkaCluster::CreateTopic(const std::string& topic, int partitions, int replication) {
  Check(rd_kafka_mock_topic_create(impl_->mock(), topic.c_str(), partitions, replication),
        "create topic \"" + topic + "\"");
}

void EmbeddedKafkaCluster::PushRequestErrors(ApiKey api, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->mock(), static_cast<int16_t>(api), codes.size(),
                                          codes.data());
}

void EmbeddedKafkaCluster::PushBrokerRequestErrors(int broker_id, ApiKey api,
                                                   const std::vector<int>& errors,
                                                   std::chrono::milliseconds rtt) {
  // The mock API is variadic in (error, rtt) pairs; push them one at a time.
  for (int e : errors) {
    Check(rd_kafka_mock_broker_push_request_error_rtts(
              impl_->mock(), broker_id, static_cast<int16_t>(api), 1,
              static_cast<rd_kafka_resp_err_t>(e), static_cast<int>(rtt.count())),
          "push errors to broker " + std::to_string(broker_id));
  }
}

void EmbeddedKafkaCluster::ClearRequestErrors(ApiKey api) {
  rd_kafka_mock_clear_request_errors(impl_->mock(), static_cast<int16_t>(api));
}

void EmbeddedKafkaCluster::SetTopicError(const std::string& topic, int error) {
  rd_kafka_mock_topic_set_error(impl_->mock(), topic.c_str(),
                                static_cast<rd_kafka_resp_err_t>(error));
}

void EmbeddedKafkaCluster::BrokerDown(int broker_id) {
  Check(rd_kafka_mock_broker_set_down(impl_->mock(), broker_id),
        "set broker " + std::to_string(broker_id) + " down");
}

void EmbeddedKafkaCluster::BrokerUp(int broker_id) {
  Check(rd_kafka_mock_broker_set_up(impl_->mock(), broker_id),
        "set broker " + std::to_string(broker_id) + " up");
}

void EmbeddedKafkaCluster::SetRtt(int broker_id, std::chrono::milliseconds rtt) {
  Check(rd_kafka_mock_broker_set_rtt(impl_->mock(), broker_id, static_cast<int>(rtt.count())),
        "set rtt of broker " + std::to_string(broker_id));
}

void EmbeddedKafkaCluster::SetPartitionLeader(const std::string& topic, int partition,
                                              int broker_id) {
  Check(rd_kafka_mock_partition_set_leader(impl_->mock(), topic.c_str(), partition, broker_id),
        "set leader of " + topic + "[" + std::to_string(partition) + "]");
}

std::vector<Record> EmbeddedKafkaCluster::ReadTopic(const std::string& topic, std::size_t count,
                                                    std::chrono::milliseconds timeout) const {
  return testing::ReadTopic(Bootstrap(), topic, count, timeout);
}

std::vector<Record> EmbeddedKafkaCluster::ReadWholeTopic(const std::string& topic,
                                                         std::chrono::milliseconds timeout) const {
  return testing::ReadWholeTopic(Bootstrap(), topic, timeout);
}

namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point end) {
  return static_cast<int>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count()));
}

// A consumer that reads by assignment, with no group offsets.
Handle NewReader(const std::string& bootstrap) {
  rd_kafka_conf_t* conf = QuietConf();
  char errstr[512];
  for (const auto& [k, v] : {std::pair<const char*, std::string>{"bootstrap.servers", bootstrap},
                             {"group.id", "dispatch-testing-reader"},
                             {"enable.auto.commit", "false"},
                             {"enable.partition.eof", "false"},
                             // Should an offset ever be out of range, start
                             // over (records read twice are dropped below)
                             // rather than skip to the end and miss some.
                             {"auto.offset.reset", "earliest"}}) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("embedded kafka: reader config: ") + errstr);
    }
  }
  return NewHandle(RD_KAFKA_CONSUMER, conf);
}

// The topic's partition count, 0 if it is not known by `end` (the topic may
// still be propagating).
int PartitionCount(const Handle& rk, const std::string& topic, Clock::time_point end) {
  int partitions = 0;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  while (partitions == 0 && Clock::now() < end) {
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk.get(), 0, rkt, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        partitions = md->topics[0].partition_cnt;
      }
      rd_kafka_metadata_destroy(md);
    }
  }
  rd_kafka_topic_destroy(rkt);
  return partitions;
}

// Where each of the topic's partitions ends now (its high watermark).
std::vector<std::int64_t> Ends(const Handle& rk, const std::string& topic, int partitions,
                               Clock::time_point end) {
  std::vector<std::int64_t> high(static_cast<std::size_t>(partitions), 0);
  for (int p = 0; p < partitions; ++p) {
    std::int64_t low = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    while (Clock::now() < end) {
      err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high[p],
                                             std::min(MsLeft(end), 5000));
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // then ask again
    }
    Check(err, "end offset of " + topic + " [" + std::to_string(p) + "]");
  }
  return high;
}

// Reads `topic` from offset from[p] of each partition p (the beginning of a
// partition that `from` does not cover) until `count` records arrived or,
// without a count, until every partition's high watermark at the start was
// reached.
std::vector<Record> Read(const std::string& bootstrap, const std::string& topic,
                         const std::vector<std::int64_t>& from, std::optional<std::size_t> count,
                         std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  Handle rk = NewReader(bootstrap);
  const int partitions = PartitionCount(rk, topic, end);
  std::vector<Record> out;
  if (partitions == 0) return out;
  // Without a count: where each partition ends now.
  const std::vector<std::int64_t> high =
      count ? std::vector<std::int64_t>(static_cast<std::size_t>(partitions), 0)
            : Ends(rk, topic, partitions, end);

  // The next offset wanted from each partition: a record below it was read
  // already (the reader started over) and is dropped.
  std::vector<std::int64_t> next(static_cast<std::size_t>(partitions), 0);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    const bool given = static_cast<std::size_t>(p) < from.size();
    if (given) next[p] = from[p];
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset =
        given ? from[p] : RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);

  const auto done = [&] {
    if (count) return out.size() >= *count;
    for (int p = 0; p < partitions; ++p) {
      if (next[p] < high[p]) return false;
    }
    return true;
  };
  while (!done() && Clock::now() < end) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition >= 0 && m->partition < partitions &&
        m->offset >= next[m->partition]) {
      next[m->partition] = m->offset + 1;
      Record r;
      r.partition = m->partition;
      r.offset = m->offset;
      if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) r.value.emplace(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          r.headers.push_back(
              Header{HeaderKey(name, value, size),
                     value ? std::string(static_cast<const char*>(value), size) : ""});
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk.get());
  if (!count && !done()) {
    std::string short_of_end;
    for (int p = 0; p < partitions; ++p) {
      if (next[p] < high[p]) {
        short_of_end += " [" + std::to_string(p) + "] " + std::to_string(next[p]) + " of " +
                        std::to_string(high[p]);
      }
    }
    throw std::runtime_error("embedded kafka: reading all of " + topic + " took longer than " +
                             std::to_string(timeout.count()) + " ms; records read:" + short_of_end);
  }
  std::sort(out.begin(), out.end(), [](const Record& a, const Record& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  return out;
}

}  // namespace

std::vector<Record> ReadTopic(const std::string& bootstrap, const std::string& topic,
                              std::size_t count, std::chrono::milliseconds timeout) {
  return Read(bootstrap, topic, {}, count, timeout);
}

std::vector<Record> ReadWholeTopic(const std::string& bootstrap, const std::string& topic,
                                   std::chrono::milliseconds timeout) {
  return Read(bootstrap, topic, {}, std::nullopt, timeout);
}

std::string CreateTopics(const std::string& bootstrap, const std::vector<TopicSpec>& topics,
                         std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  char errstr[512];
  rd_kafka_conf_t* conf = QuietConf();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return errstr;
  }
  Handle rk;
  try {
    rk = NewHandle(RD_KAFKA_PRODUCER, conf);
  } catch (const std::runtime_error& e) {
    return e.what();
  }

  std::vector<rd_kafka_NewTopic_t*> specs;
  const auto destroy_specs = [&] { rd_kafka_NewTopic_destroy_array(specs.data(), specs.size()); };
  for (const TopicSpec& t : topics) {
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, -1, errstr, sizeof errstr);
    if (nt == nullptr) {
      destroy_specs();
      return t.name + ": " + errstr;
    }
    specs.push_back(nt);
    for (const auto& [name, value] : t.configs) {
      if (rd_kafka_NewTopic_set_config(nt, name.c_str(), value.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        destroy_specs();
        return t.name + ": cannot set " + name;
      }
    }
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), specs.data(), specs.size(), nullptr, queue);
  destroy_specs();
  std::string problem;
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, MsLeft(end));
  if (ev == nullptr) {
    problem = "no answer to CreateTopics within " + std::to_string(timeout.count()) + " ms";
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    problem = std::string("CreateTopics: ") + rd_kafka_event_error_string(ev);
  } else if (const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev)) {
    size_t n = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; ++i) {
      const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        problem = std::string(rd_kafka_topic_result_name(results[i])) + ": " + rd_kafka_err2str(e);
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  if (!problem.empty()) return problem;

  // A topic just created may take a moment to appear in every broker's
  // metadata, and its partitions to get a leader; a producer reports it
  // unknown, or waits for the leader, until then.
  const auto led = [](const rd_kafka_metadata_topic_t& t) {
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt == 0) return false;
    for (int p = 0; p < t.partition_cnt; ++p) {
      if (t.partitions[p].leader < 0) return false;
    }
    return true;
  };
  while (Clock::now() < end) {
    std::size_t listed = 0;
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk.get(), 1, nullptr, &md, std::min(MsLeft(end), 5000)) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < md->topic_cnt; ++i) {
        for (const TopicSpec& t : topics) {
          if (t.name == md->topics[i].topic && led(md->topics[i])) ++listed;
        }
      }
      rd_kafka_metadata_destroy(md);
    }
    if (listed == topics.size()) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return "the topics are not in the cluster's metadata with a leader for every partition " +
         std::to_string(timeout.count()) + " ms after CreateTopics";
}

std::vector<std::int64_t> EndOffsets(const std::string& bootstrap, const std::string& topic,
                                     std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  Handle rk = NewReader(bootstrap);
  const int partitions = PartitionCount(rk, topic, end);
  if (partitions == 0) {
    throw std::runtime_error("embedded kafka: topic " + topic + " has no partitions after " +
                             std::to_string(timeout.count()) + " ms");
  }
  return Ends(rk, topic, partitions, end);
}

std::vector<Record> ReadTopicSince(const std::string& bootstrap, const std::string& topic,
                                   const std::vector<std::int64_t>& from,
                                   std::chrono::milliseconds timeout) {
  return Read(bootstrap, topic, from, std::nullopt, timeout);
}

}  // namespace dispatch::testing
