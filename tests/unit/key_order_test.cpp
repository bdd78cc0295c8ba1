// The order check of the real-Kafka hot-key and crash tests
// (tests/kafka/key_order.h), without a cluster: it must fail on each way the
// rule can break, and pass duplicates that come after the first copy.
#include "kafka/key_order.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

namespace dispatch::suite {
namespace {

using dispatch::testing::Record;

// A record of `key` carrying row `id`, at `partition`/`offset`.
Record At(std::int32_t partition, std::int64_t offset, const std::string& key, std::int64_t id) {
  Record r;
  r.partition = partition;
  r.offset = offset;
  r.key = key;
  r.value = "row " + std::to_string(id);
  r.headers.push_back({"outbox-id", std::to_string(id)});
  return r;
}

TEST(KeyOrderCheck, PassesFirstCopiesInOrderWithLaterDuplicates) {
  const std::map<std::int64_t, std::string> expected{{1, "a"}, {2, "b"}, {3, "a"}, {4, "a"}};
  const KeyOrderReport report =
      CheckKeyOrder({At(0, 0, "a", 1), At(1, 0, "b", 2), At(0, 1, "a", 3), At(0, 2, "a", 1),
                     At(0, 3, "a", 4), At(0, 4, "a", 3)},
                    expected);
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  EXPECT_EQ(report.duplicates, 2u);
}

TEST(KeyOrderCheck, FailsALaterRowFirstAMissingRowAndASplitKey) {
  const std::map<std::int64_t, std::string> expected{{1, "a"}, {2, "a"}, {3, "a"}};
  // Row 2's first copy before row 1's: a later copy of 1 does not mend it.
  EXPECT_EQ(CheckKeyOrder({At(0, 0, "a", 2), At(0, 1, "a", 1), At(0, 2, "a", 3), At(0, 3, "a", 2)},
                          expected)
                .problems.size(),
            1u);
  // Row 2 missing.
  EXPECT_EQ(CheckKeyOrder({At(0, 0, "a", 1), At(0, 1, "a", 3)}, expected).problems.size(), 1u);
  // The key in two partitions, in order within each.
  EXPECT_FALSE(CheckKeyOrder({At(0, 0, "a", 1), At(1, 0, "a", 2), At(0, 1, "a", 3)}, expected)
                   .problems.empty());
  // A row under the wrong key, and one that no row explains.
  EXPECT_FALSE(CheckKeyOrder({At(0, 0, "a", 1), At(0, 1, "b", 2), At(0, 2, "a", 3)}, expected)
                   .problems.empty());
  EXPECT_FALSE(
      CheckKeyOrder({At(0, 0, "a", 1), At(0, 1, "a", 2), At(0, 2, "a", 3), At(0, 3, "a", 9)},
                    expected)
          .problems.empty());
}

}  // namespace
}  // namespace dispatch::suite
