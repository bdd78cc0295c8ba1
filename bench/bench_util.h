// Helpers shared by the benchmarks: broker selection (embedded cluster or
// --brokers), the raw-librdkafka baseline's configuration, statistics.
//
// The baseline producer gets the librdkafka properties that KafkaPublisher
// applies (EffectiveProperties), so that a ratio measures the wrapper, not a
// different setting, and the baseline cannot drift from the library.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/testing/embedded_kafka.h"
#include "testing/cluster_process.h"
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

// The baseline's properties: those KafkaPublisher applies with `config`
// (its extra `properties`, such as compression.type, included). A bench that
// deliberately sets the baseline differently says so beside the difference.
inline std::unique_ptr<RdKafka::Conf> RawConf(const dispatch::kafka::KafkaConfig& config) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  for (const auto& [name, value] : dispatch::kafka::EffectiveProperties(config)) {
    if (value == "[redacted]") {
      throw std::runtime_error("baseline: " + name + " is a secret that EffectiveProperties hides");
    }
    if (conf->set(name, value, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
  }
  return conf;
}

// The same, with the library's defaults.
inline std::unique_ptr<RdKafka::Conf> RawConf(const std::string& brokers) {
  return RawConf(OurConfig(brokers));
}

// A topic a benchmark needs: name, partition count, and topic configurations
// for a real cluster (the embedded cluster has none and enforces no record
// size limit).
using TopicSpec = dispatch::testing::TopicSpec;

// Creates `topics` on a real cluster when missing (the embedded cluster
// creates topics itself). A failure is reported and the run goes on: a topic
// that cannot be written shows as failures in the benchmark's own output.
inline void EnsureTopics(const std::string& brokers, const std::vector<TopicSpec>& topics) {
  const std::string problem =
      dispatch::testing::CreateTopics(brokers, topics, std::chrono::seconds(30));
  if (!problem.empty()) {
    std::fprintf(stderr, "warning: cannot create topics (%s); going on\n", problem.c_str());
  }
}

// The broker a benchmark runs on: an embedded cluster in a child process
// unless --brokers was given. In a child process, the CPU time and the
// resident memory that a benchmark reads with getrusage and /proc/self are
// the client's alone, as they are against a real broker. Construct it before
// the benchmark starts any thread (it forks).
class Broker {
 public:
  Broker(std::string brokers, const std::vector<TopicSpec>& topics)
      : bootstrap_(std::move(brokers)) {
    if (bootstrap_.empty()) {
      std::vector<std::pair<std::string, int>> specs;
      for (const TopicSpec& t : topics) specs.emplace_back(t.name, t.partitions);
      cluster_ = std::make_unique<dispatch::testing::internal::ClusterProcess>(1, specs);
      bootstrap_ = cluster_->Bootstrap();
    } else {
      EnsureTopics(bootstrap_, topics);
    }
  }
  Broker(std::string brokers, const std::string& topic, int partitions)
      : Broker(std::move(brokers), std::vector<TopicSpec>{{topic, partitions}}) {}

  const std::string& bootstrap() const { return bootstrap_; }
  const char* kind() const { return cluster_ ? "embedded" : "real"; }
  bool embedded() const { return cluster_ != nullptr; }

  // Creates `topic` during the run, on the embedded cluster (through its
  // process) or the real one (CreateTopics), and returns once its metadata
  // shows a leader for every partition; throws when it cannot.
  void CreateTopic(const TopicSpec& topic) {
    if (cluster_) {
      cluster_->Command("topic " + topic.name + " " + std::to_string(topic.partitions));
      return;
    }
    const std::string problem =
        dispatch::testing::CreateTopics(bootstrap_, {topic}, std::chrono::seconds(30));
    if (!problem.empty()) throw std::runtime_error("cannot create " + topic.name + ": " + problem);
  }

  // Delays every response of the embedded cluster's brokers by `rtt` (0
  // undoes it), for messages that must stay in flight; returns once the
  // cluster applied it. Throws on a real cluster.
  void SetRtt(std::chrono::milliseconds rtt) {
    if (!cluster_) throw std::runtime_error("SetRtt needs the embedded cluster");
    cluster_->Command("rtt " + std::to_string(rtt.count()));
  }

 private:
  std::unique_ptr<dispatch::testing::internal::ClusterProcess> cluster_;
  std::string bootstrap_;
};

// Raw librdkafka with the publisher's properties, as a competent user
// writes produce-and-wait by hand: produce one message, then poll until its
// report arrives (B1, the first-publish bench, and deadline_lateness with
// the write timeout as its only bound). Waits 10 s at most.
class RawProducer : public RdKafka::DeliveryReportCb {
 public:
  explicit RawProducer(const std::string& brokers) : RawProducer(OurConfig(brokers)) {}
  // `overrides`: properties a bench sets differently on the baseline, on
  // purpose (it says so beside them).
  explicit RawProducer(const dispatch::kafka::KafkaConfig& config,
                       const std::vector<std::pair<std::string, std::string>>& overrides = {}) {
    auto conf = RawConf(config);
    std::string err;
    for (const auto& [name, value] : overrides) {
      if (conf->set(name, value, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
    }
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

  // False when the last ProduceAndWait gave up with no report.
  bool reported() const { return done_; }

  void dr_cb(RdKafka::Message& m) override {
    ok_ = m.err() == RdKafka::ERR_NO_ERROR;
    done_ = true;
  }

 private:
  std::unique_ptr<RdKafka::Producer> producer_;
  bool done_ = false;
  bool ok_ = false;
};

// Raw librdkafka: produce every message, then flush() until all are
// reported (B2 and the size, partitions and compression curves of
// bench/scaling). `events` (optional) receives librdkafka's events, such as
// statistics, while the producer polls or flushes.
class RawBatchProducer : public RdKafka::DeliveryReportCb {
 public:
  explicit RawBatchProducer(const std::string& brokers) : RawBatchProducer(RawConf(brokers)) {}
  explicit RawBatchProducer(std::unique_ptr<RdKafka::Conf> conf,
                            RdKafka::EventCb* events = nullptr) {
    std::string err;
    conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(this), err);
    if (events != nullptr) conf->set("event_cb", events, err);
    producer_.reset(RdKafka::Producer::create(conf.get(), err));
    if (!producer_) throw std::runtime_error(err);
  }
  ~RawBatchProducer() override { producer_->flush(5000); }
  RawBatchProducer(const RawBatchProducer&) = delete;
  RawBatchProducer& operator=(const RawBatchProducer&) = delete;

  // Produces every message (waiting for room while the local queue is
  // full); with `flush`, then waits until all are reported. Returns the
  // number of messages that failed, or, without `flush`, that failed to
  // enqueue.
  int ProduceAll(std::span<const dispatch::Message> messages, bool flush = true) {
    failed_ = 0;
    for (const dispatch::Message& m : messages) {
      for (;;) {
        const RdKafka::ErrorCode e = producer_->produce(
            m.topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
            const_cast<char*>(m.value.data()), m.value.size(), m.key ? m.key->data() : nullptr,
            m.key ? m.key->size() : 0, 0, nullptr);
        if (e == RdKafka::ERR_NO_ERROR) break;
        if (e != RdKafka::ERR__QUEUE_FULL) {
          if (last_error_.empty()) last_error_ = RdKafka::err2str(e);
          ++failed_;
          break;
        }
        producer_->poll(1);
      }
    }
    if (flush) producer_->flush(60000);
    return failed_;
  }

  void dr_cb(RdKafka::Message& m) override {
    if (m.err() != RdKafka::ERR_NO_ERROR) {
      if (last_error_.empty()) last_error_ = m.errstr();
      ++failed_;
    }
  }

  RdKafka::Producer& producer() { return *producer_; }
  // librdkafka's text for the first failure seen, empty when none.
  const std::string& last_error() const { return last_error_; }

 private:
  std::unique_ptr<RdKafka::Producer> producer_;
  int failed_ = 0;
  std::string last_error_;
};

// Raw librdkafka as a competent user shares one producer between threads:
// one thread serves delivery reports (poll in a loop), and each blocking
// caller waits on a condition variable of its own for its message's report
// (B3, the callers curve of bench/scaling). Its properties are the
// publisher's (RawConf).
class RawThreadedProducer : public RdKafka::DeliveryReportCb {
 public:
  explicit RawThreadedProducer(const std::string& brokers,
                               const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    auto conf = RawConf(brokers);
    std::string err;
    for (const auto& [name, value] : extra) {
      if (conf->set(name, value, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
    }
    conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(this), err);
    producer_.reset(RdKafka::Producer::create(conf.get(), err));
    if (!producer_) throw std::runtime_error(err);
    reports_ = std::thread([this] {
      while (!stop_.load(std::memory_order_relaxed)) producer_->poll(100);
    });
  }
  ~RawThreadedProducer() override {
    producer_->flush(5000);
    stop_.store(true);
    reports_.join();
  }
  RawThreadedProducer(const RawThreadedProducer&) = delete;
  RawThreadedProducer& operator=(const RawThreadedProducer&) = delete;

  // Produces one message and blocks until its delivery report; true when it
  // was acknowledged. Safe from any number of threads at once.
  bool ProduceAndWait(const std::string& topic, const std::string& key, const std::string& value) {
    Waiter w;
    for (;;) {
      const RdKafka::ErrorCode e = producer_->produce(
          topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, &w);
      if (e == RdKafka::ERR_NO_ERROR) break;
      if (e != RdKafka::ERR__QUEUE_FULL) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::unique_lock lock(w.mu);
    w.cv.wait(lock, [&w] { return w.done; });
    return w.ok;
  }

  void dr_cb(RdKafka::Message& m) override {
    auto* w = static_cast<Waiter*>(m.msg_opaque());
    const std::lock_guard lock(w->mu);
    w->ok = m.err() == RdKafka::ERR_NO_ERROR;
    w->done = true;
    w->cv.notify_one();
  }

 private:
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool ok = false;
  };
  std::unique_ptr<RdKafka::Producer> producer_;
  std::atomic<bool> stop_{false};
  std::thread reports_;
};

// The calls of B3 and of the callers curve of bench/scaling: one blocking
// call per message from many threads, the same message on both sides (100
// bytes, keyed over 64 keys by thread and index). Raw and Ours fit
// RunThreads; each is true when the message was acknowledged.
class ThreadedCalls {
 public:
  ThreadedCalls(std::string topic, dispatch::kafka::KafkaPublisher& publisher,
                RawThreadedProducer& raw)
      : topic_(std::move(topic)), publisher_(publisher), raw_(raw), value_(100, 'v') {
    for (int i = 0; i < 64; ++i) keys_.push_back("key-" + std::to_string(i));
  }
  bool Raw(int thread, int i) { return raw_.ProduceAndWait(topic_, Key(thread, i), value_); }
  bool Ours(int thread, int i) {
    return publisher_
        .Publish(dispatch::Context::WithTimeout(std::chrono::seconds(30)),
                 {topic_, Key(thread, i), value_, {}})
        .ok();
  }

 private:
  const std::string& Key(int thread, int i) const {
    return keys_[static_cast<std::size_t>((thread + i) % 64)];
  }
  std::string topic_;
  dispatch::kafka::KafkaPublisher& publisher_;
  RawThreadedProducer& raw_;
  std::string value_;
  std::vector<std::string> keys_;
};

// Runs both sides once, raw first when `turn` is even and ours first when it
// is odd: the side that follows the other meets the broker still busy with
// the other's requests, so neither side always pays for that.
template <typename Raw, typename Ours>
void InTurn(int turn, Raw&& raw, Ours&& ours) {
  if (turn % 2 == 0) {
    raw();
    ours();
  } else {
    ours();
    raw();
  }
}

// Runs `rounds` rounds of both sides, each round in turn (InTurn).
template <typename Raw, typename Ours>
void Alternate(int rounds, Raw&& raw, Ours&& ours) {
  for (int r = 0; r < rounds; ++r) InTurn(r, raw, ours);
}

// CPU time of the whole process so far (user + system, every thread: the
// embedded broker's too when it runs in process), in seconds.
inline double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Context switches of the whole process so far, voluntary and not.
inline double ContextSwitches() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_nvcsw + u.ru_nivcsw);
}

// What one side's calls took over its rounds, summed.
struct Phase {
  double wall_s = 0;
  double cpu_s = 0;
  double switches = 0;
  long messages = 0;
};

// Starts `threads` threads, each calling `one(thread, i)` `per_thread` times
// (true when that message was acknowledged) once all are started, and adds
// the wall time, CPU time, context switches and messages from the start
// signal to the last join (thread creation excluded) to `phase`. Returns the
// number of calls that failed.
template <typename F>
int RunThreads(int threads, int per_thread, Phase& phase, F one) {
  std::latch ready(threads);
  std::latch go(1);
  std::atomic<int> failed{0};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.count_down();
      go.wait();
      for (int i = 0; i < per_thread; ++i) {
        if (!one(t, i)) failed.fetch_add(1);
      }
    });
  }
  ready.wait();
  const double cpu0 = CpuSeconds();
  const double switches0 = ContextSwitches();
  const auto t0 = Clock::now();
  go.count_down();
  for (auto& th : pool) th.join();
  phase.wall_s += SecondsSince(t0);
  phase.cpu_s += CpuSeconds() - cpu0;
  phase.switches += ContextSwitches() - switches0;
  phase.messages += static_cast<long>(threads) * per_thread;
  return failed.load();
}

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
