#include "real_kafka.h"

#include <librdkafka/rdkafka.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "testing/rdkafka_util.h"

namespace dispatch::suite {
namespace {

using namespace std::chrono_literals;
using dispatch::testing::Record;
using dispatch::testing::internal::RdKafkaPtr;
using dispatch::testing::internal::SplitList;

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// An admin-capable client (a producer handle serves the admin API too).
RdKafkaPtr NewClient(const std::string& bootstrap) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err) !=
      RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(err);
  }
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  return RdKafkaPtr(rk);
}

// kcat -J writes a key's, a value's and a header's bytes as they are,
// escaping only quotes, backslashes and control characters, so a line need
// not be UTF-8, which a JSON parser insists on. Read as Latin-1 (each byte
// the code point of its value) the line is UTF-8; Utf8ToBytes undoes it.
std::string BytesToUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out += c;
    } else {
      out += static_cast<char>(0xc0 | (b >> 6));
      out += static_cast<char>(0x80 | (b & 0x3f));
    }
  }
  return out;
}

// The bytes of a parsed string (see BytesToUtf8). A character above U+00FF
// (a \u escape that kcat does not write) is not a byte: an error.
std::string Utf8ToBytes(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out += text[i];
    } else if ((b == 0xc2 || b == 0xc3) && i + 1 < text.size()) {
      out += static_cast<char>(((b & 0x03) << 6) | (static_cast<unsigned char>(text[++i]) & 0x3f));
    } else {
      throw std::runtime_error("a character above U+00FF is not a byte");
    }
  }
  return out;
}

// nullopt for JSON null.
std::optional<std::string> BytesOf(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  return Utf8ToBytes(value.get<std::string>());
}

// One of kcat's one-line JSON envelopes. A null key or value stays null
// (nullopt), apart from an empty one; a null header value reads as empty;
// "headers" is a flat list: name, value, name, value, ...
Record ParseKcatLine(std::string_view line) {
  try {
    const nlohmann::json j = nlohmann::json::parse(BytesToUtf8(line));
    Record rec;
    rec.partition = j.value("partition", std::int32_t{-1});
    rec.offset = j.value("offset", std::int64_t{-1});
    if (const auto key = j.find("key"); key != j.end()) rec.key = BytesOf(*key);
    if (const auto payload = j.find("payload"); payload != j.end()) rec.value = BytesOf(*payload);
    if (const auto headers = j.find("headers"); headers != j.end() && !headers->is_null()) {
      if (headers->size() % 2 != 0) throw std::runtime_error("a header without a value");
      for (std::size_t h = 0; h < headers->size(); h += 2) {
        rec.headers.push_back({*BytesOf(headers->at(h)), BytesOf(headers->at(h + 1)).value_or("")});
      }
    }
    return rec;
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("kcat JSON: ") + e.what() + " in " +
                             std::string(line.substr(0, 200)));
  }
}

}  // namespace

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.out.append(buf, n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

namespace {

// Sends one admin request through `send` (given the options, which carry a
// 30 s timeout, and the reply queue) and waits for its reply. Returns the
// failure: empty when the request and every result in it succeeded, which
// `result_errors` reports from the reply event.
std::string AdminRequest(
    rd_kafka_t* rk, rd_kafka_admin_op_t op,
    const std::function<void(const rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& send,
    const std::function<std::string(rd_kafka_event_t*)>& result_errors) {
  char err[512];
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, op);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS) {
    rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  }
  rd_kafka_AdminOptions_set_request_timeout(options, 30000, err, sizeof err);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  send(options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 40000);
  std::string failure;
  if (ev == nullptr) {
    failure = "no answer";
  } else if (rd_kafka_event_error(ev)) {
    failure = rd_kafka_event_error_string(ev);
  } else {
    failure = result_errors(ev);
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  return failure;
}

}  // namespace

std::optional<RealKafka> RealKafka::FromEnvironment(std::string* why) {
  RealKafka k;
  if (const char* brokers = std::getenv("DISPATCH_KAFKA_BROKERS"); brokers && *brokers) {
    k.bootstrap_ = brokers;
    for (std::size_t i = 0; i < k.Brokers().size(); ++i) k.nodes_.push_back(static_cast<int>(i + 1));
    return k;
  }
  const char* dir = std::getenv("DISPATCH_KAFKA_CLUSTER_DIR");
  if (dir == nullptr || *dir == '\0') {
    *why = "neither DISPATCH_KAFKA_BROKERS nor DISPATCH_KAFKA_CLUSTER_DIR is set: run through "
           "ctest (its fixture starts Kafka) or point DISPATCH_KAFKA_BROKERS at a cluster";
    return std::nullopt;
  }
  std::ifstream in(std::string(dir) + "/cluster.env");
  if (!in) {
    *why = std::string("no cluster.env in ") + dir + ": the Kafka fixture did not start";
    return std::nullopt;
  }
  k.cluster_dir_ = dir;
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = line.substr(0, eq);
    const std::string value = line.substr(eq + 1);
    if (name == "bootstrap") k.bootstrap_ = value;
    if (name == "nodes") {
      for (const std::string& id : SplitList(value)) k.nodes_.push_back(std::stoi(id));
    }
  }
  return k;
}

void RealKafka::AllowWrite(const std::string& principal, const std::string& prefix) const {
  RdKafkaPtr rk = NewClient(bootstrap_);
  char err[512] = "";
  rd_kafka_AclBinding_t* acl = rd_kafka_AclBinding_new(
      RD_KAFKA_RESOURCE_TOPIC, prefix.c_str(), RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
      principal.c_str(), "*", RD_KAFKA_ACL_OPERATION_WRITE, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
      err, sizeof err);
  if (acl == nullptr) throw std::runtime_error(std::string("ACL for ") + principal + ": " + err);
  const std::string failure = AdminRequest(
      rk.get(), RD_KAFKA_ADMIN_OP_CREATEACLS,
      [&](const rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_CreateAcls(rk.get(), &acl, 1, options, queue);
      },
      [](rd_kafka_event_t* ev) {
        std::string errors;
        size_t n = 0;
        const rd_kafka_acl_result_t** results =
            rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &n);
        for (size_t i = 0; i < n; ++i) {
          if (const rd_kafka_error_t* e = rd_kafka_acl_result_error(results[i])) {
            errors = rd_kafka_error_string(e);
          }
        }
        return errors;
      });
  rd_kafka_AclBinding_destroy(acl);
  if (!failure.empty()) {
    throw std::runtime_error("allow " + principal + " to write " + prefix + "*: " + failure);
  }
}

std::vector<std::string> RealKafka::Brokers() const { return SplitList(bootstrap_); }

std::string RealKafka::UniqueTopic(const std::string& stem) {
  static std::atomic<int> counter{0};
  static const unsigned run = std::random_device{}();
  return stem + "-" + std::to_string(run % 100000) + "-" + std::to_string(++counter);
}

std::optional<std::vector<PartitionInfo>> PartitionsVia(const std::string& bootstrap,
                                                        const std::string& topic, int timeout_ms);

void RealKafka::CreateTopic(const std::string& topic, int partitions, int replication,
                            const std::map<std::string, std::string>& configs) const {
  RdKafkaPtr rk = NewClient(bootstrap_);
  char err[512];
  rd_kafka_NewTopic_t* nt =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication, err, sizeof err);
  if (nt == nullptr) throw std::runtime_error(err);
  for (const auto& [name, value] : configs) {
    rd_kafka_NewTopic_set_config(nt, name.c_str(), value.c_str());
  }
  const std::string failure = AdminRequest(
      rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS,
      [&](const rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_CreateTopics(rk.get(), &nt, 1, options, queue);
      },
      [](rd_kafka_event_t* ev) {
        std::string errors;
        size_t n = 0;
        const rd_kafka_topic_result_t** results =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; ++i) {
          if (rd_kafka_topic_result_error(results[i])) {
            errors = rd_kafka_err2name(rd_kafka_topic_result_error(results[i]));
            if (const char* e = rd_kafka_topic_result_error_string(results[i])) {
              errors += std::string(": ") + e;
            }
          }
        }
        return errors;
      });
  rd_kafka_NewTopic_destroy(nt);
  if (!failure.empty()) throw std::runtime_error("create topic " + topic + ": " + failure);

  // Metadata reaches every broker shortly after, each from its own cache;
  // wait until each broker that answers knows the topic with a leader on
  // every partition, so that no later metadata request of a test meets one
  // that does not know it yet. A broker that does not answer (killed by an
  // earlier test and not back yet) is not waited for.
  const auto end = std::chrono::steady_clock::now() + 30s;
  for (const std::string& broker : Brokers()) {
    while (true) {
      const auto parts = PartitionsVia(broker, topic, 2000);
      if (!parts) break;
      bool ready = static_cast<int>(parts->size()) == partitions;
      for (const auto& p : *parts) ready = ready && p.leader >= 0;
      if (ready) break;
      if (std::chrono::steady_clock::now() > end) {
        throw std::runtime_error("topic " + topic + " has no leader on every partition at " +
                                 broker + " after 30 s");
      }
      std::this_thread::sleep_for(100ms);
    }
  }
}

// The partitions of `topic` as the metadata answer of a client bootstrapped
// to `bootstrap` gives them (a fresh client asks one of those brokers);
// nullopt when no broker answered within `timeout_ms`.
std::optional<std::vector<PartitionInfo>> PartitionsVia(const std::string& bootstrap,
                                                        const std::string& topic, int timeout_ms) {
  RdKafkaPtr rk = NewClient(bootstrap);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  std::optional<std::vector<PartitionInfo>> answer;
  if (rd_kafka_metadata(rk.get(), 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::vector<PartitionInfo>& out = answer.emplace();
    for (int t = 0; t < md->topic_cnt; ++t) {
      if (md->topics[t].err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      for (int p = 0; p < md->topics[t].partition_cnt; ++p) {
        const rd_kafka_metadata_partition_t& mp = md->topics[t].partitions[p];
        PartitionInfo info;
        info.id = mp.id;
        info.leader = mp.err == RD_KAFKA_RESP_ERR_NO_ERROR ? mp.leader : -1;
        info.replicas.assign(mp.replicas, mp.replicas + mp.replica_cnt);
        info.isr.assign(mp.isrs, mp.isrs + mp.isr_cnt);
        out.push_back(std::move(info));
      }
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  return answer;
}

std::vector<PartitionInfo> RealKafka::Partitions(const std::string& topic) const {
  return PartitionsVia(bootstrap_, topic, 10000).value_or(std::vector<PartitionInfo>{});
}

std::vector<std::int32_t> RealKafka::LiveBrokers() const {
  RdKafkaPtr rk = NewClient(bootstrap_);
  const rd_kafka_metadata_t* md = nullptr;
  std::vector<std::int32_t> ids;
  if (rd_kafka_metadata(rk.get(), 0, nullptr, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int b = 0; b < md->broker_cnt; ++b) ids.push_back(md->brokers[b].id);
    rd_kafka_metadata_destroy(md);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

int RealKafka::UnderReplicatedPartitions() const {
  RdKafkaPtr rk = NewClient(bootstrap_);
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk.get(), 1, nullptr, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  int under = 0;
  for (int t = 0; t < md->topic_cnt; ++t) {
    for (int p = 0; p < md->topics[t].partition_cnt; ++p) {
      const rd_kafka_metadata_partition_t& part = md->topics[t].partitions[p];
      if (part.isr_cnt < part.replica_cnt) ++under;
    }
  }
  rd_kafka_metadata_destroy(md);
  return under;
}

void RealKafka::Signal(int node_id, const std::string& signal) const {
  if (!ControlsProcesses()) throw std::logic_error("cluster not started by the fixture");
  const CommandResult r = RunCommand(std::string("python3 ") + DISPATCH_KAFKA_CLUSTER_SCRIPT +
                                     " signal --dir " + ShellQuote(cluster_dir_) + " --node " +
                                     std::to_string(node_id) + " --signal " + signal + " 2>&1");
  if (r.status != 0) throw std::runtime_error("signal " + signal + ": " + r.out);
}

void RealKafka::Restart(int node_id) const {
  if (!ControlsProcesses()) throw std::logic_error("cluster not started by the fixture");
  const CommandResult r = RunCommand(std::string("python3 ") + DISPATCH_KAFKA_CLUSTER_SCRIPT +
                                     " restart --dir " + ShellQuote(cluster_dir_) + " --node " +
                                     std::to_string(node_id) + " 2>&1");
  if (r.status != 0) throw std::runtime_error("restart node " + std::to_string(node_id) + ": " + r.out);
}

std::vector<RecordBatch> RealKafka::Batches(int node_id, const std::string& topic,
                                            const std::vector<std::int32_t>& partitions) const {
  if (!ControlsProcesses()) throw std::logic_error("cluster not started by the fixture");
  std::string command = std::string("python3 ") + DISPATCH_KAFKA_CLUSTER_SCRIPT +
                        " batches --dir " + ShellQuote(cluster_dir_) + " --node " +
                        std::to_string(node_id) + " --topic " + ShellQuote(topic) + " --partition";
  for (std::int32_t p : partitions) command += " " + std::to_string(p);
  const CommandResult r = RunCommand(command + " 2>&1");
  if (r.status != 0) throw std::runtime_error("batches of " + topic + ": " + r.out);
  std::vector<RecordBatch> batches;
  std::istringstream in(r.out);
  RecordBatch b;
  while (in >> b.partition >> b.base_offset >> b.last_offset >> b.producer_id >> b.producer_epoch) {
    batches.push_back(b);
  }
  if (!in.eof()) throw std::runtime_error("batches of " + topic + ": cannot parse: " + r.out);
  return batches;
}

std::vector<DuplicateOrigin> RealKafka::OriginsOf(const std::string& topic,
                                                  const std::vector<Duplicate>& duplicates) const {
  if (duplicates.empty()) return {};
  std::set<std::int32_t> wanted;
  for (const Duplicate& d : duplicates) {
    wanted.insert(d.first->partition);
    wanted.insert(d.again->partition);
  }
  // Each wanted partition's leader (an election may still be settling).
  std::map<int, std::vector<std::int32_t>> by_leader;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    by_leader.clear();
    std::size_t led = 0;
    for (const PartitionInfo& p : Partitions(topic)) {
      if (wanted.count(p.id) != 0 && p.leader > 0) {
        by_leader[p.leader].push_back(p.id);
        ++led;
      }
    }
    if (led == wanted.size()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("OriginsOf: " + std::to_string(wanted.size() - led) + " of " +
                               std::to_string(wanted.size()) + " partitions of " + topic +
                               " have no leader after 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  // The batches of each partition, in offset order, and where each one stands
  // among the batches of its producer epoch: nth from the start, nth from the end.
  struct Placed {
    RecordBatch batch;
    std::size_t from_start = 0;
    std::size_t from_end = 0;
  };
  std::map<std::int32_t, std::vector<Placed>> placed;
  for (const auto& [leader, partitions] : by_leader) {
    for (const RecordBatch& b : Batches(leader, topic, partitions)) {
      placed[b.partition].push_back({b});
    }
  }
  for (auto& [partition, list] : placed) {
    std::map<std::pair<std::int64_t, std::int32_t>, std::vector<Placed*>> by_epoch;
    for (Placed& p : list) by_epoch[{p.batch.producer_id, p.batch.producer_epoch}].push_back(&p);
    for (auto& [epoch, members] : by_epoch) {
      for (std::size_t k = 0; k < members.size(); ++k) {
        members[k]->from_start = k;
        members[k]->from_end = members.size() - 1 - k;
      }
    }
  }
  const auto placed_of = [&](const Record& r) -> const Placed* {
    const std::vector<Placed>& list = placed[r.partition];
    const auto after = std::upper_bound(
        list.begin(), list.end(), r.offset,
        [](std::int64_t offset, const Placed& p) { return offset < p.batch.base_offset; });
    if (after == list.begin() || r.offset > std::prev(after)->batch.last_offset) return nullptr;
    return &*std::prev(after);
  };
  const auto where = [&](const Record& r, const Placed* p) {
    return std::to_string(r.partition) + "/" + std::to_string(r.offset) + " (" +
           (p == nullptr ? std::string("in no batch that the leader holds")
                         : "producer " + std::to_string(p->batch.producer_id) + " epoch " +
                               std::to_string(p->batch.producer_epoch) + ", batch " +
                               std::to_string(p->from_start + 1) + " of the epoch, " +
                               std::to_string(p->from_end) + " after it") +
           ")";
  };
  std::vector<DuplicateOrigin> origins;
  for (const Duplicate& d : duplicates) {
    const Placed* first = placed_of(*d.first);
    const Placed* again = placed_of(*d.again);
    DuplicateOrigin o;
    o.resent_under_new_epoch = first != nullptr && again != nullptr &&
                               d.first->partition == d.again->partition &&
                               first->batch.producer_id == again->batch.producer_id &&
                               again->batch.producer_epoch > first->batch.producer_epoch &&
                               first->from_end < kMaxInFlight && again->from_start < kMaxInFlight;
    o.where = where(*d.first, first) + ", again at " + where(*d.again, again);
    origins.push_back(std::move(o));
  }
  return origins;
}

std::vector<Record> RealKafka::ReadWithKcat(const std::string& topic) const {
  // -e: stop at the end of every partition; -J: one JSON envelope per line,
  // with null keys and values as null and headers as a list of pairs.
  const CommandResult r = RunCommand("kcat -C -q -e -J -o beginning -b " + ShellQuote(bootstrap_) +
                                     " -t " + ShellQuote(topic) + " -X socket.timeout.ms=10000");
  if (r.status != 0) {
    throw std::runtime_error("kcat exited with " + std::to_string(r.status) + " reading " + topic);
  }
  std::vector<Record> records;
  std::size_t start = 0;
  while (start < r.out.size()) {
    std::size_t end = r.out.find('\n', start);
    if (end == std::string::npos) end = r.out.size();
    if (end > start) records.push_back(ParseKcatLine(std::string_view(r.out).substr(start, end - start)));
    start = end + 1;
  }
  return records;
}

}  // namespace dispatch::suite
