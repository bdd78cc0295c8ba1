// A scripted broker for dispatch::Dispatcher's unit tests: the publishers a
// dispatcher makes (dispatch::testing::MockPublisher) answer from one script
// and record every wave. Shared by dispatcher_test.cpp and
// dispatcher_runs_test.cpp.
#pragma once

#include <gmock/gmock.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/dispatcher.h"
#include "dispatch/testing/mock_publisher.h"

namespace dispatch::test {

using namespace std::chrono_literals;
using ::testing::NiceMock;
using SteadyClock = std::chrono::steady_clock;
using Answer = std::function<std::vector<Result>(const Context&, std::span<const Message>)>;

inline Result Retriable() {
  return Result::Error(ErrorCode::kBrokerUnavailable, Delivery::kNotDelivered, true, "broker down");
}
inline Result Poison() {
  return Result::Error(ErrorCode::kMessageTooLarge, Delivery::kNotDelivered, false, "too large");
}
inline Result Fatal() {
  return Result::Error(ErrorCode::kFatal, Delivery::kUnknown, true, "fatal: idempotence broken");
}
inline Result Cancelled() {
  return Result::Error(ErrorCode::kCancelled, Delivery::kUnknown, true, "cancelled");
}

// Waits up to `bound` for `condition`; the tests never sleep and hope.
template <typename Condition>
bool WaitFor(Condition condition, std::chrono::milliseconds bound = 5s) {
  const auto deadline = SteadyClock::now() + bound;
  while (!condition()) {
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The publishers a dispatcher makes, all answering from one script. By
// default a message is answered by its payload: "fail..." retriable every
// time, "flaky..." retriable the first time, "poison..." permanent,
// "fatal..." kFatal the first time, anything else ok. Records every wave.
class Broker {
 public:
  PublisherFactory Factory() {
    return [this]() -> std::unique_ptr<Publisher> {
      std::lock_guard lock(mu_);
      ++made_;
      if (factory_failures_ > 0) {
        --factory_failures_;
        throw std::runtime_error("cannot reach the cluster");
      }
      auto publisher = std::make_unique<NiceMock<testing::MockPublisher>>();
      publisher->SetOrdersKeysInBatch(orders_keys_);
      ON_CALL(*publisher, PublishBatch)
          .WillByDefault([this](const Context& ctx, std::span<const Message> batch) {
            return Publish(ctx, batch);
          });
      return publisher;
    };
  }

  // Replaces the payload script.
  void Script(Answer answer) {
    std::lock_guard lock(mu_);
    answer_ = std::move(answer);
  }
  // Whether the publishers made from now on say they keep a key's order
  // within a batch (Publisher::OrdersKeysInBatch): the dispatcher then sends
  // runs of a key. The script keeps that promise only if the test writes it so.
  void OrderKeys(bool orders) {
    std::lock_guard lock(mu_);
    orders_keys_ = orders;
  }
  void FailFactory(int times) {
    std::lock_guard lock(mu_);
    factory_failures_ = times;
  }

  std::vector<std::vector<std::string>> Waves() const {
    std::lock_guard lock(mu_);
    return waves_;
  }
  std::vector<std::string> Sent() const {
    std::vector<std::string> all;
    for (const auto& wave : Waves()) all.insert(all.end(), wave.begin(), wave.end());
    return all;
  }
  std::vector<Message> Messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }
  int Made() const {
    std::lock_guard lock(mu_);
    return made_;
  }

 private:
  std::vector<Result> Publish(const Context& ctx, std::span<const Message> batch) {
    Answer answer;
    {
      std::lock_guard lock(mu_);
      std::vector<std::string> wave;
      for (const Message& m : batch) {
        wave.push_back(m.value);
        messages_.push_back(m);
      }
      waves_.push_back(std::move(wave));
      answer = answer_;
    }
    if (answer) return answer(ctx, batch);
    std::lock_guard lock(mu_);
    std::vector<Result> results;
    // Keys whose message failed retriably in this batch: a publisher that
    // orders keys writes none of their later messages.
    std::map<std::string, std::size_t> stopped;
    for (const Message& m : batch) {
      const bool first = ++sends_[m.value] == 1;
      const std::string key = m.key.value_or("");
      if (orders_keys_ && stopped.count(key) != 0) {
        results.push_back(Result::Error(ErrorCode::kBrokerUnavailable, Delivery::kNotDelivered,
                                        true, "not produced: an earlier message of its key"));
      } else if (m.value.starts_with("fail") || (first && m.value.starts_with("flaky"))) {
        stopped.emplace(key, results.size());
        results.push_back(Retriable());
      } else if (m.value.starts_with("poison")) {
        results.push_back(Poison());
      } else if (first && m.value.starts_with("fatal")) {
        results.push_back(Fatal());
      } else {
        results.push_back(Result::Delivered());
      }
    }
    return results;
  }

  mutable std::mutex mu_;
  Answer answer_;
  std::vector<std::vector<std::string>> waves_;
  std::vector<Message> messages_;
  std::map<std::string, int> sends_;
  int made_ = 0;
  int factory_failures_ = 0;
  bool orders_keys_ = false;
};

}  // namespace dispatch::test
