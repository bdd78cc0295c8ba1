// Several dispatcher processes (postgres_claimer, claimer_main.cpp) on one
// outbox table, and one that dies holding a claim.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "postgres/claim_worker.h"
#include "postgres/postgres_test_support.h"

extern char** environ;

namespace dispatch::test {
namespace {

using Clock = std::chrono::system_clock;
constexpr auto kPromptly = std::chrono::seconds(10);

// A postgres_claimer process whose stdout the test reads line by line.
class Claimer {
 public:
  Claimer(const std::string& conninfo, const std::string& mode, std::size_t n) {
    int out[2];
    int in[2];
    if (pipe(out) != 0 || pipe(in) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    std::vector<std::string> env_strings = {"DISPATCH_POSTGRES_CONNINFO=" + conninfo};
    for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
    std::vector<char*> env;
    for (auto& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    std::string path = DISPATCH_POSTGRES_CLAIMER;
    std::string count = std::to_string(n);
    std::string mode_arg = mode;
    char* argv[] = {path.data(), mode_arg.data(), count.data(), nullptr};
    const int rc = posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv, env.data());
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(in[0]);
    stdout_ = out[0];
    stdin_ = in[1];
    if (rc != 0) throw std::runtime_error("cannot start " + path);
  }

  ~Claimer() {
    close(stdin_);
    close(stdout_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // The next line of output, or "" when none came within `timeout`.
  std::string ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd fd{stdout_, POLLIN, 0};
      if (left.count() <= 0 || poll(&fd, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[512];
      const ssize_t n = read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Waits for the exit; returns its status as waitpid reports it.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  void Kill() {
    kill(pid_, SIGKILL);
    Wait();
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
  int stdin_ = -1;
  std::string buffer_;
};

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

  std::vector<std::unique_ptr<Claimer>> claimers;
  for (int i = 0; i < 3; ++i)
    claimers.push_back(std::make_unique<Claimer>(db.Conninfo(), "drain", 25));
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
  Claimer doomed(db.Conninfo(), "hold", 10);
  ASSERT_EQ(ParseIds(doomed.ReadLine(kPromptly), "claimed"), ids);
  ASSERT_TRUE(survivor.Claim(10, Clock::now()).empty());

  doomed.Kill();
  EXPECT_EQ(ClaimWhenFree(survivor, kPromptly), ids);
  survivor.Release();
  EXPECT_EQ(survivor.Ids(PostgresStore::State::kPending), ids);
  EXPECT_EQ(Query(db.Conninfo(), "SELECT sum(attempts) FROM outbox"), "0");
}

}  // namespace
}  // namespace dispatch::test
