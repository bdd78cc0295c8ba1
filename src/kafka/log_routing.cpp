#include "log_routing.h"

namespace dispatch::kafka::internal {

void CallLog(const LogHook& hook, LogLevel level, std::string_view facility,
             std::string_view message, std::string_view broker) {
  if (!hook) return;
  try {
    hook(LogEntry{level, facility, message, broker});
  } catch (...) {
    // A throwing hook must not unwind into librdkafka's threads.
  }
}

void CallStatistics(const StatisticsHook& hook, std::string_view json) {
  if (!hook) return;
  try {
    hook(json);
  } catch (...) {
    // As with the log hook: never unwind into librdkafka.
  }
}

std::pair<std::string_view, std::string_view> SplitBroker(std::string_view text) {
  constexpr std::string_view kPrefix = "[thrd:";
  if (text.substr(0, kPrefix.size()) != kPrefix) return {{}, text};
  const auto end = text.find("]: ");
  if (end == std::string_view::npos) return {{}, text};
  const std::string_view thread = text.substr(kPrefix.size(), end - kPrefix.size());
  const std::string_view rest = text.substr(end + 3);
  const bool is_broker =
      !thread.empty() && thread.front() != ':' && thread.find(':') != std::string_view::npos;
  return {is_broker ? thread : std::string_view(), rest};
}

}  // namespace dispatch::kafka::internal
