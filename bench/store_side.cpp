// B8's store side: N dispatchers (threads of this process, each with its own
// store and connection, as N relay processes would have) drain one
// PostgreSQL outbox through a publisher that acknowledges every message at
// once, so that the database is the only thing a round waits for. Per run:
// rows/s, the CPU time of the workers' PostgreSQL backends (utime + stime
// from /proc/PID/stat of the backends whose application_name is
// b8_worker, read before the dispatchers start and before they stop, plus
// the postmaster's children that ended meanwhile: the parallel workers a
// plan started, autovacuum workers), per
// published row, the keys a claim skipped because another claim held them,
// and samples of pg_stat_activity every 10 ms: how often a worker's backend
// waited, and on what (wait_event_type:wait_event; advisory locks are taken
// with pg_try_advisory_xact_lock, which never waits). Each run is on a fresh
// database seeded in one INSERT with N rows of about 200 bytes round-robin
// over K keys.
//
// The drain starts right after the seeding INSERT, as a relay does on a
// backlog that built up while it was down: the planner has no statistics of
// the new rows yet (autovacuum analyzes within a minute or so); --analyze
// runs VACUUM ANALYZE first.
//
// Three sides in every run, on the same server: "b1859b3", issue 20's
// starting commit's statements (bench/baseline_pg_store.h); "today",
// PostgresStore with its defaults (published rows marked); "delete", the
// same with PublishedRows::kDelete. The steady part: one worker, one connection inserting
// single-row transactions at R rows/s for S seconds; the backend CPU per row
// and the insert-to-publish latency (the insert's time travels in the
// payload). The baseline side polls there (b1859b3 had no NOTIFY), today's
// wakes on the insert trigger's NOTIFY.
#include "store_side.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "baseline_pg_store.h"
#include "bench_util.h"
#include "dispatch/dispatcher.h"
#include "dispatch/stores/postgres_store.h"
#include "json_line.h"
#include "postgres_sql.h"

namespace bench {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const char* const kWorkerApp = "b8_worker";

// Acknowledges every message at once; with `latencies`, records now minus
// the steady-clock nanoseconds that the payload starts with.
class InstantPublisher final : public dispatch::Publisher {
 public:
  explicit InstantPublisher(std::vector<double>* latencies, std::mutex* mu)
      : latencies_(latencies), mu_(mu) {}
  dispatch::Result Publish(const dispatch::Context& /*ctx*/,
                           const dispatch::Message& message) override {
    if (latencies_ != nullptr) {
      const long long sent = std::atoll(message.value.c_str());
      const long long now = SteadyClock::now().time_since_epoch().count();
      std::lock_guard lock(*mu_);
      latencies_->push_back(static_cast<double>(now - sent) / 1e6);
    }
    return dispatch::Result::Delivered();
  }

 private:
  std::vector<double>* latencies_;
  std::mutex* mu_;
};

struct ProcStat {
  int ppid = 0;
  double cpu = 0;           // utime + stime, seconds
  double children_cpu = 0;  // cutime + cstime: its children that ended, seconds
};

ProcStat ReadProcStat(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  ProcStat st;
  if (paren == std::string::npos) return st;
  std::istringstream fields(text.substr(paren + 2));
  std::string state;
  fields >> state >> st.ppid;
  std::string skip;
  for (int i = 0; i < 8; ++i) fields >> skip;  // pgrp .. cmajflt
  double utime = 0, stime = 0, cutime = 0, cstime = 0;
  fields >> utime >> stime >> cutime >> cstime;
  const auto tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  st.cpu = (utime + stime) / tick;
  st.children_cpu = (cutime + cstime) / tick;
  return st;
}

// The workers' backends' CPU, plus the server's processes that ended
// meanwhile (parallel workers a backend started, autovacuum workers): the
// postmaster's reaped children.
double BackendCpu(const std::vector<int>& pids) {
  double cpu = 0;
  for (int pid : pids) cpu += ReadProcStat(pid).cpu;
  if (!pids.empty()) cpu += ReadProcStat(ReadProcStat(pids[0]).ppid).children_cpu;
  return cpu;
}

struct Side {
  double rows_per_s = 0;
  double cpu_us_per_row = 0;  // the workers' backends
  double keys_skipped = 0;
  double rounds = 0;
  double wait_share = 0;  // samples in which a worker's backend waited, of all worker samples
  std::string waits;      // the wait events seen, with counts
  double p50_ms = 0;
  double p99_ms = 0;
};

// The b1859b3 statements; today's store marking published rows (the
// default); today's deleting them (PublishedRows::kDelete).
enum class Kind { kBaseline, kMark, kDelete };
constexpr Kind kKinds[] = {Kind::kBaseline, Kind::kMark, Kind::kDelete};
const char* Name(Kind kind) {
  switch (kind) {
    case Kind::kBaseline: return "b1859b3";
    case Kind::kMark: return "today";
    case Kind::kDelete: return "delete";
  }
  return "?";
}

struct Run {
  const StoreSideOptions& o;
  std::string conninfo;  // of the run's database

  std::unique_ptr<dispatch::OutboxStore> MakeStore(Kind kind) const {
    const std::string worker = conninfo + " application_name=" + kWorkerApp;
    if (kind == Kind::kBaseline) return std::make_unique<BaselinePgStore>(worker, true);
    dispatch::PostgresStoreOptions options;
    options.migrate = false;
    if (kind == Kind::kDelete) options.published_rows = dispatch::PublishedRows::kDelete;
    return std::make_unique<dispatch::PostgresStore>(worker, options);
  }

  static std::uint64_t Skipped(dispatch::OutboxStore& store, Kind kind) {
    if (kind == Kind::kBaseline) return static_cast<BaselinePgStore&>(store).keys_skipped.load();
    return static_cast<dispatch::PostgresStore&>(store).ClaimStats().keys_skipped;
  }

  std::vector<int> WorkerPids() const {
    std::vector<int> pids;
    std::istringstream in(Sql(conninfo, std::string("SELECT string_agg(pid::text, ' ') FROM "
                                                    "pg_stat_activity WHERE application_name = '") +
                                            kWorkerApp + "'"));
    for (int pid = 0; in >> pid;) pids.push_back(pid);
    return pids;
  }

  // Drains `rows` seeded rows with `workers` dispatchers (steady: inserts
  // them at the steady rate instead, one worker).
  Side Drain(Kind kind, int workers, bool steady) const {
    std::vector<std::unique_ptr<dispatch::OutboxStore>> stores;
    for (int i = 0; i < workers; ++i) stores.push_back(MakeStore(kind));
    std::vector<double> latencies;
    std::mutex latency_mu;
    std::vector<std::unique_ptr<dispatch::Dispatcher>> dispatchers;
    dispatch::DispatcherOptions options;
    if (o.wake_coalesce_ms > 0)
      options.wake_coalesce = std::chrono::milliseconds(o.wake_coalesce_ms);
    for (auto& store : stores) {
      dispatchers.push_back(std::make_unique<dispatch::Dispatcher>(
          *store,
          [&] {
            return std::make_unique<InstantPublisher>(steady ? &latencies : nullptr, &latency_mu);
          },
          options));
    }
    const std::vector<int> pids = WorkerPids();
    if (static_cast<int>(pids.size()) != workers) throw std::runtime_error("worker backends?");
    const double cpu_before = BackendCpu(pids);

    std::atomic<bool> sampling{true};
    std::map<std::string, long> waits;
    long samples = 0;
    long waited = 0;
    std::thread sampler([&] {
      std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(conninfo.c_str()), PQfinish);
      while (sampling) {
        std::this_thread::sleep_for(10ms);
        std::unique_ptr<PGresult, decltype(&PQclear)> r(
            PQexec(c.get(),
                   "SELECT coalesce(wait_event_type || ':' || wait_event, '') FROM "
                   "pg_stat_activity WHERE application_name = 'b8_worker' AND state = 'active'"),
            PQclear);
        samples += workers;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
          const std::string what = PQgetvalue(r.get(), i, 0);
          if (what.empty() || what == "Client:ClientRead") continue;
          ++waited;
          ++waits[what];
        }
      }
    });

    std::vector<std::jthread> threads;
    const auto start = SteadyClock::now();
    for (auto& d : dispatchers) threads.emplace_back([&d](std::stop_token stop) { d->Run(stop); });
    const auto published = [&] {
      long n = 0;
      for (auto& d : dispatchers) n += static_cast<long>(d->Metrics().published);
      return n;
    };
    long target = o.rows;
    if (steady) {
      target = static_cast<long>(o.steady_rate) * o.steady_seconds;
      std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(conninfo.c_str()), PQfinish);
      const auto gap = std::chrono::nanoseconds(1'000'000'000 / o.steady_rate);
      for (long i = 0; i < target; ++i) {
        std::this_thread::sleep_until(start + gap * i);
        const long long now = SteadyClock::now().time_since_epoch().count();
        Exec(c.get(), "INSERT INTO outbox (key, topic, payload) VALUES ('key-" +
                          std::to_string(i % o.keys) + "', 'steady', convert_to(rpad('" +
                          std::to_string(now) + " ', 200, '.'), 'UTF8'))");
      }
    }
    const auto bound = SteadyClock::now() + 600s;
    while (published() < target && SteadyClock::now() < bound) std::this_thread::sleep_for(1ms);
    const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    const double cpu_after = BackendCpu(pids);
    sampling = false;
    sampler.join();
    for (auto& t : threads) t.request_stop();
    threads.clear();
    if (published() < target) throw std::runtime_error("not drained within 600 s");

    Side side;
    side.rows_per_s = static_cast<double>(target) / seconds;
    side.cpu_us_per_row = (cpu_after - cpu_before) * 1e6 / static_cast<double>(target);
    for (std::size_t i = 0; i < stores.size(); ++i) {
      side.keys_skipped += static_cast<double>(Skipped(*stores[i], kind));
      side.rounds += static_cast<double>(dispatchers[i]->Metrics().rounds);
    }
    side.wait_share = samples > 0 ? static_cast<double>(waited) / static_cast<double>(samples) : 0;
    for (const auto& [what, n] : waits) side.waits += " " + what + " x" + std::to_string(n);
    if (side.waits.empty()) side.waits = " none";
    if (!latencies.empty()) {
      std::sort(latencies.begin(), latencies.end());
      side.p50_ms = latencies[latencies.size() / 2];
      side.p99_ms = latencies[latencies.size() * 99 / 100];
    }
    return side;
  }
};

// A fresh database with the current schema and, unless steady, the seeded
// rows; dropped after `body`.
template <typename Body>
Side OnFreshDatabase(const StoreSideOptions& o, bool seed, Body body) {
  const std::string database = "dispatch_b8_store_" + std::to_string(getpid());
  Sql(o.conninfo, "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
  Sql(o.conninfo, "CREATE DATABASE " + database);
  const Run run{o, o.conninfo + " dbname=" + database};
  { dispatch::PostgresStore migrate(run.conninfo); }
  if (seed) {
    Sql(run.conninfo,
        "INSERT INTO outbox (key, topic, payload) SELECT 'key-' || (i % " + std::to_string(o.keys) +
            "), 'drain', convert_to(rpad('row ' || i, 200, '.'), 'UTF8') " +
            "FROM generate_series(0, " + std::to_string(o.rows - 1) + ") AS i ORDER BY i");
    if (o.analyze) Sql(run.conninfo, "VACUUM ANALYZE outbox");
  }
  Side side = body(run);
  Sql(o.conninfo, "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
  return side;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void Print(const char* what, int run, const Side& s, bool steady) {
  std::printf(
      "run %d: %-8s %s: %.0f rows/s, backend CPU %.1f us/row, %.0f rounds, %.0f keys "
      "skipped, waits in %.1f%% of samples:%s",
      run, what, steady ? "steady" : "drain", s.rows_per_s, s.cpu_us_per_row, s.rounds,
      s.keys_skipped, s.wait_share * 100, s.waits.c_str());
  if (steady) std::printf(", latency p50 %.2f ms p99 %.2f ms", s.p50_ms, s.p99_ms);
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

int RunStoreSide(const StoreSideOptions& o) {
  std::printf(
      "B8 store side: %ld rows over %ld keys, batch_size 500, a publisher that "
      "acknowledges at once; steady %d rows/s for %d s\n",
      o.rows, o.keys, o.steady_rate, o.steady_seconds);
  std::map<std::string, std::vector<Side>> sides;  // "<side>_x<n>" or "<side>_steady"
  for (int run = 1; run <= o.repeat; ++run) {
    for (int n : o.workers) {
      for (Kind kind : kKinds) {
        const Side s =
            OnFreshDatabase(o, true, [&](const Run& r) { return r.Drain(kind, n, false); });
        const std::string name = std::string(Name(kind)) + "_x" + std::to_string(n);
        Print(name.c_str(), run, s, false);
        sides[name].push_back(s);
      }
    }
    if (o.steady_rate > 0) {
      for (Kind kind : kKinds) {
        const Side s =
            OnFreshDatabase(o, false, [&](const Run& r) { return r.Drain(kind, 1, true); });
        const std::string name = std::string(Name(kind)) + "_steady";
        Print(name.c_str(), run, s, true);
        sides[name].push_back(s);
      }
    }
  }
  Json line;
  line.Int("rows", o.rows).Int("keys", o.keys).Int("runs", o.repeat).Int("analyzed", o.analyze);
  line.Int("wake_coalesce_ms", o.wake_coalesce_ms > 0
                                   ? o.wake_coalesce_ms
                                   : dispatch::DispatcherOptions{}.wake_coalesce.count());
  std::printf("medians of %d run(s), today beside b1859b3 (ratio today/b1859b3):\n", o.repeat);
  for (const auto& [name, runs] : sides) {
    const bool mark = name.rfind("today", 0) == 0;
    if (!mark && name.rfind("delete", 0) != 0) continue;
    const std::string rest = name.substr(mark ? 5 : 6);
    const auto& base = sides["b1859b3" + rest];
    const auto med = [](const std::vector<Side>& v, double Side::*field) {
      std::vector<double> values;
      for (const Side& s : v) values.push_back(s.*field);
      return Median(values);
    };
    const double cpu = med(runs, &Side::cpu_us_per_row);
    const double cpu_base = med(base, &Side::cpu_us_per_row);
    const double rate = med(runs, &Side::rows_per_s);
    const double rate_base = med(base, &Side::rows_per_s);
    std::printf(
        "  %s%s: %.0f rows/s (b1859b3 %.0f), backend CPU %.1f us/row (b1859b3 %.1f, "
        "ratio %.2f), keys skipped %.0f (b1859b3 %.0f), wait share %.1f%% (b1859b3 "
        "%.1f%%)",
        rest.substr(1).c_str(), mark ? "" : " (published rows deleted)", rate, rate_base, cpu,
        cpu_base, cpu / cpu_base, med(runs, &Side::keys_skipped), med(base, &Side::keys_skipped),
        med(runs, &Side::wait_share) * 100, med(base, &Side::wait_share) * 100);
    const std::string key = (mark ? "" : "delete_") + rest.substr(1);
    line.Num(key + "_rows_per_s", rate, 0).Num(key + "_rows_per_s_b1859b3", rate_base, 0);
    line.Num(key + "_cpu_us_per_row", cpu, 1).Num(key + "_cpu_us_per_row_b1859b3", cpu_base, 1);
    line.Num(key + "_cpu_ratio", cpu / cpu_base, 2);
    line.Num(key + "_keys_skipped", med(runs, &Side::keys_skipped), 0);
    line.Num(key + "_wait_share", med(runs, &Side::wait_share), 3);
    if (rest == "_steady") {
      std::printf(", p99 %.2f ms (b1859b3 %.2f ms)", med(runs, &Side::p99_ms),
                  med(base, &Side::p99_ms));
      line.Num(key + "_p50_ms", med(runs, &Side::p50_ms), 2)
          .Num(key + "_p99_ms", med(runs, &Side::p99_ms), 2)
          .Num(key + "_p99_ms_b1859b3", med(base, &Side::p99_ms), 2);
    }
    std::printf("\n");
  }
  line.Print();
  return 0;
}

}  // namespace bench
