// Plumbing of the relay's HTTP tests: an HTTP client (civetweb's), a child
// process with its input and output, a free port, a temporary folder.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace dispatch::relay::test {

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused, ...); error says why
  std::string content_type;
  std::string body;
  std::string error;
};

// GET http://<host>:<port><path>, HTTP/1.0, bounded by civetweb's timeouts.
HttpAnswer HttpGet(int port, const std::string& path, const std::string& host = "127.0.0.1",
                   const std::string& method = "GET");

struct RunResult {
  int exit_code = -1;  // -1: killed or not run
  std::string output;  // stdout and stderr together
};

// Runs `path` with `args`, writes `input` to its stdin and closes it; kills
// it if it has not exited within `timeout`.
RunResult RunWithInput(const std::string& path, const std::vector<std::string>& args,
                       const std::string& input, std::chrono::seconds timeout);

// A server process whose output goes to `log`; the destructor stops it
// (SIGTERM, then SIGKILL after 10 s).
class ServerProcess {
 public:
  ServerProcess(const std::string& path, const std::vector<std::string>& args,
                const std::filesystem::path& log);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Whether it has exited (reaped); false while it runs.
  bool Exited();

 private:
  pid_t pid_ = -1;
};

// A loopback port that was free a moment ago.
int FreePort();

// A fresh folder under the temporary directory, removed with its content.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace dispatch::relay::test
