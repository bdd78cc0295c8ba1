// Helpers shared by the tests.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "dispatch/kafka/kafka_publisher.h"

namespace dispatch::suite {

// Polls `condition` until it holds or `timeout` passes; returns whether it
// held. Tests assert on the return value, so a condition that never comes
// fails the test instead of hanging it.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// This process's resident memory in MiB, from /proc/self/statm.
inline double RssMiB() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

using LogFile = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

// When DISPATCH_KAFKA_SOAK_DEBUG_LOG names a file, opens it (line-buffered,
// so a run that CTest kills on its timeout keeps its end) and points
// `config` at it: librdkafka's debug log of the idempotent producer, the
// messages and the brokers, one line per entry with a wall-clock time in
// milliseconds. For studying a failed soak. Declare the result before the
// publisher, so that it outlives it. Null, and `config` untouched, when the
// variable is not set; throws when the file cannot be written.
inline LogFile SoakDebugLog(dispatch::kafka::KafkaConfig& config) {
  const char* path = std::getenv("DISPATCH_KAFKA_SOAK_DEBUG_LOG");
  LogFile file(nullptr, &std::fclose);
  if (path == nullptr) return file;
  file.reset(std::fopen(path, "w"));
  if (file == nullptr) throw std::runtime_error(std::string("cannot write ") + path);
  std::setvbuf(file.get(), nullptr, _IOLBF, 0);
  config.properties["debug"] = "eos,msg,broker";
  config.log = [f = file.get()](const dispatch::kafka::LogEntry& e) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    std::fprintf(f, "%lld %.*s %.*s %.*s\n", static_cast<long long>(ms.count()),
                 static_cast<int>(e.facility.size()), e.facility.data(),
                 static_cast<int>(e.broker.size()), e.broker.data(),
                 static_cast<int>(e.message.size()), e.message.data());
  };
  return file;
}

}  // namespace dispatch::suite
