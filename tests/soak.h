// The publishing side of the two soaks (tests/reliability/soak_test.cpp on
// the embedded cluster, tests/kafka/soak_test.cpp on real Kafka): threads
// that stream messages 0..count-1 through one publisher in batches and count
// the results. Each soak keeps its own faults and checks.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dispatch/publisher.h"

namespace dispatch::suite {

class SoakStream {
 public:
  struct Options {
    int messages = 0;
    int threads = 8;
    int batch = 500;                                     // messages per PublishBatch
    std::chrono::milliseconds timeout{10'000};           // the deadline of each PublishBatch
    std::function<Message(int i)> message;               // message i
    // Called with message i's result before acked() or failed() counts it,
    // on the thread that published it. May be empty.
    std::function<void(int i, const Result& result)> on_result;
    // Called before the batch that starts at message `first` is built, on
    // its thread: for pacing or holding the stream. May be empty.
    std::function<void(int first)> before_batch;
  };

  // Starts the threads: thread t publishes batches t, t + threads,
  // t + 2 * threads, ... of `batch` messages each. `publisher` must outlive
  // the stream; destroying the stream joins the threads.
  SoakStream(Publisher& publisher, Options options) : options_(std::move(options)) {
    for (int t = 0; t < options_.threads; ++t) {
      threads_.emplace_back([this, &publisher, t] { Run(publisher, t); });
    }
  }

  int acked() const { return acked_.load(); }
  int failed() const { return failed_.load(); }
  bool done() const { return done_threads_.load() == options_.threads; }
  void Join() { threads_.clear(); }
  // The failed results by "code/delivery", complete once done().
  std::map<std::string, int> failures() const {
    const std::lock_guard lock(failures_mu_);
    return failures_;
  }

 private:
  void Run(Publisher& publisher, int t) {
    const int n = options_.messages;
    std::vector<Message> batch;
    std::map<std::string, int> own_failures;
    for (int first = t * options_.batch; first < n; first += options_.threads * options_.batch) {
      if (options_.before_batch) options_.before_batch(first);
      batch.clear();
      for (int i = first; i < std::min(first + options_.batch, n); ++i) {
        batch.push_back(options_.message(i));
      }
      const auto results = publisher.PublishBatch(Context::WithTimeout(options_.timeout), batch);
      for (std::size_t j = 0; j < results.size(); ++j) {
        if (options_.on_result) options_.on_result(first + static_cast<int>(j), results[j]);
        if (results[j].ok()) {
          acked_.fetch_add(1);
        } else {
          failed_.fetch_add(1);
          ++own_failures[std::string(ToString(results[j].code)) + "/" +
                         std::string(ToString(results[j].delivery))];
        }
      }
    }
    {
      const std::lock_guard lock(failures_mu_);
      for (const auto& [what, count] : own_failures) failures_[what] += count;
    }
    done_threads_.fetch_add(1);
  }

  const Options options_;
  std::atomic<int> acked_{0};
  std::atomic<int> failed_{0};
  std::atomic<int> done_threads_{0};
  mutable std::mutex failures_mu_;
  std::map<std::string, int> failures_;
  std::vector<std::jthread> threads_;  // last, so that they are joined first
};

}  // namespace dispatch::suite
