// Helpers shared by the tests.
#pragma once

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

namespace dispatch::test {

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

}  // namespace dispatch::test
