#include "http_endpoint.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

#include "prometheus_metrics.h"

namespace dispatch::relay {
namespace {

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kExposition = "text/plain; version=0.0.4; charset=utf-8";

std::string_view StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

int Respond(mg_connection* conn, bool head, int status, std::string_view type,
            std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(StatusText(status)) +
                    "\r\nContent-Type: " + std::string(type) +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nCache-Control: no-store\r\nConnection: close\r\n";
  if (status == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (!head) out += body;
  mg_write(conn, out.data(), out.size());
  return status;
}

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string FormatSeconds(std::chrono::milliseconds ms) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.3f s", static_cast<double>(ms.count()) / 1000.0);
  return buf.data();
}

[[noreturn]] void BadListen(const std::string& listen, std::string_view why) {
  throw std::invalid_argument("http listen address \"" + listen + "\": " + std::string(why) +
                              " (allowed: <IPv4>:<port> or [<IPv6>]:<port>, an address "
                              "literal, port 0-65535; for example 127.0.0.1:9464)");
}

}  // namespace

std::string CheckListenAddress(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) BadListen(listen, "no port");
  std::string host = listen.substr(0, colon);
  const std::string_view port = std::string_view(listen).substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    BadListen(listen, "the port is not a number from 0 to 65535");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    in6_addr addr{};
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &addr) != 1) {
      BadListen(listen, "not an IPv6 address between the brackets");
    }
    if (mg_check_feature(8) == 0) BadListen(listen, "this civetweb was built without IPv6");
  } else {
    in_addr addr{};
    if (inet_pton(AF_INET, host.c_str(), &addr) != 1) {
      BadListen(listen, "not an IPv4 address (host names are not resolved)");
    }
  }
  return listen;
}

std::pair<int, std::string> HttpEndpoint::Readiness(const RelaySnapshot& s,
                                                    std::chrono::milliseconds max_lag) {
  std::string reasons;
  const auto add = [&reasons](const std::string& r) {
    reasons += reasons.empty() ? "not ready: " : "; ";
    reasons += r;
  };
  if (!s.store_ok) {
    add("the store's last call failed" +
        (s.store_error.empty() ? std::string() : ": " + OneLine(s.store_error)));
  }
  if (s.publisher_fatal) add("the publisher returned a fatal error and is not yet replaced");
  if (s.dispatcher.oldest_pending_age > max_lag) {
    add("outbox lag " + FormatSeconds(s.dispatcher.oldest_pending_age) + " is over max_lag " +
        FormatSeconds(max_lag));
  }
  if (reasons.empty()) return {200, "ready\n"};
  return {503, reasons + "\n"};
}

HttpEndpoint::HttpEndpoint(const HttpOptions& options, std::function<RelaySnapshot()> snapshot)
    : options_(options), snapshot_(std::move(snapshot)) {
  if (!snapshot_) throw std::invalid_argument("HttpEndpoint: the snapshot function is empty");
  if (options_.max_lag.count() <= 0) {
    throw std::invalid_argument("http max_lag " + std::to_string(options_.max_lag.count()) +
                                " ms: must be positive");
  }
  const std::string ports = CheckListenAddress(options_.listen);
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });

  // No document_root: nothing but the three handlers is served.
  // Connection: close on every answer, so a scraper's idle connection never
  // holds one of the threads.
  const char* config[] = {
      "listening_ports", ports.c_str(),       "num_threads", "4",    "request_timeout_ms",
      "10000",           "enable_keep_alive", "no",          nullptr};
  mg_callbacks callbacks{};
  mg_init_data init_data{};
  init_data.callbacks = &callbacks;
  init_data.user_data = this;
  init_data.configuration_options = config;
  std::array<char, 256> error_text{};
  mg_error_data error{};
  error.text = error_text.data();
  error.text_buffer_size = error_text.size();
  ctx_ = mg_start2(&init_data, &error);
  if (ctx_ == nullptr) {
    throw std::runtime_error("http listen address \"" + options_.listen +
                             "\": cannot listen: " + std::string(error_text.data()));
  }
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    mg_set_request_handler(ctx_, path, &HttpEndpoint::Handle, this);
  }
  std::array<mg_server_port, 4> bound{};
  if (mg_get_server_ports(ctx_, static_cast<int>(bound.size()), bound.data()) >= 1) {
    port_ = bound[0].port;
  }
}

// A connection to the listener, closed at once: wakes civetweb's listening
// thread, which otherwise checks for a stop only between polls of 2 s.
void HttpEndpoint::WakeListener() const {
  const std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (host.front() == '[') {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<std::uint16_t>(port_));
    inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr);
    if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr)) a6->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<std::uint16_t>(port_));
    inet_pton(AF_INET, host.c_str(), &a4->sin_addr);
    if (a4->sin_addr.s_addr == htonl(INADDR_ANY)) a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)connect(fd, reinterpret_cast<const sockaddr*>(&addr), len);
  close(fd);
}

HttpEndpoint::~HttpEndpoint() {
  if (ctx_ == nullptr) return;
  // mg_stop sets the stop flag and waits for the listening thread; without a
  // wake-up that takes up to 2 s, which would add to the relay's stop.
  std::atomic<bool> stopped{false};
  std::thread waker([this, &stopped] {
    for (int i = 0; i < 300 && !stopped.load(); ++i) {
      WakeListener();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  mg_stop(ctx_);
  stopped.store(true);
  waker.join();
}

int HttpEndpoint::port() const { return port_; }

int HttpEndpoint::Handle(mg_connection* conn, void* self) {
  return static_cast<HttpEndpoint*>(self)->Serve(conn);
}

int HttpEndpoint::Serve(mg_connection* conn) {
  const mg_request_info* req = mg_get_request_info(conn);
  const std::string_view method = req->request_method;
  const std::string_view uri = req->local_uri;
  const bool head = method == "HEAD";
  if (method != "GET" && !head) return Respond(conn, head, 405, kTextPlain, "GET or HEAD\n");
  // The handlers are registered for a path and what is below it: only the
  // exact paths exist.
  if (uri == "/healthz") return Respond(conn, head, 200, kTextPlain, "ok\n");
  if (uri != "/readyz" && uri != "/metrics") return Respond(conn, head, 404, kTextPlain, "");
  RelaySnapshot s;
  try {
    s = snapshot_();
  } catch (const std::exception&) {
    // The exception's text is not shown: it was not written for a client.
    const int status = uri == "/readyz" ? 503 : 500;
    return Respond(conn, head, status, kTextPlain,
                   status == 503 ? "not ready: the relay's snapshot failed\n"
                                 : "the relay's snapshot failed\n");
  }
  if (uri == "/readyz") {
    const auto [status, body] = Readiness(s, options_.max_lag);
    return Respond(conn, head, status, kTextPlain, body);
  }
  const std::string text = SerializeText(
      ToMetricFamilies(s, std::chrono::system_clock::now(), std::chrono::steady_clock::now()));
  return Respond(conn, head, 200, kExposition, text);
}

}  // namespace dispatch::relay
