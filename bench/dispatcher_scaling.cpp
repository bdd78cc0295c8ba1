// B8 dispatcher_scaling: rows per second through 1, 2 and 4 outbox_worker
// processes sharing one PostgreSQL outbox, beside one outbox_demo process on
// SQLite, all against the same (real) Kafka cluster.
//
//   dispatcher_scaling --brokers host:port,... --postgres CONNINFO
//                      [--rows N] [--keys K] [--processes 1,2,4] [--repeat R]
//   dispatcher_scaling --store-side [--postgres CONNINFO] [--rows N] [--keys K]
//                      [--workers 1,2,4] [--repeat R] [--steady-rate R]
//                      [--steady-seconds S] [--analyze] [--wake-coalesce MS]
//   (--workers none: the steady part only)
//
// --store-side measures the store alone (bench/store_side.cpp): dispatchers
// on threads over one PostgreSQL outbox, a publisher that acknowledges at
// once, the database backends' CPU per row and the lock waits, issue 20's
// starting commit's statements beside today's. Without --postgres it starts
// a throwaway server with scripts/postgres_cluster.py.
//
// CONNINFO names a role that may create databases: each run gets a fresh
// one (dropped after), seeded in one INSERT with N rows of about 100 bytes
// round-robin over K keys, on a fresh topic of 12 partitions (the cluster's
// default replication). A run's rate is taken between 10% and 90% of the
// rows marked published, so the processes' start (connect, migrate, first
// metadata) and the tail (the last keys' rows) do not count; the whole-run
// rate is printed beside it, and how busy the machine's cores were (every
// process on it: brokers, PostgreSQL, workers, and anything else running)
// and how much of that the workers took. The SQLite figure is
// outbox_demo's own (its rows/s over the whole dispatch, its sample events: orders and payments of
// N/8 aggregates with two headers, one row in 1000 oversized and parked).
// The whole sequence runs R times (default 2), since on a shared machine one
// run can land on a busy minute; every run is printed, and the JSON line
// has each figure's median. The demo's own check ("verified") is only
// meaningful in a run on fresh topics: its row ids start at 1 every run.
// The last line is one JSON object.
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "child_process.h"
#include "dispatch/stores/postgres_store.h"
#include "json_line.h"
#include "postgres_sql.h"
#include "store_side.h"

namespace {

using namespace std::chrono_literals;
using bench::Clock;
using bench::Sql;

constexpr int kPartitions = 12;

struct Options {
  std::string brokers;
  std::string postgres;
  long rows = 100'000;
  long keys = 2'000;
  std::vector<int> processes = {1, 2, 4};
  int repeat = 2;
  bool store_side = false;
  bench::StoreSideOptions side;
};

std::vector<int> Counts(const std::string& value) {
  std::vector<int> counts;
  std::istringstream in(value);
  for (std::string n; std::getline(in, n, ',');) counts.push_back(std::atoi(n.c_str()));
  return counts;
}

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "dispatcher_scaling: %s\nusage: dispatcher_scaling --brokers host:port,... "
               "--postgres CONNINFO [--rows N] [--keys K] [--processes 1,2,4] [--repeat R]\n",
               why.c_str());
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--store-side" || arg == "--analyze") {
      (arg == "--analyze" ? o.side.analyze : o.store_side) = true;
      continue;
    }
    if (i + 1 >= argc) Usage(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--brokers") {
      o.brokers = value;
    } else if (arg == "--postgres") {
      o.postgres = value;
    } else if (arg == "--rows") {
      o.rows = std::atol(value.c_str());
    } else if (arg == "--keys") {
      o.keys = std::atol(value.c_str());
    } else if (arg == "--repeat") {
      o.repeat = std::atoi(value.c_str());
    } else if (arg == "--processes") {
      o.processes = Counts(value);
    } else if (arg == "--workers") {
      o.side.workers = value == "none" ? std::vector<int>{} : Counts(value);
    } else if (arg == "--wake-coalesce") {
      o.side.wake_coalesce_ms = std::atoi(value.c_str());
    } else if (arg == "--steady-rate") {
      o.side.steady_rate = std::atoi(value.c_str());
    } else if (arg == "--steady-seconds") {
      o.side.steady_seconds = std::atoi(value.c_str());
    } else {
      Usage("unknown option " + arg);
    }
  }
  if (!o.store_side && (o.brokers.empty() || o.postgres.empty())) {
    Usage("--brokers and --postgres are required (but for --store-side)");
  }
  if (o.side.steady_rate < 0 || o.side.steady_seconds < 1) {
    Usage("--steady-rate at least 0, --steady-seconds at least 1");
  }
  for (int n : o.side.workers) {
    if (n < 1) Usage("--workers: each count at least 1, got " + std::to_string(n));
  }
  if (o.rows < 10 || o.keys < 1 || o.repeat < 1) {
    Usage("--rows at least 10, --keys and --repeat at least 1");
  }
  return o;
}

struct Rate {
  double steady = 0;        // rows/s between 10% and 90% published
  double whole = 0;         // rows/s from the workers' start to the last row
  double cores_busy = 0;    // the machine's, over the whole run: all processes, not only ours
  double worker_cores = 0;  // the workers' own CPU time over the whole run, in cores
};

// Busy and total jiffies of all cores so far (the first line of /proc/stat).
std::pair<double, double> CpuJiffies() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  stat >> cpu;
  double total = 0;
  double idle = 0;
  for (int field = 0; field < 8; ++field) {
    double value = 0;
    stat >> value;
    total += value;
    if (field == 3 || field == 4) idle += value;  // idle, iowait
  }
  return {total - idle, total};
}

// Cores busy on average between two CpuJiffies samples.
double CoresBusy(std::pair<double, double> before, std::pair<double, double> after) {
  return (after.first - before.first) / (after.second - before.second) *
         static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
}

// `processes` outbox_workers on a fresh database of `rows` rows.
Rate RunWorkers(const Options& o, int processes, int run) {
  const std::string suffix =
      std::to_string(processes) + "_" + std::to_string(run) + "_" + std::to_string(getpid());
  const std::string database = "dispatch_bench_" + suffix;
  const std::string topic = "bench-dispatch-" + suffix;
  bench::EnsureTopics(o.brokers, {{topic, kPartitions}});
  Sql(o.postgres, "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
  Sql(o.postgres, "CREATE DATABASE " + database);
  // libpq takes the last value of a repeated keyword.
  const std::string conninfo = o.postgres + " dbname=" + database;
  { dispatch::PostgresStore migrate(conninfo); }
  Sql(conninfo, "INSERT INTO outbox (key, topic, payload) SELECT 'key-' || (i % " +
                    std::to_string(o.keys) + "), '" + topic +
                    "', convert_to(rpad('row ' || i, 100, '.'), 'UTF8') " +
                    "FROM generate_series(0, " + std::to_string(o.rows - 1) + ") AS i ORDER BY i");

  std::vector<pid_t> workers;
  const auto cpu_before = CpuJiffies();
  const auto start = Clock::now();
  for (int i = 0; i < processes; ++i) {
    workers.push_back(
        bench::Spawn({DISPATCH_OUTBOX_WORKER, "--postgres", conninfo, "--brokers", o.brokers}));
  }
  std::optional<Clock::time_point> at10;
  std::optional<Clock::time_point> at90;
  const auto bound = start + 600s;
  long published = 0;
  while (published < o.rows && Clock::now() < bound) {
    std::this_thread::sleep_for(100ms);
    published =
        std::atol(Sql(conninfo, "SELECT count(*) FROM outbox WHERE state = 'published'").c_str());
    if (!at10 && published >= o.rows / 10) at10 = Clock::now();
    if (!at90 && published >= o.rows * 9 / 10) at90 = Clock::now();
  }
  const double whole_s = bench::SecondsSince(start);
  const auto cpu_after = CpuJiffies();
  for (pid_t pid : workers) kill(pid, SIGTERM);
  double worker_cpu_s = 0;
  for (pid_t pid : workers) {
    rusage usage{};
    wait4(pid, nullptr, 0, &usage);
    worker_cpu_s += static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                    static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  }
  Sql(o.postgres, "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
  if (published < o.rows) {
    throw std::runtime_error(std::to_string(processes) + " worker(s): only " +
                             std::to_string(published) + " rows published within 600 s");
  }
  Rate rate;
  rate.steady =
      0.8 * static_cast<double>(o.rows) / std::chrono::duration<double>(*at90 - *at10).count();
  rate.whole = static_cast<double>(o.rows) / whole_s;
  rate.cores_busy = CoresBusy(cpu_before, cpu_after);
  rate.worker_cores = worker_cpu_s / whole_s;
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  try {
    if (o.store_side) {
      bench::PostgresServer server(o.postgres, DISPATCH_PYTHON, DISPATCH_POSTGRES_CLUSTER);
      bench::StoreSideOptions side = o.side;
      side.conninfo = server.conninfo();
      side.rows = o.rows;
      side.keys = o.keys;
      side.repeat = o.repeat;
      return bench::RunStoreSide(side);
    }
    std::printf("B8 dispatcher_scaling: %ld rows over %ld keys, %d partitions, librdkafka %s\n",
                o.rows, o.keys, kPartitions, rd_kafka_version_str());
    bench::EnsureTopics(o.brokers, {{"orders", kPartitions}, {"payments", kPartitions}});
    std::vector<double> sqlite;
    std::map<int, std::vector<Rate>> rates;
    for (int run = 1; run <= o.repeat; ++run) {
      int demo_out = -1;
      const auto cpu_before = CpuJiffies();
      const pid_t demo = bench::Spawn({DISPATCH_OUTBOX_DEMO, "--brokers", o.brokers, "--events",
                                       std::to_string(o.rows), "--json"},
                                      &demo_out);
      const std::string demo_text = bench::ReadAll(demo_out);
      waitpid(demo, nullptr, 0);
      const auto cpu_after = CpuJiffies();
      sqlite.push_back(bench::JsonNumber(demo_text, "demo_rows_per_s"));
      std::printf(
          "run %d: SQLite, outbox_demo x1: %.0f rows/s whole run (verified: %s), %.2f cores "
          "busy\n",
          run, sqlite.back(),
          demo_text.find("\"verified\": true") != std::string::npos ? "yes" : "no",
          CoresBusy(cpu_before, cpu_after));
      std::fflush(stdout);
      for (int n : o.processes) {
        const Rate rate = RunWorkers(o, n, run);
        rates[n].push_back(rate);
        std::printf(
            "run %d: PostgreSQL, outbox_worker x%d: %.0f rows/s (10%%-90%%), %.0f rows/s "
            "whole run, %.2f cores busy (%.2f of them the workers')\n",
            run, n, rate.steady, rate.whole, rate.cores_busy, rate.worker_cores);
        std::fflush(stdout);
      }
    }
    const auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    std::map<int, Rate> medians;
    for (const auto& [n, runs] : rates) {
      std::vector<double> steady, whole;
      for (const Rate& r : runs) {
        steady.push_back(r.steady);
        whole.push_back(r.whole);
      }
      medians[n] = {median(steady), median(whole)};
    }
    std::printf("medians of %d run(s): SQLite x1 %.0f rows/s whole run", o.repeat, median(sqlite));
    for (const auto& [n, r] : medians) {
      std::printf("; PostgreSQL x%d %.0f rows/s (10%%-90%%)", n, r.steady);
      if (medians.count(1)) std::printf(", ratio to x1 %.2f", r.steady / medians[1].steady);
    }
    std::printf("\n");
    bench::Json line;
    line.Int("rows", o.rows).Int("keys", o.keys).Int("runs", o.repeat);
    line.Num("sqlite_demo_rows_per_s", median(sqlite), 0);
    for (const auto& [n, r] : medians) {
      const std::string x = "postgres_x" + std::to_string(n);
      line.Num(x + "_rows_per_s", r.steady, 0).Num(x + "_whole_rows_per_s", r.whole, 0);
      if (medians.count(1)) line.Num(x + "_ratio", r.steady / medians[1].steady, 2);
    }
    line.Str("librdkafka", rd_kafka_version_str()).Print();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dispatcher_scaling: %s\n", e.what());
    return 1;
  }
}
