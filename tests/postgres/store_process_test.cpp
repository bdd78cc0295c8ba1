// Several dispatcher processes (postgres_claimer, claimer_main.cpp) on one
// outbox table, and one that dies holding a claim.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <sstream>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "postgres/child_process.h"
#include "postgres/claim_worker.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;
constexpr auto kPromptly = std::chrono::seconds(10);

std::vector<std::int64_t> ParseIds(const std::string& line, const std::string& prefix) {
  std::vector<std::int64_t> ids;
  if (line.rfind(prefix, 0) != 0) return ids;
  std::istringstream in(line.substr(prefix.size()));
  for (std::int64_t id; in >> id;) ids.push_back(id);
  return ids;
}

TEST(PostgresSeveralProcesses, ClaimerProcessesPublishEveryRowOnceAndEachKeyInIdOrder) {
  ScratchDatabase db;
  CreateBookkeeping(db.Conninfo());
  AppendRowsOfKeys(db.Conninfo(), 600, 17);

  std::vector<std::unique_ptr<ChildProcess>> claimers;
  for (int i = 0; i < 3; ++i)
    claimers.push_back(std::make_unique<ChildProcess>(
        DISPATCH_POSTGRES_CLAIMER, std::vector<std::string>{"drain", "25"},
        std::vector<std::string>{"DISPATCH_POSTGRES_CONNINFO=" + db.Conninfo()}));
  for (auto& c : claimers) {
    const std::string line = c->ReadLine(std::chrono::seconds(60));
    EXPECT_NE(line.find(" overlaps 0"), std::string::npos) << line;
    const int status = c->Wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_EQ(PublicationProblems(db.Conninfo(), 600), "");
}

TEST(PostgresSeveralProcesses, AProcessKilledHoldingAClaimReleasesItsRowsPromptlyUnmarked) {
  ScratchDatabase db;
  PostgresStore survivor(db.Conninfo());
  const auto ids = survivor.Append({Row("a"), Row("a"), Row("b")});
  ChildProcess doomed(DISPATCH_POSTGRES_CLAIMER, {"hold", "10"},
                      {"DISPATCH_POSTGRES_CONNINFO=" + db.Conninfo()});
  ASSERT_EQ(ParseIds(doomed.ReadLine(kPromptly), "claimed"), ids);
  ASSERT_TRUE(survivor.Claim(10, Clock::now()).empty());

  doomed.Signal(SIGKILL);
  doomed.Wait();
  EXPECT_EQ(ClaimWhenFree(survivor, kPromptly), ids);
  survivor.Release();
  EXPECT_EQ(survivor.Ids(RowState::kPending), ids);
  EXPECT_EQ(Query(db.Conninfo(), "SELECT sum(attempts) FROM outbox"), "0");
}

}  // namespace
}  // namespace dispatch::test
