#include "dispatcher.h"

#include <string>
#include <unordered_set>

namespace outbox {

dispatch::Message ToMessage(const Row& row) {
  dispatch::Message m{row.topic, row.aggregate_id, row.payload, row.headers};
  m.headers.push_back({"outbox-id", std::to_string(row.id)});
  return m;
}

Dispatcher::Dispatcher(Store& store, dispatch::Publisher& publisher, DispatcherOptions options)
    : store_(store), publisher_(publisher), options_(options) {}

RoundStats Dispatcher::RunOnce() {
  RoundStats stats;
  std::vector<Row> remaining = store_.FetchPending(options_.batch_size);
  stats.fetched = remaining.size();
  std::unordered_set<std::string> failed_keys;

  while (!remaining.empty()) {
    std::vector<Row> wave;
    std::vector<Row> later;
    std::unordered_set<std::string> in_wave;
    for (Row& row : remaining) {
      if (failed_keys.count(row.aggregate_id) != 0) {
        ++stats.deferred;
      } else if (!in_wave.insert(row.aggregate_id).second) {
        later.push_back(std::move(row));
      } else {
        wave.push_back(std::move(row));
      }
    }
    if (wave.empty()) break;

    std::vector<dispatch::Message> messages;
    messages.reserve(wave.size());
    for (const Row& row : wave) messages.push_back(ToMessage(row));
    const auto start = std::chrono::steady_clock::now();
    const std::vector<dispatch::Result> results =
        publisher_.PublishBatch(dispatch::Context::WithTimeout(options_.publish_timeout), messages);
    const double took_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

    std::vector<std::int64_t> published;
    std::vector<Failure> failures;
    for (std::size_t i = 0; i < wave.size(); ++i) {
      const dispatch::Result& r = results.at(i);
      stats.latencies_ms.push_back(took_ms);
      if (r.ok()) {
        published.push_back(wave[i].id);
        continue;
      }
      stats.last_error = r.message;
      failures.push_back({wave[i].id, r.message, r.permanent()});
      if (r.permanent()) {
        ++stats.parked;
      } else {
        ++stats.failed;
        failed_keys.insert(wave[i].aggregate_id);
      }
    }
    store_.Record(published, failures);
    stats.published += published.size();
    remaining = std::move(later);
  }
  return stats;
}

}  // namespace outbox
