// What the PostgreSQL store's tests share: the fixture's server
// (scripts/postgres_cluster.py), a fresh database per test, plain SQL through
// libpq, and bounded waits.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dispatch/outbox_store.h"
#include "dispatch/stores/postgres_store.h"

struct pg_conn;
typedef struct pg_conn PGconn;

namespace dispatch::test {

// The superuser connection string of the fixture's server, read from
// $DISPATCH_POSTGRES_CLUSTER_DIR/conninfo. Throws std::runtime_error.
std::string ServerConninfo();

// One plain libpq session for the tests' own SQL.
class SqlSession {
 public:
  explicit SqlSession(const std::string& conninfo);  // throws std::runtime_error
  ~SqlSession();
  SqlSession(const SqlSession&) = delete;
  SqlSession& operator=(const SqlSession&) = delete;

  // Runs one statement and returns the first column of the first row (""
  // when there is none). Throws std::runtime_error with PostgreSQL's message.
  std::string Query(const std::string& sql);

 private:
  PGconn* conn_;
};

// SqlSession(conninfo).Query(sql), for a single statement.
std::string Query(const std::string& conninfo, const std::string& sql);

// A database of its own for one test, dropped (with its sessions) at the end.
class ScratchDatabase {
 public:
  ScratchDatabase();
  ~ScratchDatabase();
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  // Connects to this database; `application_name` lets a test find the
  // session in pg_stat_activity.
  std::string Conninfo(const std::string& application_name = "dispatch-test") const;
  // Ends the sessions of `application_name` (a plain name: it is not
  // escaped) as a failover or an operator would (pg_terminate_backend).
  void TerminateSessions(const std::string& application_name) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

OutboxRow Row(const std::string& key, const std::string& payload = "payload",
              std::vector<Header> headers = {}, const std::string& topic = "orders");
std::vector<std::int64_t> IdsOf(const std::vector<OutboxRow>& rows);

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// Claims with `store` until a claim gets rows (a StoreError, such as the
// one that reports a lost connection, counts as none), for up to `timeout`;
// returns their ids, and leaves the claim open.
std::vector<std::int64_t> ClaimWhenFree(PostgresStore& store, std::chrono::milliseconds timeout);

}  // namespace dispatch::test
