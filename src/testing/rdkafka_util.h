// librdkafka plumbing shared by the embedded cluster (src/testing), the test
// suite (tests/) and the benchmarks (bench/), so that each exists once. Not
// installed: it includes librdkafka, which the public headers do not.
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <vector>

namespace dispatch::testing::internal {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
// An owned librdkafka client: destroying it destroys the client.
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

// The entries of a comma-separated list (a bootstrap string, node ids), empty
// ones dropped: "a,,b" gives {"a", "b"}.
inline std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  for (std::size_t start = 0, comma; start <= list.size(); start = comma + 1) {
    comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) out.push_back(list.substr(start, comma - start));
  }
  return out;
}

}  // namespace dispatch::testing::internal
