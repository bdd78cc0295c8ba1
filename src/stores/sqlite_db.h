// What SqliteStore and SqliteAdmin share: opening an outbox file (its
// schema, and the upgrade of a table an older version made), statements
// whose errors name the file, and the times as SQLite keeps them.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "dispatch/outbox_store.h"

namespace dispatch::sqlite {

// Opens (creating if needed) the database at `path` in WAL mode with a 1 s
// busy timeout and creates the table, or upgrades one made by an older
// version, in one transaction. Throws StoreError naming the path.
sqlite3* OpenOutbox(const std::string& path);

// Runs SQL without results; a StoreError names the file and `what`.
void Exec(sqlite3* db, const std::string& path, const char* sql, const char* what);

inline std::int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline std::chrono::system_clock::time_point FromMs(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// One prepared statement; every failure is a StoreError naming the file and
// the operation.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, const char* sql, const char* what)
      : db_(db), path_(path), what_(what) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) Fail();
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int index, std::int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& BindText(int index, const std::string& value) {
    Check(sqlite3_bind_text(stmt_, index, value.data(), Size(value), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& BindBlob(int index, const std::string& value) {
    // A zero-length blob must not bind as NULL (the columns are NOT NULL).
    Check(sqlite3_bind_blob(stmt_, index, value.empty() ? "" : value.data(), Size(value),
                            SQLITE_TRANSIENT));
    return *this;
  }
  // True while it yields rows; false when done.
  bool Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) Fail();
    return false;
  }
  // Runs a statement that returns no rows, then resets it for reuse.
  // Makes a statement that yielded rows ready to run again.
  void Reset() { sqlite3_reset(stmt_); }
  void Run() {
    Step();
    sqlite3_reset(stmt_);
  }
  // Runs a statement that changes exactly one row, then resets it for reuse.
  void UpdateOne(std::int64_t id) {
    Run();
    if (sqlite3_changes(db_) != 1) {
      throw StoreError("database \"" + path_ + "\": " + what_ + ": row " + std::to_string(id) +
                       " is not pending");
    }
  }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string Bytes(int column) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
  }

 private:
  int Size(const std::string& value) {
    if (value.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw StoreError("database \"" + path_ + "\": " + what_ + ": a value of " +
                       std::to_string(value.size()) + " bytes is larger than SQLite accepts");
    }
    return static_cast<int>(value.size());
  }
  void Check(int rc) {
    if (rc != SQLITE_OK) Fail();
  }
  [[noreturn]] void Fail() {
    throw StoreError("database \"" + path_ + "\": " + what_ + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  const std::string& path_;
  std::string what_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace dispatch::sqlite
