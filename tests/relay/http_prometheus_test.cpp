// A real Prometheus server (Debian's /usr/bin/prometheus) scrapes the relay's
// /metrics, and a query through its HTTP API returns what the snapshot says.
// The server gets its own loopback port, config and storage in a temporary
// folder: a Prometheus service on this machine (Debian's starts one on
// 9090) is neither used nor touched.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "http_endpoint.h"
#include "http_test_support.h"

namespace dispatch::relay {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The value of the query's first sample, or "" while there is none yet.
std::string QueryValue(int port, const std::string& query, std::string& last_answer) {
  const test::HttpAnswer a = test::HttpGet(port, "/api/v1/query?query=" + query);
  last_answer = a.status == 0 ? a.error : a.body;
  if (a.status != 200) return "";
  const nlohmann::json j = nlohmann::json::parse(a.body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return "";
  const nlohmann::json& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return "";
  return result[0]["value"][1].get<std::string>();
}

TEST(PrometheusServer, ScrapesTheRelayAndAQueryReturnsThePublishedCount) {
  if (access(DISPATCH_PROMETHEUS, X_OK) != 0) {
    GTEST_SKIP() << DISPATCH_PROMETHEUS << " is missing (Debian package prometheus)";
  }
  RelaySnapshot snapshot;
  snapshot.dispatcher.published = 31337;
  snapshot.started = std::chrono::steady_clock::now();
  HttpOptions o;
  o.listen = "127.0.0.1:0";
  HttpEndpoint endpoint(o, [&snapshot] { return snapshot; });

  test::TempDir dir;
  const int prometheus_port = test::FreePort();
  {
    std::ofstream config(dir.path() / "prometheus.yml");
    config << "global:\n"
              "  scrape_interval: 1s\n"
              "  scrape_timeout: 1s\n"
              "scrape_configs:\n"
              "  - job_name: dispatch-relay\n"
              "    static_configs:\n"
              "      - targets: ['127.0.0.1:"
           << endpoint.port() << "']\n";
  }
  const std::filesystem::path log = dir.path() / "prometheus.log";
  test::ServerProcess prometheus(
      DISPATCH_PROMETHEUS,
      {"--config.file=" + (dir.path() / "prometheus.yml").string(),
       "--storage.tsdb.path=" + (dir.path() / "data").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn"},
      log);

  // Up in a few seconds, then the first scrape within 1 s; 60 s catches a
  // hang on a loaded machine.
  const auto until = std::chrono::steady_clock::now() + 60s;
  std::string value;
  std::string last_answer;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_FALSE(prometheus.Exited()) << "prometheus exited:\n" << ReadFile(log);
    value = QueryValue(prometheus_port, "dispatch_relay_rows_published_total", last_answer);
    if (!value.empty()) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(value, "31337") << "last answer: " << last_answer << "\nlog:\n" << ReadFile(log);
  // The scrape itself went well: Prometheus's own `up` for the target.
  EXPECT_EQ(QueryValue(prometheus_port, "up%7Bjob%3D%22dispatch-relay%22%7D", last_answer), "1")
      << last_answer;
}

}  // namespace
}  // namespace dispatch::relay
