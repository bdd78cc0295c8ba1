// Routing of librdkafka's log lines and statistics to the user's hooks.
#pragma once

#include <string_view>
#include <utility>

#include "dispatch/kafka/config.h"

namespace dispatch::kafka::internal {

// Calls `hook`, if set, and swallows what it throws: a throwing hook must not
// unwind into librdkafka's threads.
void CallLog(const LogHook& hook, LogLevel level, std::string_view facility,
             std::string_view message, std::string_view broker = {});

// Calls `hook`, if set, with librdkafka's statistics JSON; as CallLog, it
// never lets an exception through.
void CallStatistics(const StatisticsHook& hook, std::string_view json);

// Splits librdkafka's thread prefix off a log line ("[thrd:NAME]: text"):
// {broker, text}, where broker is the thread's name when that thread serves a
// broker ("host:port/id" or "proto://host:port/id"), empty otherwise ("main",
// "app", the internal broker ":0/internal", or no prefix).
std::pair<std::string_view, std::string_view> SplitBroker(std::string_view text);

}  // namespace dispatch::kafka::internal
