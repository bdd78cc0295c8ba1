// The relay's HTTP listener with a fake snapshot: what /healthz, /readyz and
// /metrics answer, bad listen addresses, and where it listens by default.
#include "http_endpoint.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "http_test_support.h"

namespace dispatch::relay {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using test::HttpGet;

// What the relay would report, changed by the test while the server reads it.
class FakeRelay {
 public:
  RelaySnapshot Get() const {
    std::lock_guard lock(mu_);
    return s_;
  }
  template <typename F>
  void Change(F f) {
    std::lock_guard lock(mu_);
    f(s_);
  }

 private:
  mutable std::mutex mu_;
  RelaySnapshot s_;
};

HttpOptions AnyPort(std::chrono::milliseconds max_lag = 5s) {
  HttpOptions o;
  o.listen = "127.0.0.1:0";
  o.max_lag = max_lag;
  return o;
}

class HttpEndpointTest : public ::testing::Test {
 protected:
  FakeRelay relay_;
  HttpEndpoint endpoint_{AnyPort(), [this] { return relay_.Get(); }};
};

TEST_F(HttpEndpointTest, HealthzAnswersOkWhileTheProcessServes) {
  ASSERT_GT(endpoint_.port(), 0);
  const test::HttpAnswer a = HttpGet(endpoint_.port(), "/healthz");
  EXPECT_EQ(a.status, 200) << a.error;
  EXPECT_EQ(a.body, "ok\n");
}

TEST_F(HttpEndpointTest, ReadyzIsReadyWhenTheStoreAnswersThePublisherLivesAndTheLagIsInBounds) {
  relay_.Change([](RelaySnapshot& s) { s.dispatcher.oldest_pending_age = 5s; });  // == max_lag
  const test::HttpAnswer a = HttpGet(endpoint_.port(), "/readyz");
  EXPECT_EQ(a.status, 200) << a.error;
  EXPECT_EQ(a.body, "ready\n");
}

TEST_F(HttpEndpointTest, ReadyzIsUnreadyWhileTheStoreFailsAndSaysItOnOneLine) {
  relay_.Change([](RelaySnapshot& s) {
    s.store_ok = false;
    s.store_error = "connection to server failed\nis the server running?";
  });
  const test::HttpAnswer a = HttpGet(endpoint_.port(), "/readyz");
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body,
            "not ready: the store's last call failed: connection to server failed is the server "
            "running?\n");
  relay_.Change([](RelaySnapshot& s) { s.store_ok = true; });
  EXPECT_EQ(HttpGet(endpoint_.port(), "/readyz").status, 200);
}

TEST_F(HttpEndpointTest, ReadyzIsUnreadyWhileThePublisherIsFatal) {
  relay_.Change([](RelaySnapshot& s) { s.publisher_fatal = true; });
  const test::HttpAnswer a = HttpGet(endpoint_.port(), "/readyz");
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body, "not ready: the publisher returned a fatal error and is not yet replaced\n");
}

TEST_F(HttpEndpointTest, ReadyzIsUnreadyWhileTheOutboxLagIsOverMaxLag) {
  relay_.Change([](RelaySnapshot& s) { s.dispatcher.oldest_pending_age = 5001ms; });
  const test::HttpAnswer a = HttpGet(endpoint_.port(), "/readyz");
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body, "not ready: outbox lag 5.001 s is over max_lag 5.000 s\n");
}

TEST_F(HttpEndpointTest, ReadyzNamesEveryReasonAtOnce) {
  relay_.Change([](RelaySnapshot& s) {
    s.store_ok = false;
    s.publisher_fatal = true;
    s.dispatcher.oldest_pending_age = 1h;
  });
  const test::HttpAnswer a = HttpGet(endpoint_.port(), "/readyz");
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body,
            "not ready: the store's last call failed; the publisher returned a fatal error and is "
            "not yet replaced; outbox lag 3600.000 s is over max_lag 5.000 s\n");
}

TEST_F(HttpEndpointTest, MetricsServeTheSnapshotInPrometheusTextFormat) {
  relay_.Change([](RelaySnapshot& s) {
    s.dispatcher.published = 4242;
    s.dispatcher.oldest_pending_age = 1500ms;
    s.publisher.failed_by_code[static_cast<std::size_t>(ErrorCode::kBrokerUnavailable)] = 7;
  });
  const test::HttpAnswer a = HttpGet(endpoint_.port(), "/metrics");
  EXPECT_EQ(a.status, 200) << a.error;
  EXPECT_EQ(a.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(a.body, HasSubstr("# TYPE dispatch_relay_rows_published_total counter\n"));
  EXPECT_THAT(a.body, HasSubstr("\ndispatch_relay_rows_published_total 4242\n"));
  EXPECT_THAT(a.body, HasSubstr("\ndispatch_relay_outbox_lag_seconds 1.5\n"));
  EXPECT_THAT(
      a.body,
      HasSubstr("\ndispatch_publisher_messages_failed_total{code=\"broker_unavailable\"} 7\n"));
}

TEST_F(HttpEndpointTest, OtherPathsAndMethodsAreRefused) {
  EXPECT_EQ(HttpGet(endpoint_.port(), "/").status, 404);
  EXPECT_EQ(HttpGet(endpoint_.port(), "/metrics/x").status, 404);
  EXPECT_EQ(HttpGet(endpoint_.port(), "/healthzz").status, 404);
  EXPECT_EQ(HttpGet(endpoint_.port(), "/metrics", "127.0.0.1", "POST").status, 405);
}

TEST(HttpEndpoint, ASnapshotThatThrowsMakesReadyzUnreadyWithoutShowingTheException) {
  HttpEndpoint endpoint(AnyPort(),
                        []() -> RelaySnapshot { throw std::runtime_error("password=hunter2"); });
  const test::HttpAnswer ready = HttpGet(endpoint.port(), "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body, "not ready: the relay's snapshot failed\n");
  const test::HttpAnswer metrics = HttpGet(endpoint.port(), "/metrics");
  EXPECT_EQ(metrics.status, 500);
  EXPECT_THAT(metrics.body, Not(HasSubstr("hunter2")));
}

TEST(HttpEndpoint, ABadListenAddressIsRefusedNamingTheValue) {
  for (const std::string bad :
       {"9464", "localhost:9464", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:-1", "[::zz]:9464",
        "0.0.0.0:80,10.0.0.1:81", "127.0.0.1:94x", ""}) {
    HttpOptions o;
    o.listen = bad;
    try {
      HttpEndpoint endpoint(o, [] { return RelaySnapshot{}; });
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("http listen address \"" + bad + "\""));
      EXPECT_THAT(e.what(), HasSubstr("allowed: <IPv4>:<port> or [<IPv6>]:<port>"));
    }
  }
}

TEST(HttpEndpoint, ANonPositiveMaxLagIsRefused) {
  try {
    HttpEndpoint endpoint(AnyPort(0ms), [] { return RelaySnapshot{}; });
    ADD_FAILURE() << "accepted max_lag 0";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("max_lag 0 ms: must be positive"));
  }
}

TEST(HttpEndpoint, AnAddressInUseIsAnErrorNamingIt) {
  HttpEndpoint first(AnyPort(), [] { return RelaySnapshot{}; });
  HttpOptions o;
  o.listen = "127.0.0.1:" + std::to_string(first.port());
  try {
    HttpEndpoint second(o, [] { return RelaySnapshot{}; });
    ADD_FAILURE() << "listened twice on " << o.listen;
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("http listen address \"" + o.listen + "\": cannot listen"));
  }
}

TEST(HttpEndpoint, StopsPromptlyRightAfterARequest) {
  auto endpoint = std::make_unique<HttpEndpoint>(AnyPort(), [] { return RelaySnapshot{}; });
  EXPECT_EQ(HttpGet(endpoint->port(), "/healthz").status, 200);
  // civetweb's listening thread has just begun a poll of 2 s; the destructor
  // wakes it rather than waiting that out (the relay's stop has a bound).
  const auto start = std::chrono::steady_clock::now();
  endpoint.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

// Whether /proc/net/<table> lists a listening socket on `port`, and where.
std::vector<std::string> ListeningAddresses(const std::string& table, int port) {
  std::ifstream in("/proc/net/" + table);
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::string> found;
  char hex_port[8];
  std::snprintf(hex_port, sizeof(hex_port), "%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state == "0A" && local.substr(local.find(':') + 1) == hex_port) {
      found.push_back(local.substr(0, local.find(':')));
    }
  }
  return found;
}

TEST(HttpEndpoint, ListensOnLoopbackOnlyByDefault) {
  HttpOptions o;
  EXPECT_EQ(o.listen, "127.0.0.1:9464");
  // The default's host on a free port, so that the test does not depend on
  // 9464 being free.
  o.listen = o.listen.substr(0, o.listen.rfind(':')) + ":0";
  HttpEndpoint endpoint(o, [] { return RelaySnapshot{}; });
  EXPECT_THAT(ListeningAddresses("tcp", endpoint.port()), ::testing::ElementsAre("0100007F"));
  EXPECT_THAT(ListeningAddresses("tcp6", endpoint.port()), ::testing::IsEmpty());
  // And a connection to another address of this machine is refused.
  ifaddrs* addrs = nullptr;
  ASSERT_EQ(getifaddrs(&addrs), 0);
  int tried = 0;
  for (ifaddrs* a = addrs; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, host, sizeof(host));
    if (std::string(host).rfind("127.", 0) == 0) continue;
    ++tried;
    const test::HttpAnswer answer = HttpGet(endpoint.port(), "/healthz", host);
    EXPECT_EQ(answer.status, 0) << "answered on " << host;
  }
  freeifaddrs(addrs);
  if (tried == 0) std::cout << "no non-loopback IPv4 address here: only /proc/net checked\n";
  EXPECT_EQ(HttpGet(endpoint.port(), "/healthz").status, 200);
}

}  // namespace
}  // namespace dispatch::relay
