// The callers that wait for delivery reports, and the registry through which
// the publisher can end every wait at once (Close, an authentication failure).
//
// Each Publish / PublishBatch call owns a Call: its results and a condition
// variable. Each produced message carries, as librdkafka's opaque, a heap
// Pending that holds a shared_ptr to its Call. The delivery report fills the
// result, wakes the caller and deletes the Pending. A caller that stops
// waiting (deadline, cancel) marks its open slots done and leaves; a late
// report then finds the Call still alive through its own shared_ptr and
// changes nothing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dispatch/publisher.h"
#include "internal.h"

namespace dispatch::kafka::internal {

struct Call {
  explicit Call(std::span<const Message> m)
      : messages(m), results(m.size()), done(m.size(), 0), remaining(m.size()) {}

  // The caller's messages: valid only while the caller waits (used to name
  // topics in results written by the caller or by the registry, never by
  // reports).
  std::span<const Message> messages;
  std::mutex mu;
  std::condition_variable_any cv;
  std::vector<Result> results;
  std::vector<char> done;
  std::size_t remaining;

  // Gives every open slot from `first` on `r`, with its own topic named.
  // Caller holds `mu`. A large batch may end here with most of its slots
  // open, so each slot costs one string copy: the text is built once per run
  // of slots with the same topic.
  void FinishOpenSlots(const Result& r, std::size_t first = 0) {
    const std::string* topic = nullptr;
    std::string text;
    for (std::size_t i = first; i < done.size(); ++i) {
      if (done[i]) continue;
      if (topic == nullptr || messages[i].topic != *topic) {
        topic = &messages[i].topic;
        text = r.message + " (topic " + Printable(*topic) + ")";
      }
      Result& slot = results[i];
      slot.code = r.code;
      slot.delivery = r.delivery;
      slot.retriable = r.retriable;
      slot.message = text;
      done[i] = 1;
      --remaining;
    }
  }

  // Sets slot `i` unless the caller already gave up on it. Returns true when
  // this was the last open slot.
  bool Complete(std::size_t i, Result r) {
    std::lock_guard lock(mu);
    if (done[i]) return false;
    results[i] = std::move(r);
    done[i] = 1;
    return --remaining == 0;
  }
};

// librdkafka's per-message opaque: which slot of which call a report fills.
struct Pending {
  std::shared_ptr<Call> call;
  std::size_t index;
};

// The calls whose callers are waiting now.
class WaitRegistry {
 public:
  // Keeps `call` known to the registry for as long as its caller waits.
  class Registration {
   public:
    Registration(WaitRegistry& registry, Call* call) : registry_(registry), call_(call) {
      std::lock_guard lock(registry_.mu_);
      registry_.calls_.insert(call_);
    }
    ~Registration() {
      std::lock_guard lock(registry_.mu_);
      registry_.calls_.erase(call_);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    WaitRegistry& registry_;
    Call* call_;
  };

  // Ends every wait: each open slot of each waiting call gets `r`, and its
  // caller wakes. Slots that already have their result keep it.
  void FinishAll(const Result& r) {
    std::lock_guard registry_lock(mu_);
    for (Call* call : calls_) {
      std::lock_guard lock(call->mu);
      if (call->remaining == 0) continue;
      call->FinishOpenSlots(r);
      call->cv.notify_all();
    }
  }

 private:
  std::mutex mu_;
  std::unordered_set<Call*> calls_;
};

}  // namespace dispatch::kafka::internal
