#include "stores/sqlite_db.h"

namespace dispatch::sqlite {
namespace {

// The column names and states are PostgreSQL's (sql/postgres/001_outbox.sql);
// the types are SQLite's own: times are INTEGER milliseconds since the epoch.
// `key` is a keyword SQLite (and PostgreSQL) accept as a column name unquoted.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  key          TEXT    NOT NULL,
  topic        TEXT    NOT NULL,
  payload      BLOB    NOT NULL,
  headers      BLOB    NOT NULL DEFAULT x'',
  created_at   INTEGER NOT NULL,
  retry_at     INTEGER NOT NULL DEFAULT 0,
  published_at INTEGER,
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  state        TEXT    NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'published', 'parked')),
  parked_at    INTEGER  -- last, where the upgrade of an older file adds it
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_pending_key ON outbox (key, id)
  WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_pending_created ON outbox (created_at)
  WHERE state = 'pending';
-- The pending rows that failed and wait for a retry (normally none): the
-- claim's check for an earlier row of a key that is not due probes this
-- instead of walking the key's pending rows, which made a claim of a hot
-- key's rows quadratic in the rows claimed.
CREATE INDEX IF NOT EXISTS outbox_pending_retry ON outbox (key, id)
  WHERE state = 'pending' AND retry_at > 0;
-- The parked rows, for the operator commands (SqliteAdmin); a row enters it
-- only when it is parked.
CREATE INDEX IF NOT EXISTS outbox_parked ON outbox (id) WHERE state = 'parked';
)sql";

// A table made by an older version is brought to today's layout, inside the
// constructor's transaction, so that a file is never left half upgraded; on a
// current table (or none) it changes nothing.
void Upgrade(sqlite3* db_, const std::string& path_) {
  bool exists = false;
  bool has_key = false;
  bool has_aggregate_id = false;
  bool has_retry_at = false;
  bool has_parked_at = false;
  {
    // Finalized before the ALTERs below.
    Statement columns(db_, path_, "SELECT name FROM pragma_table_info('outbox')",
                      "read the schema");
    while (columns.Step()) {
      const std::string name = columns.Bytes(0);
      exists = true;
      has_key = has_key || name == "key";
      has_aggregate_id = has_aggregate_id || name == "aggregate_id";
      has_retry_at = has_retry_at || name == "retry_at";
      has_parked_at = has_parked_at || name == "parked_at";
    }
  }
  if (!exists) return;
  // Before 0.2.0 the key column was aggregate_id (PostgreSQL's is key).
  // RENAME COLUMN rewrites the indexes, triggers and views that name it too.
  if (has_aggregate_id && !has_key) {
    Exec(db_, path_, "ALTER TABLE outbox RENAME COLUMN aggregate_id TO key",
         "rename the column aggregate_id to key (needs SQLite 3.25 or newer)");
  }
  if (!has_retry_at) {
    Exec(db_, path_, "ALTER TABLE outbox ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0",
         "add the retry_at column");
  }
  if (!has_parked_at) {
    Exec(db_, path_, "ALTER TABLE outbox ADD COLUMN parked_at INTEGER", "add the parked_at column");
  }
}

}  // namespace

void Exec(sqlite3* db_, const std::string& path_, const char* sql, const char* what) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      why = "it is locked by another process (" + why + ")";
    }
    throw StoreError("database \"" + path_ + "\": " + what + ": " + why);
  }
}

sqlite3* OpenOutbox(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    throw StoreError("cannot open database \"" + path + "\": " + why);
  }
  sqlite3_busy_timeout(db, 1000);
  try {
    Exec(db, path, "PRAGMA journal_mode=WAL", "set WAL mode");
    Exec(db, path, "PRAGMA synchronous=NORMAL", "set synchronous=NORMAL");
    // Take the write lock once now, so a database held by another writer is
    // reported at start rather than midway.
    Exec(db, path, "BEGIN IMMEDIATE", "lock for the schema");
    Upgrade(db, path);
    Exec(db, path, kSchema, "create the schema");
    Exec(db, path, "COMMIT", "commit the schema");
  } catch (const StoreError&) {
    sqlite3_close(db);
    throw;
  }
  return db;
}

}  // namespace dispatch::sqlite
