#include "publisher_tally.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <utility>

namespace dispatch::relay {

void AddCounters(kafka::PublisherMetrics& a, const kafka::PublisherMetrics& b) {
  a.published += b.published;
  a.failed += b.failed;
  for (std::size_t i = 0; i < a.failed_by_code.size(); ++i)
    a.failed_by_code[i] += b.failed_by_code[i];
  for (std::size_t i = 0; i < a.by_delivery.size(); ++i) a.by_delivery[i] += b.by_delivery[i];
  a.topic_lookups += b.topic_lookups;
  for (std::size_t i = 0; i < a.latency_buckets.size(); ++i) {
    a.latency_buckets[i] += b.latency_buckets[i];
  }
  a.latency_sum_us += b.latency_sum_us;
  a.latency_max_us = std::max(a.latency_max_us, b.latency_max_us);
}

// Forwards every virtual of dispatch::Publisher, so that wrapping changes
// nothing the dispatcher sees (OrdersKeysInBatch decides how it forms waves;
// PublishBatch keeps a Kafka publisher's messages in flight together).
class PublisherTally::Wrapper : public Publisher {
 public:
  Wrapper(PublisherTally& tally, std::shared_ptr<Entry> entry, std::unique_ptr<Publisher> publisher,
          std::function<void()> before_retire)
      : tally_(tally),
        entry_(std::move(entry)),
        publisher_(std::move(publisher)),
        before_retire_(std::move(before_retire)) {}

  ~Wrapper() override {
    if (before_retire_) before_retire_();
    tally_.Retire(entry_);
  }
  Wrapper(const Wrapper&) = delete;
  Wrapper& operator=(const Wrapper&) = delete;

  Result Publish(const Context& ctx, const Message& message) override {
    Result r = publisher_->Publish(ctx, message);
    if (r.code == ErrorCode::kFatal) entry_->fatal.store(true);
    return r;
  }

  std::vector<Result> PublishBatch(const Context& ctx, std::span<const Message> messages) override {
    std::vector<Result> results = publisher_->PublishBatch(ctx, messages);
    if (std::any_of(results.begin(), results.end(),
                    [](const Result& r) { return r.code == ErrorCode::kFatal; })) {
      entry_->fatal.store(true);
    }
    return results;
  }

  bool OrdersKeysInBatch() const override { return publisher_->OrdersKeysInBatch(); }

 private:
  PublisherTally& tally_;
  std::shared_ptr<Entry> entry_;
  std::unique_ptr<Publisher> publisher_;  // destroyed after Retire read it
  std::function<void()> before_retire_;
};

std::unique_ptr<Publisher> PublisherTally::Wrap(std::unique_ptr<Publisher> publisher,
                                                MetricsFn metrics) {
  if (!publisher) throw std::invalid_argument("PublisherTally::Wrap: the publisher is null");
  if (!metrics) throw std::invalid_argument("PublisherTally::Wrap: the metrics function is empty");
  auto entry = std::make_shared<Entry>();
  entry->metrics = std::move(metrics);
  {
    std::lock_guard lock(mu_);
    live_.push_back(entry);
    newest_ = entry;
  }
  return std::make_unique<Wrapper>(*this, std::move(entry), std::move(publisher), nullptr);
}

std::unique_ptr<Publisher> PublisherTally::Wrap(std::unique_ptr<kafka::KafkaPublisher> publisher) {
  if (!publisher) throw std::invalid_argument("PublisherTally::Wrap: the publisher is null");
  kafka::KafkaPublisher* kafka = publisher.get();
  auto entry = std::make_shared<Entry>();
  entry->metrics = [kafka] { return kafka->Metrics(); };
  {
    std::lock_guard lock(mu_);
    live_.push_back(entry);
    newest_ = entry;
  }
  // The close result is not a row's: nothing to record beyond the counters.
  return std::make_unique<Wrapper>(*this, std::move(entry), std::move(publisher),
                                   [kafka] { (void)kafka->Close(); });
}

void PublisherTally::Retire(const std::shared_ptr<Entry>& entry) {
  std::lock_guard lock(mu_);
  AddCounters(retired_, entry->metrics());
  std::erase(live_, entry);
  // Release the function (and what it captured) while the publisher exists.
  entry->metrics = nullptr;
}

kafka::PublisherMetrics PublisherTally::Total() const {
  std::lock_guard lock(mu_);
  kafka::PublisherMetrics total = retired_;
  for (const std::shared_ptr<Entry>& entry : live_) {
    const kafka::PublisherMetrics m = entry->metrics();
    AddCounters(total, m);
    total.in_flight += m.in_flight;
    total.queue_depth += m.queue_depth;
    total.latency_p50_us = m.latency_p50_us;  // the newest live one's: live_ is oldest first
    total.latency_p99_us = m.latency_p99_us;
  }
  return total;
}

bool PublisherTally::Fatal() const {
  std::lock_guard lock(mu_);
  return newest_ && newest_->fatal.load();
}

}  // namespace dispatch::relay
