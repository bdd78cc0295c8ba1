// The operator commands over a fake OutboxAdmin: what they print, the exit
// code, and that a bad argument reaches no store.
#include "relay/commands.h"

#include <gtest/gtest.h>

#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "fake_admin.h"

namespace dispatch::relay {
namespace {

using test::FakeAdmin;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::hours(480000));

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome Execute(FakeAdmin& admin, const std::string& name, std::vector<std::string> args) {
  std::ostringstream out;
  std::ostringstream err;
  CommandContext ctx{out, err, [] { return kNow; }};
  const int code = RunCommand({name, std::move(args)}, admin, ctx);
  return {code, out.str(), err.str()};
}

TEST(RelayCommands, StatusPrintsRowsPerStateAndTheOldestPendingAge) {
  FakeAdmin admin;
  admin.status = {12, 3, 4000, true, kNow - std::chrono::seconds(90)};
  const Outcome r = Execute(admin, "status", {});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out,
            "pending 12\nparked 3\npublished 4000 (estimate)\n"
            "oldest_pending_age 1m30s (created 2024-10-03T23:58:30Z)\n")
      << r.out;
}

TEST(RelayCommands, ParkedListsRowsAndPassesItsFilters) {
  FakeAdmin admin;
  admin.parked = {{7, "order-1", "orders", 3, "too large", kNow, kNow},
                  {9, "order-2", "orders", 1, "unknown topic", std::nullopt, kNow}};
  const Outcome r = Execute(admin, "parked", {"--topic", "orders", "--limit", "2", "--after", "5"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(admin.parked_topic, "orders");
  EXPECT_EQ(admin.parked_limit, 2u);
  EXPECT_EQ(admin.parked_after, 5);
  EXPECT_NE(r.out.find("7\torder-1\torders\t3\t2024-10-04T00:00:00Z\ttoo large\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("9\torder-2\torders\t1\tunknown\tunknown topic\n"), std::string::npos);
  EXPECT_NE(r.out.find("--after 9"), std::string::npos) << r.out;
}

TEST(RelayCommands, RequeueOutOfOrderNeedsTheFlagAndChangesNothingWithout) {
  FakeAdmin admin;
  admin.requeue_result = {{4, 8}, {4}};
  Outcome r = Execute(admin, "requeue", {"--ids", "4,8"});
  EXPECT_EQ(r.code, kExitNeedsFlag);
  EXPECT_NE(r.err.find("reaches Kafka after those later rows of its key"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--allow-out-of-order"), std::string::npos);
  ASSERT_EQ(admin.requeues.size(), 1u);
  EXPECT_EQ(admin.requeues[0].ids, (std::vector<std::int64_t>{4, 8}));
  EXPECT_FALSE(admin.requeues[0].allow_out_of_order);

  r = Execute(admin, "requeue", {"--ids", "4,8", "--allow-out-of-order"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_TRUE(admin.requeues[1].allow_out_of_order);
  EXPECT_NE(r.out.find("requeued 2 row(s): 4,8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rows 4 reach Kafka after later rows of their key"), std::string::npos);
}

TEST(RelayCommands, RequeueByTopic) {
  FakeAdmin admin;
  admin.requeue_result = {{5}, {}};
  const Outcome r = Execute(admin, "requeue", {"--topic", "orders"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(admin.requeues.at(0).topic, "orders");
  EXPECT_TRUE(admin.requeues.at(0).ids.empty());
}

TEST(RelayCommands, TheStoresRefusalIsABadArgument) {
  FakeAdmin admin;
  admin.requeue_argument_error = "ids: 99 is not a parked row";
  const Outcome r = Execute(admin, "requeue", {"--ids", "99"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("99 is not a parked row (nothing changed)"), std::string::npos) << r.err;
}

TEST(RelayCommands, AStoreErrorIsARuntimeFailure) {
  FakeAdmin admin;
  admin.store_error = "Status: connection refused";
  const Outcome r = Execute(admin, "status", {});
  EXPECT_EQ(r.code, kExitRuntime);
  EXPECT_NE(r.err.find("connection refused"), std::string::npos);
}

TEST(RelayCommands, PurgeDeletesParkedRowsOlderThanTheAge) {
  FakeAdmin admin;
  const Outcome r = Execute(admin, "purge", {"--older-than", "7d", "--batch", "100"});
  EXPECT_EQ(r.code, kExitOk);
  ASSERT_EQ(admin.purge_before.size(), 1u);
  EXPECT_EQ(admin.purge_before[0], kNow - std::chrono::hours(168));
  EXPECT_EQ(admin.purge_batches[0], 100u);
  EXPECT_NE(r.out.find("purged 3 parked row(s)"), std::string::npos);
}

struct BadArguments {
  const char* name;
  std::string command;
  std::vector<std::string> args;
  std::string expected;
};

// Names the case in test listings (ctest shows GetParam()).
void PrintTo(const BadArguments& c, std::ostream* os) { *os << c.name; }

class RelayCommandArguments : public testing::TestWithParam<BadArguments> {};

TEST_P(RelayCommandArguments, AreRefusedBeforeAnyStoreCall) {
  const BadArguments& c = GetParam();
  FakeAdmin admin;
  admin.store_error = "the store was called";
  std::ostringstream out;
  std::ostringstream err;
  CommandContext ctx{out, err, [] { return kNow; }};
  EXPECT_EQ(CheckArguments({c.command, c.args}, ctx), kExitUsage);
  const Outcome r = Execute(admin, c.command, c.args);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("the store was called"), std::string::npos);
  EXPECT_TRUE(admin.requeues.empty());
  EXPECT_TRUE(admin.purge_before.empty());
}

const BadArguments kBadArguments[] = {
    {"RequeueNothing", "requeue", {}, "either --ids ID,... or --topic TOPIC"},
    {"RequeueBoth", "requeue", {"--ids", "1", "--topic", "t"}, "one of the two"},
    {"RequeueBadId", "requeue", {"--ids", "1,x"}, "--ids \"1,x\": expected row ids"},
    {"RequeueNegativeId", "requeue", {"--ids", "-4"}, "expected row ids"},
    {"PurgeWithoutAge", "purge", {}, "--older-than"},
    {"PurgeBadAge", "purge", {"--older-than", "a week"}, "--older-than \"a week\""},
    {"PurgeBatch", "purge", {"--older-than", "1d", "--batch", "0"}, "from 1 to 100000"},
    {"ParkedLimit", "parked", {"--limit", "0"}, "--limit \"0\""},
    {"ParkedValueMissing", "parked", {"--topic"}, "a value after it"},
    {"StatusExtra", "status", {"--all"}, "an argument of status"},
    {"FlagOfAnotherCommand",
     "purge",
     {"--older-than", "1d", "--allow-out-of-order"},
     "an argument of purge"},
};

INSTANTIATE_TEST_SUITE_P(Relay, RelayCommandArguments, testing::ValuesIn(kBadArguments),
                         [](const testing::TestParamInfo<BadArguments>& param) {
                           return std::string(param.param.name);
                         });

}  // namespace
}  // namespace dispatch::relay
