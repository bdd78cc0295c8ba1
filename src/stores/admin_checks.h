// What the stores' OutboxAdmin implementations share: the checks of a
// command's arguments (each AdminArgumentError names the argument, the value
// and what is allowed, before anything is changed) and the message for ids
// that are not parked rows.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dispatch/outbox_admin.h"

namespace dispatch::admin {

// The most rows one command reads or changes in one transaction.
inline constexpr std::size_t kMaxBatch = 100'000;

inline void CheckCount(const char* command, const char* argument, std::size_t value) {
  if (value == 0 || value > kMaxBatch) {
    throw AdminArgumentError(std::string(command) + ": " + argument + " " + std::to_string(value) +
                             " is out of range; allowed: 1 to " + std::to_string(kMaxBatch));
  }
}

inline void CheckAfterId(std::int64_t after_id) {
  if (after_id < 0) {
    throw AdminArgumentError("parked: after_id " + std::to_string(after_id) +
                             " is negative; allowed: 0 (from the first row) or a row id");
  }
}

// A cut in the future would take rows that are not old at all (a negative
// age, a clock set wrong).
inline void CheckNotFuture(const char* command, const char* argument,
                           std::chrono::system_clock::time_point cut) {
  const auto now = std::chrono::system_clock::now();
  if (cut > now) {
    const auto ahead = std::chrono::duration_cast<std::chrono::milliseconds>(cut - now).count();
    throw AdminArgumentError(std::string(command) + ": " + argument + " is " +
                             std::to_string(ahead) +
                             " ms in the future (a negative age); allowed: a time not after now");
  }
}

// The ids of a request, ascending and once each; throws when the request
// selects nothing or is ambiguous.
inline std::vector<std::int64_t> RequeueIds(const RequeueRequest& request) {
  if (request.ids.empty() && request.topic.empty()) {
    throw AdminArgumentError(
        "requeue: nothing selected (no ids, no topic); allowed: the ids of parked rows, or a "
        "topic to requeue all its parked rows");
  }
  if (!request.ids.empty() && !request.topic.empty()) {
    throw AdminArgumentError("requeue: both ids and topic \"" + request.topic +
                             "\" given; allowed: one of the two");
  }
  std::vector<std::int64_t> ids = request.ids;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.size() > kMaxBatch) {
    throw AdminArgumentError("requeue: " + std::to_string(ids.size()) + " ids; allowed: at most " +
                             std::to_string(kMaxBatch));
  }
  for (std::int64_t id : ids) {
    if (id <= 0) {
      throw AdminArgumentError("requeue: id " + std::to_string(id) +
                               " is not a row id; allowed: positive ids of parked rows");
    }
  }
  return ids;
}

// `missing`: requested ids that are not parked rows (ascending).
[[noreturn]] inline void ThrowNotParked(const std::vector<std::int64_t>& missing) {
  std::string list;
  for (std::size_t i = 0; i < missing.size() && i < 20; ++i) {
    list += (i ? ", " : "") + std::to_string(missing[i]);
  }
  if (missing.size() > 20) list += ", ... (" + std::to_string(missing.size()) + " in all)";
  throw AdminArgumentError("requeue: " + std::string(missing.size() == 1 ? "id " : "ids ") + list +
                           (missing.size() == 1 ? " is" : " are") +
                           " not parked rows (pending, published or gone); allowed: ids of "
                           "parked rows; nothing was requeued");
}

// The ids of `wanted` (ascending) missing from `found` (ascending).
inline std::vector<std::int64_t> Missing(const std::vector<std::int64_t>& wanted,
                                         const std::vector<std::int64_t>& found) {
  std::vector<std::int64_t> missing;
  std::set_difference(wanted.begin(), wanted.end(), found.begin(), found.end(),
                      std::back_inserter(missing));
  return missing;
}

}  // namespace dispatch::admin
