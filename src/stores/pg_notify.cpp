#include "stores/pg_notify.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace dispatch::pg {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Without an eventfd (the process ran out of descriptors) the wait looks at
// the stop request this often instead.
constexpr auto kStopCheckWithoutEventfd = std::chrono::milliseconds(10);

// An eventfd that a stop request makes readable.
class StopSignal {
 public:
  explicit StopSignal(const std::stop_token& stop)
      : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), on_stop_(stop, Signal{fd_}) {}
  ~StopSignal() {
    if (fd_ >= 0) close(fd_);
  }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  int fd() const { return fd_; }

 private:
  struct Signal {
    int fd;
    void operator()() const noexcept {
      const std::uint64_t one = 1;
      if (fd >= 0) (void)!write(fd, &one, sizeof one);
    }
  };
  int fd_;
  std::stop_callback<Signal> on_stop_;  // unregistered before fd_ closes
};

}  // namespace

bool NotifyTriggerEnabled(Connection& connection, const char* check_sql) {
  const Result r = connection.Exec("checking the notify trigger", check_sql);
  return Bool(r.get(), 0, 0);
}

bool TakeNotifications(Connection& connection) {
  return connection.ConsumeInput() && connection.TakeNotifications() > 0;
}

bool WaitForNotification(Connection& connection, SteadyClock::time_point until,
                         const std::stop_token& stop) {
  if (stop.stop_requested() || !connection.ConsumeInput()) return false;
  if (connection.TakeNotifications() > 0) return true;
  const StopSignal stop_signal(stop);
  while (!stop.stop_requested()) {
    const auto now = SteadyClock::now();
    if (now >= until) return false;
    auto wait = until - now;
    if (stop_signal.fd() < 0)
      wait = std::min<SteadyClock::duration>(wait, kStopCheckWithoutEventfd);
    pollfd fds[2] = {{connection.Socket(), POLLIN, 0}, {stop_signal.fd(), POLLIN, 0}};
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    const int ready = poll(fds, stop_signal.fd() < 0 ? 1 : 2, static_cast<int>(ms));
    if (ready < 0 && errno != EINTR) return false;
    if (ready > 0 && fds[0].revents != 0) {
      // Readable, closed or broken: libpq tells which.
      if (!connection.ConsumeInput()) return false;
      if (connection.TakeNotifications() > 0) return true;
    }
  }
  return false;
}

}  // namespace dispatch::pg
