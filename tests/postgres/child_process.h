// A helper process of a test (postgres_claimer, outbox_worker) whose stdout
// the test reads line by line. Its stdin stays open until it is destroyed;
// destroying it kills the process if it still runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace dispatch::test {

class ChildProcess {
 public:
  // Starts `path` with `args` and this process's environment plus `env`
  // ("NAME=value"; the way to hand it a password, which argv would show to
  // `ps`). Throws std::runtime_error.
  ChildProcess(const std::string& path, const std::vector<std::string>& args,
               const std::vector<std::string>& env);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of its output, or "" when none came within `timeout`.
  std::string ReadLine(std::chrono::milliseconds timeout);
  void Signal(int signal);
  // Waits for the exit; returns the status as waitpid reports it.
  int Wait();

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
  int stdin_ = -1;
  std::string buffer_;
};

}  // namespace dispatch::test
