// Plumbing of the relay's HTTP tests: an HTTP client (civetweb's), a child
// process with its input and output, a free port, a temporary folder, a
// Prometheus server that scrapes one target.
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

// A real Prometheus server (Debian's /usr/bin/prometheus at `binary`) on a
// free loopback port, with its config and storage under `dir`, scraping
// 127.0.0.1:<target_port> every second as job "dispatch-relay". A Prometheus
// service on this machine (Debian's listens on 9090) is neither used nor
// touched. The destructor stops it.
class PrometheusServer {
 public:
  PrometheusServer(const std::string& binary, const std::filesystem::path& dir, int target_port);
  // Whether it has exited; false while it runs.
  bool Exited() { return process_.Exited(); }
  // Its log so far (for a failure message).
  std::string Log() const;
  // The value of the instant query's first sample (`query` URL-encoded), or
  // "" while there is none; `last_answer` gets the answer's body or error.
  std::string QueryValue(const std::string& query, std::string& last_answer) const;

 private:
  std::filesystem::path dir_;
  int port_;
  ServerProcess process_;
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
