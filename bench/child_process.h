// Starting another program from a benchmark and reading what it prints: the
// one way both do it (B8 starts outbox_worker and outbox_demo, the memory
// curve of bench/scaling runs itself once per side). posix_spawn rather than
// fork and exec: it is safe after the benchmark has started threads.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace bench {

// Starts `args` (args[0] a path) with its stdout on /dev/null or, with
// `out`, on a pipe whose read end `out` receives (read it with ReadAll);
// stderr stays this process's. Returns the pid; throws when it cannot start.
inline pid_t Spawn(const std::vector<std::string>& args, int* out = nullptr) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int pipe_fds[2] = {-1, -1};
  if (out != nullptr) {
    if (pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  }
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (out != nullptr) {
    close(pipe_fds[1]);
    *out = pipe_fds[0];
  }
  if (rc != 0) {
    if (out != nullptr) close(*out);
    throw std::runtime_error("cannot start " + args[0]);
  }
  return pid;
}

// Reads `fd` to its end, then closes it.
inline std::string ReadAll(int fd) {
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fd);
  return text;
}

// Runs `args` to its end and returns what it printed on stdout; `status`
// receives its wait status (waitpid's).
inline std::string RunToEnd(const std::vector<std::string>& args, int& status) {
  int out = -1;
  const pid_t pid = Spawn(args, &out);
  std::string text = ReadAll(out);
  waitpid(pid, &status, 0);
  return text;
}

}  // namespace bench
