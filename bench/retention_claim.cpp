// What published rows kept in the outbox, and retention deleting them, cost
// a dispatcher's claims (issue 21, item 3): one PostgresStore drains
// freshly inserted pending rows (Claim of `batch` rows, then Finish marking
// them all, as a dispatcher whose publisher acknowledges at once) on a table
// that also holds 0, 1 million or 5 million published rows, without and
// with a PostgresAdmin deleting published rows (DeletePublished in a loop,
// as fast as it goes: the worst case) on a connection of its own.
//
// Per run: rows/s of the drain, the claiming backend's CPU per round (a
// claim and its finish; utime + stime from /proc, so the server must run on
// this machine), its wall time per round, and the retention backend's rows
// deleted. Every figure is printed beside the baseline (0 published rows, no
// retention) of the same invocation, with the ratio. The published rows are
// written with INSERT ... SELECT generate_series and vacuumed and analyzed
// (a table an autovacuum has seen), all published two days ago.
//
//   retention_claim [--postgres CONNINFO] [--published 0,1000000,5000000]
//                   [--rows 50000] [--keys 2000] [--batch 500] [--repeat 3]
//
// Without --postgres it starts a throwaway server with
// scripts/postgres_cluster.py (fsync off, shared_buffers 32MB). Ends with
// one JSON line (bench/json_line.h).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/stores/postgres_admin.h"
#include "dispatch/stores/postgres_store.h"
#include "json_line.h"
#include "postgres_sql.h"

namespace {

using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

struct Options {
  std::string postgres;
  std::vector<long> published = {0, 1'000'000, 5'000'000};
  long rows = 50'000;
  long keys = 2'000;
  int batch = 500;
  int repeat = 3;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "retention_claim: %s\nusage: retention_claim [--postgres CONNINFO] "
               "[--published N,N,...] [--rows N] [--keys K] [--batch B] [--repeat R]\n",
               why.c_str());
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
    } else if (arg == "--published") {
      o.published.clear();
      std::istringstream in(value);
      for (std::string n; std::getline(in, n, ',');) o.published.push_back(std::stol(n));
    } else if (arg == "--rows") {
      o.rows = std::stol(value);
    } else if (arg == "--keys") {
      o.keys = std::stol(value);
    } else if (arg == "--batch") {
      o.batch = std::stoi(value);
    } else if (arg == "--repeat") {
      o.repeat = std::stoi(value);
    } else {
      Usage("unknown option " + arg);
    }
  }
  if (o.rows <= 0 || o.keys <= 0 || o.batch <= 0 || o.repeat <= 0 || o.published.empty()) {
    Usage("--rows, --keys, --batch and --repeat must be positive");
  }
  return o;
}

// utime + stime of a process, seconds.
double ProcessCpu(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int BackendPid(const std::string& conninfo, const std::string& application) {
  return std::stoi(bench::Sql(
      conninfo,
      "SELECT pid FROM pg_stat_activity WHERE application_name = '" + application + "' LIMIT 1"));
}

struct Run {
  double rows_per_s = 0;
  double cpu_us_per_round = 0;  // the claiming backend
  double wall_ms_per_round = 0;
  double deleted = 0;  // by retention during the drain
  double retention_cpu_us_per_row = 0;
  long published_at_start = 0;
};

// Seeds `rows` pending rows over `keys` keys and drains them with one store,
// with or without a retention loop beside it.
Run Drain(const Options& o, const std::string& conninfo, bool retention) {
  bench::Sql(conninfo, "INSERT INTO outbox (key, topic, payload) SELECT 'k' || (g % " +
                           std::to_string(o.keys) +
                           "), 'orders', convert_to(repeat('x', 150), 'UTF8') "
                           "FROM generate_series(1, " +
                           std::to_string(o.rows) + ") g");
  Run run;
  run.published_at_start =
      std::stol(bench::Sql(conninfo, "SELECT count(*) FROM outbox WHERE state = 'published'"));
  dispatch::PostgresStore store(conninfo + " application_name=retention_bench_claim",
                                {.migrate = false, .listen = false});
  dispatch::PostgresAdmin admin(conninfo + " application_name=retention_bench_delete");
  const int claim_pid = BackendPid(conninfo, "retention_bench_claim");
  const int delete_pid = BackendPid(conninfo, "retention_bench_delete");

  std::atomic<bool> stop{false};
  std::atomic<long> deleted{0};
  double delete_cpu_before = ProcessCpu(delete_pid);
  std::thread deleter;
  if (retention) {
    deleter = std::thread([&] {
      while (!stop) {
        const auto n = admin.DeletePublished(Clock::now() - std::chrono::hours(24), 5000);
        deleted += n;
        if (n < 5000) {  // a pass ended: the next one starts over
          for (int i = 0; i < 10 && !stop; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }
      }
    });
  }
  const double cpu_before = ProcessCpu(claim_pid);
  const auto started = Steady::now();
  long drained = 0;
  long rounds = 0;
  for (;;) {
    const auto rows = store.Claim(static_cast<std::size_t>(o.batch), Clock::now());
    ++rounds;
    std::vector<std::int64_t> ids;
    for (const auto& r : rows) ids.push_back(r.id);
    store.Finish(ids, {});
    drained += static_cast<long>(ids.size());
    if (rows.empty()) break;
  }
  const double seconds = std::chrono::duration<double>(Steady::now() - started).count();
  const double cpu = ProcessCpu(claim_pid) - cpu_before;
  stop = true;
  if (deleter.joinable()) deleter.join();
  run.rows_per_s = static_cast<double>(drained) / seconds;
  run.cpu_us_per_round = cpu * 1e6 / static_cast<double>(rounds);
  run.wall_ms_per_round = seconds * 1e3 / static_cast<double>(rounds);
  run.deleted = static_cast<double>(deleted);
  run.retention_cpu_us_per_row =
      deleted > 0 ? (ProcessCpu(delete_pid) - delete_cpu_before) * 1e6 / run.deleted : 0;
  return run;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double LoadAverage() {
  double one = 0;
  std::ifstream("/proc/loadavg") >> one;
  return one;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  try {
    bench::PostgresServer server(o.postgres, DISPATCH_PYTHON, DISPATCH_POSTGRES_CLUSTER);
    std::printf(
        "retention_claim: drains of %ld rows over %ld keys, claims of %d, %d runs each; "
        "load average %.2f at start\n",
        o.rows, o.keys, o.batch, o.repeat, LoadAverage());
    std::printf("%-10s %-9s %9s %10s %12s %8s %11s %8s %10s %12s\n", "published", "retention",
                "rows/s", "ratio", "cpu us/round", "ratio", "ms/round", "ratio", "deleted",
                "del cpu us/r");
    struct Key {
      long published;
      bool retention;
      bool operator<(const Key& k) const {
        return published != k.published ? published < k.published : retention < k.retention;
      }
    };
    std::map<Key, std::vector<Run>> runs;
    Run base;
    bench::Json json;
    json.Str("bench", "retention_claim").Int("rows", o.rows).Int("batch", o.batch);
    for (long published : o.published) {
      const std::string database = "retention_claim_" + std::to_string(published);
      bench::Sql(server.conninfo(), "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
      bench::Sql(server.conninfo(), "CREATE DATABASE " + database);
      const std::string conninfo = server.conninfo() + " dbname=" + database;
      { dispatch::PostgresStore migrate(conninfo); }
      const auto fill_started = Steady::now();
      if (published > 0) {
        bench::Sql(conninfo,
                   "INSERT INTO outbox (key, topic, payload, created_at, state, published_at) "
                   "SELECT 'k' || (g % " +
                       std::to_string(o.keys) +
                       "), 'orders', convert_to(repeat('x', 150), 'UTF8'), "
                       "now() - interval '3 days', 'published', now() - interval '2 days' "
                       "FROM generate_series(1, " +
                       std::to_string(published) + ") g");
      }
      bench::Sql(conninfo, "VACUUM ANALYZE outbox");
      std::printf("# %ld published rows written and vacuumed in %.1f s\n", published,
                  std::chrono::duration<double>(Steady::now() - fill_started).count());
      for (bool retention : {false, true}) {
        if (published == 0 && retention) continue;
        std::vector<Run>& got = runs[{published, retention}];
        for (int r = 0; r < o.repeat; ++r) got.push_back(Drain(o, conninfo, retention));
        std::vector<double> rows_per_s, cpu, wall, deleted, del_cpu;
        for (const Run& run : got) {
          rows_per_s.push_back(run.rows_per_s);
          cpu.push_back(run.cpu_us_per_round);
          wall.push_back(run.wall_ms_per_round);
          deleted.push_back(run.deleted);
          del_cpu.push_back(run.retention_cpu_us_per_row);
        }
        Run m;
        m.rows_per_s = Median(rows_per_s);
        m.cpu_us_per_round = Median(cpu);
        m.wall_ms_per_round = Median(wall);
        m.deleted = Median(deleted);
        m.retention_cpu_us_per_row = Median(del_cpu);
        if (published == 0 && !retention) base = m;
        std::printf("%-10ld %-9s %9.0f %10.2f %12.0f %8.2f %11.2f %8.2f %10.0f %12.1f\n", published,
                    retention ? "on" : "off", m.rows_per_s, m.rows_per_s / base.rows_per_s,
                    m.cpu_us_per_round, m.cpu_us_per_round / base.cpu_us_per_round,
                    m.wall_ms_per_round, m.wall_ms_per_round / base.wall_ms_per_round, m.deleted,
                    m.retention_cpu_us_per_row);
        for (const Run& run : got) {
          std::printf("#   run: %ld published at start, %.0f rows/s, %.0f us/round, %.0f deleted\n",
                      run.published_at_start, run.rows_per_s, run.cpu_us_per_round, run.deleted);
        }
        std::fflush(stdout);
        const std::string tag = std::to_string(published) + (retention ? "_retention" : "");
        json.Num("rows_per_s_" + tag, m.rows_per_s, 0)
            .Num("cpu_us_per_round_" + tag, m.cpu_us_per_round, 1)
            .Num("cpu_ratio_" + tag, m.cpu_us_per_round / base.cpu_us_per_round)
            .Num("rows_per_s_ratio_" + tag, m.rows_per_s / base.rows_per_s);
        if (retention) json.Num("deleted_" + tag, m.deleted, 0);
      }
      bench::Sql(server.conninfo(), "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
    }
    json.Num("load_average_end", LoadAverage(), 2);
    json.Print();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "retention_claim: %s\n", e.what());
    return 1;
  }
  return 0;
}
