// The callers that wait for delivery reports, and who serves the reports.
//
// Each Publish / PublishBatch call owns a Call: one allocation that holds
// the call's slots (a result and a done flag per message) and a condition
// variable. Each produced message carries, as librdkafka's opaque, a pointer
// to its Slot; the Call counts its references (the caller's, and one per
// message handed to librdkafka), so a report that arrives after the caller
// stopped waiting still finds the Call alive, sees its slot done and changes
// nothing. The last reference frees the Call.
//
// Serving reports: while callers wait, one of them (the leader) serves
// librdkafka's queue itself with poll(), so a report reaches its own caller
// without a hand-off between threads; the others wait on their Call's
// condition variable. A leader that is done hands the lead to the oldest
// caller still waiting. While no caller waits, the publisher's own thread
// serves what comes (statistics, errors, the reports of calls that stopped
// waiting). The WaitList keeps the waiting calls and the lead.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <utility>

#include "dispatch/publisher.h"
#include "internal.h"

namespace dispatch::kafka::internal {

struct Call;

// One message of a call: librdkafka's per-message opaque.
struct Slot {
  Call* call;
  Result result;
  bool done = false;
};

struct Call {
  // The caller's messages: valid only while the caller waits (used to name
  // topics in results written by the caller or by the WaitList, never by
  // reports).
  std::span<const Message> messages;
  std::mutex mu;
  std::condition_variable cv;
  // Open slots; written under `mu`, read without it to pick a leader.
  std::atomic<std::size_t> remaining;
  // References: the caller's, and one per message in librdkafka's hands.
  std::atomic<std::size_t> refs{1};

  // Set under `mu` by the WaitList when it hands this call the lead.
  bool offered_lead = false;
  // Whether the caller is serving reports now (read by dr_cb on other
  // threads, to wake it out of poll()).
  std::atomic<bool> serving{false};

  // The WaitList's links, under its mutex.
  Call* prev = nullptr;
  Call* next = nullptr;
  bool listed = false;

  // A Call and its slots in one allocation; the caller's reference.
  static Call* Create(std::span<const Message> messages) {
    const std::size_t n = messages.size();
    void* memory = ::operator new(SlotsOffset() + n * sizeof(Slot));
    Call* call = new (memory) Call(messages);
    Slot* slots = call->slots();
    for (std::size_t i = 0; i < n; ++i) new (&slots[i]) Slot{call, Result(), false};
    return call;
  }

  void Acquire() { refs.fetch_add(1, std::memory_order_relaxed); }

  // Drops one reference; the last frees the Call.
  void Release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    Slot* s = slots();
    for (std::size_t i = 0; i < messages.size(); ++i) s[i].~Slot();
    this->~Call();
    ::operator delete(static_cast<void*>(this));
  }

  Slot* slots() {
    return std::launder(reinterpret_cast<Slot*>(reinterpret_cast<char*>(this) + SlotsOffset()));
  }
  Slot& slot(std::size_t i) { return slots()[i]; }
  std::size_t index(const Slot& s) { return static_cast<std::size_t>(&s - slots()); }

  // Gives every open slot from `first` on `r`, with its own topic named.
  // Caller holds `mu`. A large batch may end here with most of its slots
  // open, so each slot costs one string copy: the text is built once per run
  // of slots with the same topic.
  void FinishOpenSlots(const Result& r, std::size_t first = 0) {
    const std::string* topic = nullptr;
    std::string text;
    Slot* s = slots();
    std::size_t open = remaining.load(std::memory_order_relaxed);
    for (std::size_t i = first; i < messages.size() && open > 0; ++i) {
      if (s[i].done) continue;
      if (topic == nullptr || messages[i].topic != *topic) {
        topic = &messages[i].topic;
        text = r.message + " (topic " + Printable(*topic) + ")";
      }
      Result& slot = s[i].result;
      slot.code = r.code;
      slot.delivery = r.delivery;
      slot.retriable = r.retriable;
      slot.message = text;
      s[i].done = true;
      --open;
    }
    remaining.store(open, std::memory_order_relaxed);
  }

  // Sets slot `s` unless the caller already gave up on it. Returns true when
  // this was the last open slot.
  bool Complete(Slot& s, Result r) {
    std::lock_guard lock(mu);
    if (s.done) return false;
    s.result = std::move(r);
    s.done = true;
    const std::size_t open = remaining.load(std::memory_order_relaxed) - 1;
    remaining.store(open, std::memory_order_relaxed);
    return open == 0;
  }

 private:
  explicit Call(std::span<const Message> m) : messages(m), remaining(m.size()) {}
  ~Call() = default;

  static constexpr std::size_t SlotsOffset() {
    return (sizeof(Call) + alignof(Slot) - 1) / alignof(Slot) * alignof(Slot);
  }
};

// Releases the caller's reference when the caller is done with the Call.
struct CallRelease {
  void operator()(Call* call) const { call->Release(); }
};
using CallPtr = std::unique_ptr<Call, CallRelease>;

// The calls whose callers wait now, in the order they began to wait, and
// which of them leads (serves librdkafka's queue). Lock order: the list's
// mutex before a Call's.
class WaitList {
 public:
  // Lists `call`; returns true when its caller leads from now on. After
  // FinishAll(r, /*final=*/true) it lists nothing: the call's open slots get
  // that result at once.
  bool Enter(Call* call) {
    std::lock_guard lock(mu_);
    if (final_result_) {
      std::lock_guard call_lock(call->mu);
      call->FinishOpenSlots(*final_result_);
      return false;
    }
    call->prev = tail_;
    call->next = nullptr;
    (tail_ ? tail_->next : head_) = call;
    tail_ = call;
    call->listed = true;
    if (leader_ == nullptr && !no_lead_) {
      leader_ = call;
      return true;
    }
    return false;
  }

  // Unlists `call`; when it led, the lead passes on (StepDown).
  void Leave(Call* call) {
    std::lock_guard lock(mu_);
    if (!call->listed) return;
    Call*& before = call->prev ? call->prev->next : head_;
    before = call->next;
    (call->next ? call->next->prev : tail_) = call->prev;
    call->listed = false;
    if (leader_ == call) PassLead();
  }

  // `call` stops leading but stays listed: the lead passes on.
  void StepDown(Call* call) {
    std::lock_guard lock(mu_);
    if (leader_ == call) PassLead();
  }

  // Whether a caller leads now.
  bool Led() {
    std::lock_guard lock(mu_);
    return leader_ != nullptr;
  }

  // Whether EndLeading was called: a leader then steps down.
  bool LeadEnded() const { return lead_ended_.load(std::memory_order_relaxed); }

  // From now on no caller takes the lead; returns once the current leader
  // (woken by `wake`, which must make its poll() return) has left it.
  template <typename Wake>
  void EndLeading(Wake wake) {
    std::unique_lock lock(mu_);
    no_lead_ = true;
    lead_ended_.store(true);
    while (leader_ != nullptr) {
      wake();
      no_leader_.wait_for(lock, std::chrono::milliseconds(10));
    }
  }

  // Ends every wait: each open slot of each listed call gets `r`, and its
  // caller wakes (`wake` makes a leader's poll() return). Slots that already
  // have their result keep it. `final`: calls listed later get `r` too.
  template <typename Wake>
  void FinishAll(const Result& r, bool final, Wake wake) {
    std::lock_guard lock(mu_);
    if (final) final_result_ = std::make_unique<Result>(r);
    for (Call* call = head_; call != nullptr; call = call->next) {
      std::lock_guard call_lock(call->mu);
      if (call->remaining.load(std::memory_order_relaxed) == 0) continue;
      call->FinishOpenSlots(r);
      call->cv.notify_all();
    }
    if (leader_ != nullptr) wake();
  }

 private:
  // With mu_ held and the leader gone: the oldest listed call with open
  // slots leads next (its caller wakes), else no caller leads.
  void PassLead() {
    leader_ = nullptr;
    if (!no_lead_) {
      for (Call* c = head_; c != nullptr; c = c->next) {
        if (c->remaining.load(std::memory_order_relaxed) == 0) continue;  // about to leave
        leader_ = c;
        std::lock_guard call_lock(c->mu);
        c->offered_lead = true;
        c->cv.notify_all();
        break;
      }
    }
    if (leader_ == nullptr) no_leader_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable no_leader_;
  Call* head_ = nullptr;
  Call* tail_ = nullptr;
  Call* leader_ = nullptr;
  bool no_lead_ = false;
  std::atomic<bool> lead_ended_{false};
  std::unique_ptr<Result> final_result_;  // set by a final FinishAll
};

}  // namespace dispatch::kafka::internal
