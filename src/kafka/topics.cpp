// Topics named up front (Prepare): each looked up with a metadata request
// of its own before its first message.
#include <algorithm>
#include <thread>

#include "internal.h"
#include "publisher_impl.h"

namespace dispatch::kafka {
namespace {

using Clock = Context::Clock;

// How long Prepare waits for a topic's metadata when neither the context nor
// the write timeout bounds it.
constexpr auto kPrepareTimeout = std::chrono::seconds(10);

// Prepare's lookups run in slices of this length, so that Close and a stop
// request wait at most one slice for it.
constexpr std::chrono::milliseconds kPrepareSlice(200);
// Prepare's pause before asking again after an answer that may change.
constexpr std::chrono::milliseconds kPrepareRetryPause(50);

// The longest a call waits for its own lookup of a topic it names first:
// the wait on librdkafka's metadata timer that the lookup replaces.
constexpr std::chrono::seconds kFirstLookupBound(1);

// The topic's own error in a metadata answer; a topic without partitions
// or missing from the answer is unknown.
RdKafka::ErrorCode TopicError(const RdKafka::Metadata& metadata, const std::string& topic) {
  for (const RdKafka::TopicMetadata* t : *metadata.topics()) {
    if (t->topic() != topic) continue;
    if (t->err() == RdKafka::ERR_NO_ERROR && t->partitions()->empty()) break;
    return t->err();
  }
  return RdKafka::ERR_UNKNOWN_TOPIC_OR_PART;
}

}  // namespace

// Looks each topic up with a metadata request of its own, so that the
// producer knows its partitions and leaders before the first message (the
// first produce to an unseen topic otherwise waits for that lookup: about
// 1 s on librdkafka before 2.10.1). The topic handles stay with the
// publisher until Close, so librdkafka keeps what it learned.
std::vector<Result> KafkaPublisher::Impl::Prepare(const Context& ctx,
                                                  std::span<const std::string> topics) {
  std::vector<Result> results;
  results.reserve(topics.size());
  for (const std::string& topic : topics) {
    if (auto early = Refuse(ctx)) {
      results.push_back(*std::move(early));
      continue;
    }
    results.push_back(PrepareOne(ctx, topic));
  }
  return results;
}

Result KafkaPublisher::Impl::PrepareOne(const Context& ctx, const std::string& topic) {
  if (auto problem = internal::TopicNameProblem(topic)) {
    return Result::Error(ErrorCode::kInvalidMessage, Delivery::kNotDelivered, false,
                         "invalid topic: " + *problem);
  }
  {
    const std::lock_guard lock(topics_mu_);
    seen_topics_.insert(topic);  // a later call need not look it up again
  }
  // Counted as producing, so Close keeps the producer until this returns;
  // the lookup runs in slices so that Close and the stop token wait at most
  // one slice.
  producing_.fetch_add(1);
  struct Done {
    std::atomic<int>& producing;
    ~Done() { producing.fetch_sub(1); }
  } done{producing_};
  if (closed_.load()) return internal::ClosedResult();
  std::string errstr;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(producer_.get(), topic, nullptr, errstr));
  if (!handle) {
    return Result::Error(
        ErrorCode::kInternal, Delivery::kNotDelivered, true,
        "cannot create a topic handle for " + internal::Printable(topic) + ": " + errstr);
  }
  // The context's deadline bounds the lookup, else the write timeout,
  // else kPrepareTimeout.
  const Clock::time_point deadline = ctx.deadline().value_or(
      Clock::now() + (write_timeout_.count() > 0 ? Clock::duration(write_timeout_)
                                                 : Clock::duration(kPrepareTimeout)));
  // Asks again while the answer may still change: no broker reached yet,
  // or the topic's leader not elected yet.
  RdKafka::ErrorCode err = RdKafka::ERR__TIMED_OUT;
  for (;;) {
    if (closed_.load()) return internal::ClosedResult();
    if (ctx.Cancelled()) {
      return Result::Error(
          ErrorCode::kCancelled, Delivery::kNotDelivered, true,
          "prepare: cancelled while looking up topic " + internal::Printable(topic));
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    RdKafka::Metadata* raw = nullptr;
    err = producer_->metadata(false, handle.get(), &raw,
                              static_cast<int>(std::min(left, kPrepareSlice).count()));
    const std::unique_ptr<RdKafka::Metadata> metadata(raw);
    if (err == RdKafka::ERR_NO_ERROR) err = TopicError(*metadata, topic);
    if (err != RdKafka::ERR__TIMED_OUT && err != RdKafka::ERR__TRANSPORT &&
        err != RdKafka::ERR_LEADER_NOT_AVAILABLE) {
      break;
    }
    // A refused connection answers at once: do not spin on it.
    std::this_thread::sleep_for(std::min(left, kPrepareRetryPause));
  }
  std::lock_guard lock(topics_mu_);
  topics_.try_emplace(topic, std::move(handle));
  if (err == RdKafka::ERR_NO_ERROR) return Result::Delivered();
  Result r = internal::MapError(err, internal::Persisted::kNot, topic, "");
  if (Clock::now() >= deadline) {
    r = Result::Error(ErrorCode::kDeadlineExceeded, Delivery::kNotDelivered, true,
                      "deadline_exceeded: no metadata for topic " + internal::Printable(topic) +
                          " before the deadline; last answer: " + RdKafka::err2str(err));
  }
  r.message = "prepare: " + r.message;
  r.delivery = Delivery::kNotDelivered;  // nothing was produced
  return r;
}

// librdkafka before 2.10.1 holds the first message to a topic it has not
// seen in its queue until its metadata timer fires (about 1 s), even though
// the topic exists. The first call that names such a topic (FirstToName:
// once per topic and publisher) looks it up as Prepare does, after handing
// its messages over and before it waits for their reports: the answer sends
// them, and those of callers that named the topic meanwhile, on their way.
// The lookup is bounded by the call's own deadline (its context's or its
// write timeout's) and by kFirstLookupBound, the wait it replaces. Its answer is not the call's:
// the delivery reports say what became of each message, as they would without it.
bool KafkaPublisher::Impl::FirstToName(const std::string& topic) {
  const std::lock_guard lock(topics_mu_);
  return seen_topics_.insert(topic).second;
}

void KafkaPublisher::Impl::LookUp(const Context& ctx, std::optional<Clock::time_point> deadline,
                                  const std::string& topic) {
  topic_lookups_.fetch_add(1, std::memory_order_relaxed);
  Context bounded = Context::WithTimeout(kFirstLookupBound, ctx);
  if (deadline) bounded = Context::WithDeadline(*deadline, bounded);
  (void)PrepareOne(bounded, topic);
}

// librdkafka marks a topic missing when a metadata answer lacks it, and
// from then on fails produce() for it at once with _UNKNOWN_TOPIC, until a
// metadata answer finds it (rdkafka_msg.c, rd_kafka_msg_partitioner: state
// NOTEXISTS): a topic created after a publish to it failed stayed unknown to
// the publisher for a minute and more, also with
// topic.metadata.refresh.interval.ms=1000. So a message refused as unknown
// asks the cluster again, with a metadata request of its own, before the
// answer is permanent: if the topic exists now, the message is produced
// again. The lookup is bounded as Prepare's is (the call's deadline, else its
// write timeout); a topic still missing costs the call one round trip per
// topic (the caller skips the lookup for a topic this call has seen missing).
// Returns what Produce returns: nullopt when the message is in librdkafka's
// hands.
std::optional<Result> KafkaPublisher::Impl::ProduceIfFoundAgain(const Message& m,
                                                                internal::Slot& slot,
                                                                const Context& ctx,
                                                                Result unknown) {
  const Clock::time_point now = Clock::now();
  Clock::time_point deadline = WriteDeadline(now).value_or(now + Clock::duration(kPrepareTimeout));
  if (ctx.deadline()) deadline = std::min(deadline, *ctx.deadline());
  const Context bounded = Context::WithDeadline(deadline, ctx);
  for (;;) {
    if (!PrepareOne(bounded, m.topic).ok()) return unknown;  // still missing: the answer stands
    // librdkafka has read the answer. It may still hold the topic missing
    // for up to topic.metadata.propagation.max.ms after it marked it so
    // (2.14.2: rd_kafka_topic_set_exists, when the answer carries the topic
    // id it had, as a cluster that gives no ids does): try again until the
    // deadline.
    std::optional<Result> again = Produce(m, slot, ctx);
    if (!again || again->code != ErrorCode::kUnknownTopic) return again;
    if (Clock::now() + kPrepareRetryPause >= deadline) return again;
    std::this_thread::sleep_for(kPrepareRetryPause);
  }
}

}  // namespace dispatch::kafka
