// One libpq connection with the few things the PostgreSQL store needs:
// statements with binary parameters and results, errors that never carry the
// password, and an explicit reconnect (never an implicit one: a claim must not
// silently continue on a new session that holds none of its locks).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace dispatch::pg {

struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// The parameters of one statement. Strings go in binary format, so a text
// holding a NUL byte is rejected by the server instead of cut short, and
// bytea needs no escaping; arrays go as text literals, to be cast in SQL
// ($1::text[]).
class Params {
 public:
  Params& Bytes(std::string_view value);
  Params& Int(std::int64_t value);
  Params& Bool(bool value);
  Params& Time(std::chrono::system_clock::time_point value);  // a timestamptz
  // A timestamptz, or NULL for the clock's epoch (an unset time_point).
  Params& TimeOrNull(std::chrono::system_clock::time_point value);
  Params& TextArray(const std::vector<std::string>& values);
  Params& IntArray(const std::vector<std::int64_t>& values);
  Params& BoolArray(const std::vector<bool>& values);

 private:
  friend class Connection;
  void Add(std::string value, int format, Oid type, bool null = false);
  std::deque<std::string> values_;  // a deque keeps the pointers below valid
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  std::vector<Oid> types_;
};

class Connection {
 public:
  // Connects and runs `session_setup` (SQL, may be empty), again after each
  // reconnect. Throws StoreError.
  Connection(const std::string& conninfo, std::string session_setup);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement and returns its rows in binary format. Throws
  // StoreError "<what> failed: <reason>" when it fails; the connection may
  // then be lost (see Lost).
  Result Exec(std::string_view what, const char* sql, const Params& params = {});
  // As Exec, through a statement prepared under `name` on the session's
  // first use (again after a reconnect): parsed and planned once, not at
  // every call. `params` must have the same types at every call.
  Result ExecPrepared(std::string_view what, const char* name, const char* sql,
                      const Params& params = {});
  // Off: ExecPrepared runs its statement as Exec does (a pooler in
  // transaction mode without prepared statement support).
  void Prepare(bool on) { prepare_ = on; }
  // Runs several statements, no parameters, no rows (a migration). Throws
  // as Exec does.
  void ExecScript(std::string_view what, const char* sql);
  // Runs a statement whose failure does not matter (a rollback).
  void ExecQuietly(const char* sql) noexcept;

  bool Lost() const;
  // Connects again when the connection was lost; true when it did (the
  // session setup ran again). Throws StoreError.
  bool Reconnect();

  // Notifications (pg_notify.h): the socket to wait on, reading what
  // arrived without blocking (false when the connection broke), and taking
  // the notifications read so far (how many there were).
  int Socket() const;
  bool ConsumeInput();
  int TakeNotifications();

  // A StoreError text: the operation, PostgreSQL's reason, the password masked.
  std::string Describe(std::string_view what, std::string_view reason) const;

 private:
  void Setup();
  Result Checked(std::string_view what, PGresult* raw) const;
  PGconn* conn_ = nullptr;
  std::string password_;
  std::string session_setup_;
  std::unordered_set<std::string> prepared_;  // statement names of this session
  bool prepare_ = true;
};

// Binary result columns.
bool Bool(const PGresult* result, int row, int column);
std::int64_t Int64(const PGresult* result, int row, int column);
std::int32_t Int32(const PGresult* result, int row, int column);
std::string Bytes(const PGresult* result, int row, int column);
std::chrono::system_clock::time_point Time(const PGresult* result, int row, int column);

}  // namespace dispatch::pg
