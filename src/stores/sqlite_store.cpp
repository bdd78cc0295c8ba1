#include "dispatch/stores/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>

namespace dispatch {
namespace {

using SystemClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

// How often WaitForRows reads PRAGMA data_version. SQLite cannot wake a
// connection on another's commit, but the pragma only reads the WAL index in
// shared memory (no disk I/O, microseconds), so reading it every 5 ms costs
// little and keeps a woken row's delay below the 10 ms of poll_min.
constexpr auto kDataVersionPoll = std::chrono::milliseconds(5);

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
               CHECK (state IN ('pending', 'published', 'parked'))
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
)sql";

// A row is claimable when it is due and no earlier pending row of its key is
// not due: each key yields the due prefix of its pending rows. The terms
// `state = 'pending' AND retry_at > 0` name the partial index
// outbox_pending_retry, which SQLite uses only when the query repeats them.
constexpr const char* kClaim = R"sql(
SELECT id, key, topic, payload, headers, attempts, created_at FROM outbox AS o
WHERE state = 'pending' AND retry_at <= ?1
  AND NOT EXISTS (SELECT 1 FROM outbox AS e
                  WHERE e.state = 'pending' AND e.retry_at > 0 AND e.key = o.key
                    AND e.id < o.id AND e.retry_at > ?1)
ORDER BY id LIMIT ?2
)sql";

std::int64_t ToMs(SystemClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

SystemClock::time_point FromMs(std::int64_t ms) {
  return SystemClock::time_point(std::chrono::milliseconds(ms));
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

}  // namespace

SqliteStore::SqliteStore(const std::string& path) : path_(path) {
  const int rc =
      sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError("cannot open database \"" + path + "\": " + why);
  }
  sqlite3_busy_timeout(db_, 1000);
  try {
    Exec("PRAGMA journal_mode=WAL", "set WAL mode");
    Exec("PRAGMA synchronous=NORMAL", "set synchronous=NORMAL");
    // Take the write lock once now, so a database held by another writer is
    // reported at start rather than midway.
    Exec("BEGIN IMMEDIATE", "lock for the schema");
    Upgrade();
    Exec(kSchema, "create the schema");
    Exec("COMMIT", "commit the schema");
    seen_version_ = DataVersion();
  } catch (const StoreError&) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

// A table made by an older version is brought to today's layout, inside the
// constructor's transaction, so that a file is never left half upgraded; on a
// current table (or none) it changes nothing.
void SqliteStore::Upgrade() {
  bool exists = false;
  bool has_key = false;
  bool has_aggregate_id = false;
  bool has_retry_at = false;
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
    }
  }
  if (!exists) return;
  // Before 0.2.0 the key column was aggregate_id (PostgreSQL's is key).
  // RENAME COLUMN rewrites the indexes, triggers and views that name it too.
  if (has_aggregate_id && !has_key) {
    Exec("ALTER TABLE outbox RENAME COLUMN aggregate_id TO key",
         "rename the column aggregate_id to key (needs SQLite 3.25 or newer)");
  }
  if (!has_retry_at) {
    Exec("ALTER TABLE outbox ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0",
         "add the retry_at column");
  }
}

void SqliteStore::Exec(const char* sql, const char* what) {
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

std::vector<OutboxRow> SqliteStore::Claim(std::size_t limit, SystemClock::time_point now) {
  if (claim_open_) {
    throw StoreError("database \"" + path_ +
                     "\": Claim while a claim is open; Finish or Release it");
  }
  // Read before the rows, so that a commit after it wakes the next wait,
  // whether or not this claim saw its rows.
  seen_version_ = DataVersion();
  Statement select(db_, path_, kClaim, "claim");
  select.Bind(1, ToMs(now))
      .Bind(2, static_cast<std::int64_t>(
                   std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max())));
  std::vector<OutboxRow> rows;
  while (select.Step()) {
    OutboxRow r;
    r.id = select.Int(0);
    r.key = select.Bytes(1);
    r.topic = select.Bytes(2);
    r.payload = select.Bytes(3);
    r.headers = DecodeHeaders(select.Bytes(4));
    r.attempts = static_cast<int>(select.Int(5));
    r.created_at = FromMs(select.Int(6));
    rows.push_back(std::move(r));
  }
  claimed_.clear();
  for (const OutboxRow& r : rows) claimed_.push_back(r.id);
  claim_open_ = true;
  return rows;
}

void SqliteStore::Finish(const std::vector<std::int64_t>& published,
                         const std::vector<RowFailure>& failures) {
  const auto check_claimed = [this](std::int64_t id) {
    if (!claim_open_ || !std::binary_search(claimed_.begin(), claimed_.end(), id)) {
      throw StoreError("database \"" + path_ + "\": Finish: row " + std::to_string(id) +
                       " is not in the open claim");
    }
  };
  for (std::int64_t id : published) check_claimed(id);
  for (const RowFailure& f : failures) check_claimed(f.id);

  Exec("BEGIN IMMEDIATE", "Finish");
  try {
    const std::int64_t now = ToMs(SystemClock::now());
    Statement mark(db_, path_,
                   "UPDATE outbox SET state = 'published', published_at = ?1, last_error = NULL "
                   "WHERE id = ?2 AND state = 'pending'",
                   "Finish: mark published");
    for (std::int64_t id : published) mark.Bind(1, now).Bind(2, id).UpdateOne(id);
    Statement fail(db_, path_,
                   "UPDATE outbox SET attempts = attempts + 1, last_error = ?1, retry_at = ?2, "
                   "state = CASE WHEN ?3 THEN 'parked' ELSE 'pending' END "
                   "WHERE id = ?4 AND state = 'pending'",
                   "Finish: record a failure");
    for (const RowFailure& f : failures) {
      fail.BindText(1, f.error).Bind(2, ToMs(f.retry_at)).Bind(3, f.park ? 1 : 0).Bind(4, f.id);
      fail.UpdateOne(f.id);
    }
    Exec("COMMIT", "Finish: commit");
  } catch (const StoreError&) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  Release();
}

void SqliteStore::Release() noexcept {
  claimed_.clear();
  claim_open_ = false;
}

std::optional<SystemClock::time_point> SqliteStore::OldestPending() {
  Statement select(db_, path_, "SELECT MIN(created_at) FROM outbox WHERE state = 'pending'",
                   "read the oldest pending row");
  select.Step();
  if (select.IsNull(0)) return std::nullopt;
  return FromMs(select.Int(0));
}

std::int64_t SqliteStore::DataVersion() {
  Statement pragma(db_, path_, "PRAGMA data_version", "read the data version");
  pragma.Step();
  return pragma.Int(0);
}

bool SqliteStore::WaitForRows(SteadyClock::time_point until, const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any stopped;  // woken by nothing but the stop request
  std::unique_lock lock(mu);
  while (!stop.stop_requested()) {
    std::int64_t version = 0;
    try {
      version = DataVersion();
    } catch (const StoreError&) {
      return false;  // the next Claim meets the same failure and reports it
    }
    if (version != seen_version_) {
      seen_version_ = version;
      return true;
    }
    const auto now = SteadyClock::now();
    if (now >= until) return false;
    stopped.wait_until(lock, stop, std::min(until, now + kDataVersionPoll), [] { return false; });
  }
  return false;
}

std::vector<std::int64_t> SqliteStore::Append(const std::vector<OutboxRow>& rows) {
  Exec("BEGIN IMMEDIATE", "Append");
  std::vector<std::int64_t> ids;
  try {
    Statement insert(db_, path_,
                     "INSERT INTO outbox (key, topic, payload, headers, created_at) "
                     "VALUES (?, ?, ?, ?, ?)",
                     "Append");
    const std::int64_t now = ToMs(SystemClock::now());
    for (const OutboxRow& r : rows) {
      insert.BindText(1, r.key).BindText(2, r.topic).BindBlob(3, r.payload);
      insert.BindBlob(4, EncodeHeaders(r.headers));
      insert.Bind(5, r.created_at == SystemClock::time_point{} ? now : ToMs(r.created_at));
      insert.Run();
      ids.push_back(sqlite3_last_insert_rowid(db_));
    }
    Exec("COMMIT", "Append: commit");
  } catch (const StoreError&) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return ids;
}

OutboxCounts SqliteStore::Count() {
  Statement select(db_, path_, "SELECT state, COUNT(*) FROM outbox GROUP BY state", "Count");
  OutboxCounts c;
  while (select.Step()) {
    const std::string state = select.Bytes(0);
    const std::int64_t n = select.Int(1);
    if (state == "pending") c.pending = n;
    if (state == "published") c.published = n;
    if (state == "parked") c.parked = n;
  }
  return c;
}

std::vector<std::int64_t> SqliteStore::Ids(RowState state, const std::string& topic) {
  Statement select(db_, path_,
                   "SELECT id FROM outbox WHERE state = ?1 AND (?2 = '' OR topic = ?2) ORDER BY id",
                   "Ids");
  select.BindText(1, std::string(ToString(state))).BindText(2, topic);
  std::vector<std::int64_t> ids;
  while (select.Step()) ids.push_back(select.Int(0));
  return ids;
}

}  // namespace dispatch
