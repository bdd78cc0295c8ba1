// outbox_worker: one dispatcher process over a PostgreSQL outbox. Run as
// many as you like on one outbox table: PostgresStore keeps every key in
// order across all of them (docs/outbox-dispatcher.md, "PostgreSQL: several
// dispatchers").
//
//   outbox_worker --postgres CONNINFO --brokers host:port[,host:port...]
//                 [--batch N] [--journal FILE]
//
// --journal appends a line to FILE for each claim ("claim ID ID ...", written
// before any of its rows is published) and for its end ("finish" once it is
// recorded, "release"): after a crash, the last claim without an end names
// the rows that were in flight, the only ones that the next claim may publish
// a second time. Each line is one write(2), which the kernel keeps even when
// the process is killed the next instant.
//
// Keep the password out of the command line, where `ps` shows it: libpq
// reads it from PGPASSWORD or ~/.pgpass. Runs until SIGTERM or SIGINT; the
// round in flight then ends within the publish timeout, marking only the rows
// Kafka acknowledged, and the worker prints its totals and exits 0. Exits 1
// when the outbox or the configuration is unusable at start, 2 on a bad
// command line.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/dispatcher.h"
#include "dispatch/kafka/kafka_publisher.h"
#include "dispatch/stores/postgres_store.h"

namespace {

constexpr const char* kUsage =
    "usage: outbox_worker --postgres CONNINFO --brokers host:port[,host:port...] [--batch N] "
    "[--journal FILE]";

struct Options {
  std::string postgres;
  std::vector<std::string> brokers;
  std::size_t batch = 500;
  std::string journal;
};

// The store, with each claim and its end appended to a journal file (see
// --journal above).
class JournaledStore final : public dispatch::OutboxStore {
 public:
  JournaledStore(dispatch::OutboxStore& store, const std::string& path)
      : store_(store), fd_(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw std::runtime_error("--journal: cannot open " + path);
  }
  ~JournaledStore() override { close(fd_); }
  JournaledStore(const JournaledStore&) = delete;
  JournaledStore& operator=(const JournaledStore&) = delete;

  std::vector<dispatch::OutboxRow> Claim(std::size_t limit,
                                         std::chrono::system_clock::time_point now) override {
    std::vector<dispatch::OutboxRow> rows = store_.Claim(limit, now);
    std::string line = "claim";
    for (const dispatch::OutboxRow& row : rows) line += " " + std::to_string(row.id);
    Append(line);
    return rows;
  }
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<dispatch::RowFailure>& failures) override {
    store_.Finish(published, failures);
    Append("finish");
  }
  void Release() noexcept override {
    store_.Release();
    Append("release");
  }
  std::optional<std::chrono::system_clock::time_point> OldestPending() override {
    return store_.OldestPending();
  }

 private:
  // One write(2) per line; a short write only truncates the journal's
  // last line, which a reader treats as a claim of the ids it names.
  void Append(std::string line) noexcept {
    line += '\n';
    if (write(fd_, line.data(), line.size()) < 0) std::perror("outbox_worker: journal");
  }

  dispatch::OutboxStore& store_;
  int fd_;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "outbox_worker: %s\n%s\n", why.c_str(), kUsage);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Usage(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--postgres") {
      o.postgres = value;
    } else if (arg == "--brokers") {
      std::istringstream in(value);
      for (std::string broker; std::getline(in, broker, ',');) o.brokers.push_back(broker);
    } else if (arg == "--journal") {
      o.journal = value;
    } else if (arg == "--batch") {
      o.batch = std::strtoul(value.c_str(), nullptr, 10);
      if (o.batch == 0) Usage("--batch: give a positive number");
    } else {
      Usage("unknown option " + arg);
    }
  }
  if (o.postgres.empty()) Usage("--postgres is required");
  if (o.brokers.empty()) Usage("--brokers is required");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = Parse(argc, argv);

  // SIGTERM and SIGINT are taken by a thread of their own (sigwait), so no
  // other thread is interrupted and the stop is an ordinary stop_token.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    dispatch::PostgresStore postgres(options.postgres);
    std::optional<JournaledStore> journaled;
    if (!options.journal.empty()) journaled.emplace(postgres, options.journal);
    dispatch::OutboxStore& store = journaled ? static_cast<dispatch::OutboxStore&>(*journaled)
                                             : static_cast<dispatch::OutboxStore&>(postgres);
    const dispatch::kafka::KafkaConfig kafka = dispatch::kafka::DefaultKafkaConfig(options.brokers);
    // Rejects a bad configuration now, rather than at every round.
    std::unique_ptr<dispatch::Publisher> first =
        std::make_unique<dispatch::kafka::KafkaPublisher>(kafka);
    dispatch::DispatcherOptions dispatcher_options;
    dispatcher_options.batch_size = options.batch;
    dispatch::Dispatcher dispatcher(
        store,
        [&]() -> std::unique_ptr<dispatch::Publisher> {
          if (first) return std::move(first);
          return std::make_unique<dispatch::kafka::KafkaPublisher>(kafka);
        },
        dispatcher_options);

    std::stop_source stop;
    std::thread signals([&] {
      int signal = 0;
      sigwait(&stop_signals, &signal);
      stop.request_stop();
    });
    std::printf("outbox_worker: running, pid %d\n", static_cast<int>(getpid()));
    std::fflush(stdout);
    dispatcher.Run(stop.get_token());
    signals.join();

    const dispatch::DispatcherMetrics m = dispatcher.Metrics();
    std::printf(
        "outbox_worker: stopped; rounds %llu published %llu retried %llu parked %llu "
        "store_errors %llu\n",
        static_cast<unsigned long long>(m.rounds), static_cast<unsigned long long>(m.published),
        static_cast<unsigned long long>(m.retried), static_cast<unsigned long long>(m.parked),
        static_cast<unsigned long long>(m.store_errors));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "outbox_worker: %s\n", e.what());
    return 1;
  }
}
