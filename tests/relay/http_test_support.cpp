#include "http_test_support.h"

#include <civetweb.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace dispatch::relay::test {
namespace {

std::vector<char*> Argv(const std::string& path, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// waitpid with a bound; true when reaped (status set).
bool WaitFor(pid_t pid, int& status, std::chrono::milliseconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return true;  // already reaped
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Writes the server's config under `dir` and returns its command line.
std::vector<std::string> PrometheusArgs(const std::filesystem::path& dir, int port,
                                        int target_port) {
  std::ofstream config(dir / "prometheus.yml");
  config << "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: dispatch-relay\n"
            "    static_configs:\n"
            "      - targets: ['127.0.0.1:"
         << target_port << "']\n";
  return {"--config.file=" + (dir / "prometheus.yml").string(),
          "--storage.tsdb.path=" + (dir / "data").string(),
          "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"};
}

}  // namespace

HttpAnswer HttpGet(int port, const std::string& path, const std::string& host,
                   const std::string& method) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  HttpAnswer answer;
  std::array<char, 256> error{};
  mg_connection* conn =
      mg_download(host.c_str(), port, 0, error.data(), error.size(),
                  "%s %s HTTP/1.0\r\nHost: %s\r\n\r\n", method.c_str(), path.c_str(), host.c_str());
  if (conn == nullptr) {
    answer.error = error.data();
    return answer;
  }
  const mg_response_info* info = mg_get_response_info(conn);
  answer.status = info->status_code;
  for (int i = 0; i < info->num_headers; ++i) {
    if (strcasecmp(info->http_headers[i].name, "Content-Type") == 0) {
      answer.content_type = info->http_headers[i].value;
    }
  }
  if (method != "HEAD") {
    std::array<char, 4096> buf{};
    int n = 0;
    while ((n = mg_read(conn, buf.data(), buf.size())) > 0) {
      answer.body.append(buf.data(), static_cast<std::size_t>(n));
    }
  }
  mg_close_connection(conn);
  return answer;
}

RunResult RunWithInput(const std::string& path, const std::vector<std::string>& args,
                       const std::string& input, std::chrono::seconds timeout) {
  int in[2];
  int out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  std::vector<char*> argv = Argv(path, args);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    throw std::system_error(rc, std::generic_category(), "posix_spawn " + path);
  }
  // Small inputs: the pipe holds 64 KiB; write in a thread so a child that
  // writes before it reads cannot deadlock with us.
  std::thread writer([fd = in[1], &input] {
    std::size_t done = 0;
    while (done < input.size()) {
      const ssize_t n = write(fd, input.data() + done, input.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    close(fd);
  });
  RunResult result;
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::array<char, 4096> buf{};
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = read(out[0], buf.data(), buf.size());
    if (n <= 0) break;
    result.output.append(buf.data(), static_cast<std::size_t>(n));
  }
  close(out[0]);
  int status = 0;
  if (!WaitFor(pid, status, std::chrono::milliseconds(100))) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  writer.join();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

ServerProcess::ServerProcess(const std::string& path, const std::vector<std::string>& args,
                             const std::filesystem::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv = Argv(path, args);
  const int rc = posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn " + path);
}

ServerProcess::~ServerProcess() {
  if (pid_ <= 0) return;
  int status = 0;
  kill(pid_, SIGTERM);
  if (!WaitFor(pid_, status, std::chrono::seconds(10))) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
}

bool ServerProcess::Exited() {
  int status = 0;
  if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
  return pid_ <= 0;
}

PrometheusServer::PrometheusServer(const std::string& binary, const std::filesystem::path& dir,
                                   int target_port)
    : dir_(dir),
      port_(FreePort()),
      process_(binary, PrometheusArgs(dir, port_, target_port), dir / "prometheus.log") {}

std::string PrometheusServer::Log() const {
  std::ifstream in(dir_ / "prometheus.log");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string PrometheusServer::QueryValue(const std::string& query, std::string& last_answer) const {
  const HttpAnswer a = HttpGet(port_, "/api/v1/query?query=" + query);
  last_answer = a.status == 0 ? a.error : a.body;
  if (a.status != 200) return "";
  const nlohmann::json j = nlohmann::json::parse(a.body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return "";
  const nlohmann::json& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return "";
  return result[0]["value"][1].get<std::string>();
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "dispatch-relay-http-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace dispatch::relay::test
