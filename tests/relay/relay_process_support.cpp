#include "relay_process_support.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace dispatch::relay::test {

Finished RunRelay(const std::vector<std::string>& args, const std::vector<std::string>& env,
                  std::chrono::seconds timeout) {
  // Its whole stdout and stderr, to the end: ChildProcess reads lines, and the
  // effective configuration has blank ones.
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<std::string> env_strings = env;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings = {DISPATCH_RELAY_BINARY};
  arg_strings.insert(arg_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc =
      posix_spawn(&pid, DISPATCH_RELAY_BINARY, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    throw std::runtime_error("cannot start " DISPATCH_RELAY_BINARY);
  }
  Finished result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd fd{out[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&fd, 1, static_cast<int>(left.count())) <= 0) {
      kill(pid, SIGKILL);  // a hang: the test fails on the exit code
      break;
    }
    char chunk[4096];
    const ssize_t n = read(out[0], chunk, sizeof chunk);
    if (n <= 0) break;
    result.output.append(chunk, static_cast<std::size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

std::string WriteTempFile(const std::string& name, const std::string& content) {
  static int counter = 0;
  const std::string path = testing::TempDir() + "relay_" + std::to_string(getpid()) + "_" +
                           std::to_string(counter++) + "_" + name;
  std::ofstream(path) << content;
  return path;
}

std::pair<std::string, std::string> SplitPassword(const std::string& conninfo) {
  std::istringstream in(conninfo);
  std::string without;
  std::string password;
  for (std::string item; in >> item;) {
    if (item.rfind("password=", 0) == 0) {
      password = item.substr(9);
    } else {
      without += (without.empty() ? "" : " ") + item;
    }
  }
  return {without, password};
}

}  // namespace dispatch::relay::test
