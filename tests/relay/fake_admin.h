// A scripted OutboxAdmin for the relay's command and retention tests.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/outbox_admin.h"

namespace dispatch::relay::test {

class FakeAdmin : public OutboxAdmin {
 public:
  OutboxStatus status;
  std::vector<ParkedRow> parked;
  RequeueResult requeue_result;
  std::optional<std::string> requeue_argument_error;
  std::optional<std::string> store_error;
  // DeletePublished answers these in turn, then 0.
  std::deque<std::int64_t> delete_answers;

  // What was asked.
  std::vector<RequeueRequest> requeues;
  std::vector<std::chrono::system_clock::time_point> purge_before;
  std::vector<std::size_t> purge_batches;
  std::vector<std::chrono::system_clock::time_point> delete_before;
  std::vector<std::size_t> delete_batches;
  std::size_t parked_limit = 0;
  std::string parked_topic;
  std::int64_t parked_after = -1;

  OutboxStatus Status() override {
    Fail();
    return status;
  }
  std::vector<ParkedRow> Parked(std::size_t limit, const std::string& topic,
                                std::int64_t after_id) override {
    Fail();
    parked_limit = limit;
    parked_topic = topic;
    parked_after = after_id;
    return parked;
  }
  RequeueResult Requeue(const RequeueRequest& request) override {
    Fail();
    requeues.push_back(request);
    if (requeue_argument_error) throw AdminArgumentError(*requeue_argument_error);
    if (!request.allow_out_of_order && !requeue_result.out_of_order.empty()) {
      return {{}, requeue_result.out_of_order};
    }
    return requeue_result;
  }
  std::int64_t PurgeParked(std::chrono::system_clock::time_point before,
                           std::size_t batch) override {
    Fail();
    purge_before.push_back(before);
    purge_batches.push_back(batch);
    return 3;
  }
  std::int64_t DeletePublished(std::chrono::system_clock::time_point before,
                               std::size_t batch) override {
    std::lock_guard lock(mutex_);
    delete_before.push_back(before);
    delete_batches.push_back(batch);
    if (store_error) throw StoreError(*store_error);
    if (delete_answers.empty()) return 0;
    const std::int64_t n = delete_answers.front();
    delete_answers.pop_front();
    return n;
  }
  std::size_t DeleteCalls() {
    std::lock_guard lock(mutex_);
    return delete_batches.size();
  }

 private:
  void Fail() {
    if (store_error) throw StoreError(*store_error);
  }
  std::mutex mutex_;
};

}  // namespace dispatch::relay::test
