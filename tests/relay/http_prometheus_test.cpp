// A real Prometheus server (Debian's /usr/bin/prometheus) scrapes the relay's
// /metrics, and a query through its HTTP API returns what the snapshot says.
// The server gets its own loopback port, config and storage in a temporary
// folder: a Prometheus service on this machine (Debian's starts one on
// 9090) is neither used nor touched.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "http_endpoint.h"
#include "http_test_support.h"

namespace dispatch::relay {
namespace {

using namespace std::chrono_literals;

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
  test::PrometheusServer prometheus(DISPATCH_PROMETHEUS, dir.path(), endpoint.port());

  // Up in a few seconds, then the first scrape within 1 s; 60 s catches a
  // hang on a loaded machine.
  const auto until = std::chrono::steady_clock::now() + 60s;
  std::string value;
  std::string last_answer;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_FALSE(prometheus.Exited()) << "prometheus exited:\n" << prometheus.Log();
    value = prometheus.QueryValue("dispatch_relay_rows_published_total", last_answer);
    if (!value.empty()) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(value, "31337") << "last answer: " << last_answer << "\nlog:\n" << prometheus.Log();
  // The scrape itself went well: Prometheus's own `up` for the target.
  EXPECT_EQ(prometheus.QueryValue("up%7Bjob%3D%22dispatch-relay%22%7D", last_answer), "1")
      << last_answer;
}

}  // namespace
}  // namespace dispatch::relay
