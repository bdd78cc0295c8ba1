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
  static constexpr int kThreads = 8;
  static constexpr int kBatch = 500;  // messages per PublishBatch
  static constexpr std::chrono::seconds kTimeout{10};  // the deadline of each PublishBatch

  // Message i.
  using MessageOf = std::function<Message(int i)>;
  // Called with message i's result before acked() or failed() counts it, on
  // the thread that published it. May be empty.
  using OnResult = std::function<void(int i, const Result& result)>;
  // Called before the batch that starts at message `first` is built, on its
  // thread: for pacing or holding the stream. May be empty.
  using BeforeBatch = std::function<void(int first)>;

  // Starts the threads: thread t publishes batches t, t + kThreads,
  // t + 2 * kThreads, ... of messages 0..messages-1. `publisher` must
  // outlive the stream; destroying the stream joins the threads.
  SoakStream(Publisher& publisher, int messages, MessageOf message, OnResult on_result,
             BeforeBatch before_batch = {})
      : messages_(messages),
        message_(std::move(message)),
        on_result_(std::move(on_result)),
        before_batch_(std::move(before_batch)) {
    for (int t = 0; t < kThreads; ++t) {
      threads_.emplace_back([this, &publisher, t] { Run(publisher, t); });
    }
  }

  int acked() const { return acked_.load(); }
  int failed() const { return failed_.load(); }
  bool done() const { return done_threads_.load() == kThreads; }
  void Join() { threads_.clear(); }
  // The failed results by "code/delivery", complete once done().
  std::map<std::string, int> failures() const {
    const std::lock_guard lock(failures_mu_);
    return failures_;
  }

 private:
  void Run(Publisher& publisher, int t) {
    std::vector<Message> batch;
    std::map<std::string, int> own_failures;
    for (int first = t * kBatch; first < messages_; first += kThreads * kBatch) {
      if (before_batch_) before_batch_(first);
      batch.clear();
      for (int i = first; i < std::min(first + kBatch, messages_); ++i) batch.push_back(message_(i));
      const auto results = publisher.PublishBatch(Context::WithTimeout(kTimeout), batch);
      for (std::size_t j = 0; j < results.size(); ++j) {
        if (on_result_) on_result_(first + static_cast<int>(j), results[j]);
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

  const int messages_;
  const MessageOf message_;
  const OnResult on_result_;
  const BeforeBatch before_batch_;
  std::atomic<int> acked_{0};
  std::atomic<int> failed_{0};
  std::atomic<int> done_threads_{0};
  mutable std::mutex failures_mu_;
  std::map<std::string, int> failures_;
  std::vector<std::jthread> threads_;  // last, so that they are joined first
};

}  // namespace dispatch::suite
