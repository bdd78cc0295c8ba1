#include "postgres/postgres_test_support.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>

namespace dispatch::test {
namespace {

std::string Escaped(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

std::string ServerConninfo() {
  const char* dir = std::getenv("DISPATCH_POSTGRES_CLUSTER_DIR");
  if (!dir)
    throw std::runtime_error("DISPATCH_POSTGRES_CLUSTER_DIR is not set (run through ctest)");
  std::ifstream in(std::string(dir) + "/conninfo");
  std::string conninfo;
  if (!std::getline(in, conninfo) || conninfo.empty()) {
    throw std::runtime_error(std::string("no conninfo in ") + dir +
                             " (did postgres_server.start run?)");
  }
  return conninfo;
}

SqlSession::SqlSession(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string error = PQerrorMessage(conn_);
    PQfinish(conn_);
    throw std::runtime_error("connect: " + error);
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

SqlSession::~SqlSession() { PQfinish(conn_); }

std::string SqlSession::Query(const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn_, sql.c_str()), PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  }
  if (PQntuples(result.get()) == 0 || PQnfields(result.get()) == 0) return "";
  return PQgetvalue(result.get(), 0, 0);
}

std::string Query(const std::string& conninfo, const std::string& sql) {
  return SqlSession(conninfo).Query(sql);
}

ScratchDatabase::ScratchDatabase() {
  static std::atomic<int> counter{0};
  name_ = "dispatch_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
          std::to_string(std::random_device()() % 100000);
  Query(ServerConninfo(), "CREATE DATABASE " + name_);
}

ScratchDatabase::~ScratchDatabase() {
  try {
    Query(ServerConninfo(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // The server is thrown away after the run anyway.
  }
}

std::string ScratchDatabase::Conninfo(const std::string& application_name) const {
  // A keyword given twice takes its last value.
  return ServerConninfo() + " dbname=" + name_ + " application_name=" + Escaped(application_name);
}

void ScratchDatabase::TerminateSessions(const std::string& application_name) const {
  Query(Conninfo(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                        name_ + "' AND application_name = '" + application_name + "'");
}

OutboxRow Row(const std::string& key, const std::string& payload, std::vector<Header> headers,
              const std::string& topic) {
  OutboxRow row;
  row.key = key;
  row.topic = topic;
  row.payload = payload;
  row.headers = std::move(headers);
  return row;
}

std::vector<std::int64_t> IdsOf(const std::vector<OutboxRow>& rows) {
  std::vector<std::int64_t> ids;
  for (const OutboxRow& row : rows) ids.push_back(row.id);
  return ids;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::vector<std::int64_t> ClaimWhenFree(PostgresStore& store, std::chrono::milliseconds timeout) {
  std::vector<std::int64_t> ids;
  WaitFor(
      [&] {
        try {
          ids = IdsOf(store.Claim(100, std::chrono::system_clock::now()));
        } catch (const StoreError&) {
        }
        return !ids.empty();
      },
      timeout);
  return ids;
}

}  // namespace dispatch::test
