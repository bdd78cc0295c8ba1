// PostgreSQL for the benchmarks that need one (B8, B9): one statement on a
// connection or a fresh one, and a throwaway server started through
// scripts/postgres_cluster.py when no --postgres CONNINFO was given.
#pragma once

#include <libpq-fe.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "child_process.h"

namespace bench {

// One statement on `conn`; returns the first value ("" when none). Throws.
inline std::string Exec(PGconn* conn, const std::string& statement) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn, statement.c_str()), PQclear);
  const ExecStatusType status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(statement + ": " + PQresultErrorMessage(r.get()));
  }
  return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
}

// One statement on a fresh connection; returns the first value ("" when none).
inline std::string Sql(const std::string& conninfo, const std::string& statement) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error(std::string("connect: ") + PQerrorMessage(conn.get()));
  }
  // DROP DATABASE IF EXISTS would print a NOTICE amid the figures.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return Exec(conn.get(), statement);
}

// The server a benchmark runs on: `conninfo` when given (a role that may
// create databases), else a throwaway one that `script`
// (scripts/postgres_cluster.py, run by `python`) starts in a fresh folder
// under /tmp and stops, deleting its data, when this object goes.
class PostgresServer {
 public:
  PostgresServer(std::string conninfo, std::string python, std::string script)
      : conninfo_(std::move(conninfo)), python_(std::move(python)), script_(std::move(script)) {
    if (!conninfo_.empty()) return;
    char dir[] = "/tmp/dispatch-bench-postgres-XXXXXX";
    if (mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    int status = 0;
    RunToEnd({python_, script_, "start", "--dir", dir_}, status);
    std::ifstream in(dir_ + "/conninfo");
    std::getline(in, conninfo_);
    if (status != 0 || conninfo_.empty()) throw std::runtime_error(script_ + " start failed");
  }
  ~PostgresServer() {
    if (dir_.empty()) return;
    int status = 0;
    RunToEnd({python_, script_, "stop", "--dir", dir_}, status);
    RunToEnd({"/bin/rm", "-rf", dir_}, status);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  const std::string& conninfo() const { return conninfo_; }
  bool started_here() const { return !dir_.empty(); }

 private:
  std::string conninfo_;
  std::string python_;
  std::string script_;
  std::string dir_;  // the script's folder when started here
};

}  // namespace bench
