// The order check of the hot-key tests: per key, the first copy of each row
// (by its outbox-id header) must appear in its partition in row id order,
// and every expected row must be there. Later copies (duplicates) are
// allowed anywhere after the first. The check compares each key's sequence
// of first copies with the key's expected row ids, so a missing row, a row
// of another key, a key split over partitions or a later row written before
// an earlier one is reported (KeyOrderCheck.* in tests/unit/key_order_test.cpp
// shows that it is).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dispatch/testing/embedded_kafka.h"

namespace dispatch::suite {

// The row id a record carries in `id_header`; -1 when it has none.
inline std::int64_t OutboxIdOf(const dispatch::testing::Record& record,
                               const std::string& id_header = "outbox-id") {
  for (const auto& h : record.headers) {
    if (h.key == id_header) return std::stoll(h.value);
  }
  return -1;
}

struct KeyOrderReport {
  std::vector<std::string> problems;  // empty when the rule holds
  std::size_t records = 0;
  std::size_t duplicates = 0;  // copies after the first
};

// `expected` maps each row id that must be in Kafka to its key; the ids of
// one key are expected in increasing order. `records` as kcat read them (any
// order: they are sorted by partition and offset here).
inline KeyOrderReport CheckKeyOrder(std::vector<dispatch::testing::Record> records,
                                    const std::map<std::int64_t, std::string>& expected) {
  KeyOrderReport report;
  report.records = records.size();
  std::stable_sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  std::map<std::string, std::vector<std::int64_t>> want;  // key -> ids in order
  for (const auto& [id, key] : expected) want[key].push_back(id);
  std::map<std::string, std::vector<std::int64_t>> got;  // key -> first copies in log order
  std::map<std::string, std::set<std::int32_t>> partitions_of;
  std::set<std::int64_t> seen;
  const auto problem = [&](std::string text) {
    if (report.problems.size() < 20) report.problems.push_back(std::move(text));
  };
  for (const auto& r : records) {
    const std::int64_t id = OutboxIdOf(r);
    const auto it = expected.find(id);
    if (it == expected.end()) {
      problem("a record with an unexpected row id " + std::to_string(id) + " at " +
              std::to_string(r.partition) + "/" + std::to_string(r.offset));
      continue;
    }
    if (r.key != it->second) {
      problem("row " + std::to_string(id) + " under key '" + r.key.value_or("<null>") +
              "', expected '" + it->second + "'");
      continue;
    }
    partitions_of[it->second].insert(r.partition);
    if (!seen.insert(id).second) {
      ++report.duplicates;
      continue;
    }
    got[it->second].push_back(id);
  }
  for (const auto& [key, ids] : want) {
    if (partitions_of[key].size() > 1) {
      problem("key '" + key + "' is in " + std::to_string(partitions_of[key].size()) +
              " partitions");
    }
    const std::vector<std::int64_t>& firsts = got[key];
    if (firsts == ids) continue;
    const auto [w, g] = std::mismatch(ids.begin(), ids.end(), firsts.begin(), firsts.end());
    const std::size_t at = static_cast<std::size_t>(w - ids.begin());
    std::string text =
        "key '" + key + "': " + std::to_string(firsts.size()) + " first copies for " +
        std::to_string(ids.size()) + " rows; first difference at position " + std::to_string(at) +
        ": expected row " + (w == ids.end() ? std::string("<none>") : std::to_string(*w)) +
        ", found " + (g == firsts.end() ? std::string("<none>") : std::to_string(*g));
    if (at > 0) text += " (after row " + std::to_string(ids[at - 1]) + ")";
    problem(std::move(text));
  }
  return report;
}

}  // namespace dispatch::suite
