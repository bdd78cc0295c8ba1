// The relay's HTTP listener: /healthz, /readyz and /metrics.
//
// Served by civetweb (Debian's libcivetweb, the server prometheus-cpp's own
// Exposer runs on), with prometheus-cpp's core types and text serializer
// for /metrics (prometheus_metrics.h). prometheus-cpp 1.0's Exposer serves
// collectables only and has no way to add the health endpoints, so the
// listener drives civetweb itself: one port, one server.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "snapshot.h"

struct mg_context;
struct mg_connection;

namespace dispatch::relay {

struct HttpOptions {
  // "<IPv4>:<port>" or "[<IPv6>]:<port>", an address literal (no host
  // name), port 0-65535; port 0 takes a free port (HttpEndpoint::port says
  // which). Loopback by default: exposing it is an operator's choice.
  std::string listen = "127.0.0.1:9464";
  // /readyz answers 503 while the outbox lag (the oldest pending row's age)
  // is over this. Positive.
  std::chrono::milliseconds max_lag = std::chrono::seconds(60);
};

// Serves from the moment the constructor returns until the destructor
// returns (which waits for the requests in progress, each bounded by a 10 s
// request timeout; with none in progress it returns within tens of
// milliseconds). GET and HEAD only.
//  - /healthz: 200 "ok" while the process serves.
//  - /readyz: 200 "ready" when the store answered its last call, the
//    publisher is not fatal and the outbox lag is at most max_lag; else 503
//    and one line naming every reason ("not ready: ...").
//  - /metrics: the snapshot in Prometheus's text format.
// Other paths get 404. `snapshot` is called on the server's threads, up to
// four at once, once per /readyz or /metrics request: it must be
// thread-safe and cheap.
class HttpEndpoint {
 public:
  // Throws std::invalid_argument naming the field and the value on a bad
  // listen address or max_lag, std::runtime_error naming the address when
  // it cannot listen there (in use, not a local address).
  HttpEndpoint(const HttpOptions& options, std::function<RelaySnapshot()> snapshot);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The port it listens on (the one chosen when the address said 0).
  int port() const;

  // The body and status /readyz answers for `s`: "ready" (200), or
  // "not ready: " and the reasons joined by "; " (503). One line: line
  // breaks in the store's error become spaces.
  static std::pair<int, std::string> Readiness(const RelaySnapshot& s,
                                               std::chrono::milliseconds max_lag);

 private:
  static int Handle(mg_connection* conn, void* self);
  int Serve(mg_connection* conn);
  void WakeListener() const;

  HttpOptions options_;
  std::function<RelaySnapshot()> snapshot_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// Checks a listen address as HttpOptions::listen describes and returns it
// in civetweb's spelling; throws std::invalid_argument naming the value.
std::string CheckListenAddress(const std::string& listen);

}  // namespace dispatch::relay
