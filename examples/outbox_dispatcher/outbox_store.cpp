#include "outbox_store.h"

#include <sqlite3.h>

#include <chrono>
#include <memory>

namespace outbox {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  aggregate_id TEXT    NOT NULL,
  topic        TEXT    NOT NULL,
  payload      BLOB    NOT NULL,
  headers      BLOB    NOT NULL DEFAULT x'',
  created_at   INTEGER NOT NULL,
  published_at INTEGER,
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  state        TEXT    NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'published', 'parked'))
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE state = 'pending';
)sql";

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

void PutU32(std::string& out, std::size_t n) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
}

}  // namespace

std::string EncodeHeaders(const std::vector<dispatch::Header>& headers) {
  std::string out;
  for (const auto& h : headers) {
    PutU32(out, h.key.size());
    out += h.key;
    PutU32(out, h.value.size());
    out += h.value;
  }
  return out;
}

std::vector<dispatch::Header> DecodeHeaders(const std::string& blob) {
  std::vector<dispatch::Header> out;
  std::size_t pos = 0;
  const auto take = [&](std::string& field) {
    if (blob.size() - pos < 4) throw StoreError("corrupt headers column: truncated length");
    std::size_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<std::size_t>(static_cast<unsigned char>(blob[pos + i])) << (8 * i);
    pos += 4;
    if (blob.size() - pos < n) throw StoreError("corrupt headers column: truncated value");
    field.assign(blob, pos, n);
    pos += n;
  };
  while (pos < blob.size()) {
    dispatch::Header h;
    take(h.key);
    take(h.value);
    out.push_back(std::move(h));
  }
  return out;
}

Store::Store(const std::string& path) : path_(path) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError("cannot open database \"" + path + "\": " + why);
  }
  sqlite3_busy_timeout(db_, 1000);
  try {
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=NORMAL");
    // Take the write lock once now, so a database held by another writer is
    // reported at start rather than midway.
    Exec("BEGIN IMMEDIATE");
    Exec(kSchema);
    Exec("COMMIT");
  } catch (const StoreError&) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Store::~Store() { sqlite3_close(db_); }

void Store::Exec(const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      why = "it is locked by another process (" + why + ")";
    }
    throw StoreError("database \"" + path_ + "\": " + why);
  }
}

void Store::Append(const std::vector<Row>& rows) {
  Exec("BEGIN IMMEDIATE");
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_,
                     "INSERT INTO outbox (aggregate_id, topic, payload, headers, created_at) "
                     "VALUES (?, ?, ?, ?, ?)",
                     -1, &raw, nullptr);
  Stmt stmt(raw);
  const std::int64_t now = NowMs();
  for (const Row& r : rows) {
    const std::string headers = EncodeHeaders(r.headers);
    sqlite3_bind_text(raw, 1, r.aggregate_id.data(), static_cast<int>(r.aggregate_id.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(raw, 2, r.topic.data(), static_cast<int>(r.topic.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(raw, 3, r.payload.data(), static_cast<int>(r.payload.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(raw, 4, headers.data(), static_cast<int>(headers.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(raw, 5, now);
    if (sqlite3_step(raw) != SQLITE_DONE) {
      const std::string why = sqlite3_errmsg(db_);
      Exec("ROLLBACK");
      throw StoreError("database \"" + path_ + "\": insert failed: " + why);
    }
    sqlite3_reset(raw);
  }
  Exec("COMMIT");
}

std::vector<Row> Store::FetchPending(std::size_t limit) {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT id, aggregate_id, topic, payload, headers, attempts FROM outbox "
                     "WHERE state = 'pending' ORDER BY id LIMIT ?",
                     -1, &raw, nullptr);
  Stmt stmt(raw);
  sqlite3_bind_int64(raw, 1, static_cast<sqlite3_int64>(limit));
  std::vector<Row> rows;
  const auto text = [raw](int col) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(raw, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(raw, col))) : std::string();
  };
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    Row r;
    r.id = sqlite3_column_int64(raw, 0);
    r.aggregate_id = text(1);
    r.topic = text(2);
    r.payload = text(3);
    r.headers = DecodeHeaders(text(4));
    r.attempts = sqlite3_column_int(raw, 5);
    rows.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) {
    throw StoreError("database \"" + path_ + "\": fetch failed: " + sqlite3_errmsg(db_));
  }
  return rows;
}

void Store::Record(const std::vector<std::int64_t>& published, const std::vector<Failure>& failures) {
  if (published.empty() && failures.empty()) return;
  Exec("BEGIN IMMEDIATE");
  try {
    sqlite3_stmt* raw = nullptr;
    sqlite3_prepare_v2(db_,
                       "UPDATE outbox SET state = 'published', published_at = ?, "
                       "attempts = attempts + 1, last_error = NULL WHERE id = ? AND state = 'pending'",
                       -1, &raw, nullptr);
    Stmt mark(raw);
    const std::int64_t now = NowMs();
    for (std::int64_t id : published) {
      sqlite3_bind_int64(raw, 1, now);
      sqlite3_bind_int64(raw, 2, id);
      if (sqlite3_step(raw) != SQLITE_DONE) throw StoreError(sqlite3_errmsg(db_));
      sqlite3_reset(raw);
    }
    sqlite3_prepare_v2(db_,
                       "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                       "state = CASE WHEN ? THEN 'parked' ELSE state END WHERE id = ?",
                       -1, &raw, nullptr);
    Stmt fail(raw);
    for (const Failure& f : failures) {
      sqlite3_bind_text(raw, 1, f.error.data(), static_cast<int>(f.error.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int(raw, 2, f.park ? 1 : 0);
      sqlite3_bind_int64(raw, 3, f.id);
      if (sqlite3_step(raw) != SQLITE_DONE) throw StoreError(sqlite3_errmsg(db_));
      sqlite3_reset(raw);
    }
    Exec("COMMIT");
  } catch (const StoreError& e) {
    Exec("ROLLBACK");
    throw StoreError("database \"" + path_ + "\": recording results failed: " + e.what());
  }
}

Counts Store::Count() {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_, "SELECT state, COUNT(*) FROM outbox GROUP BY state", -1, &raw, nullptr);
  Stmt stmt(raw);
  Counts c;
  while (sqlite3_step(raw) == SQLITE_ROW) {
    const std::string state = reinterpret_cast<const char*>(sqlite3_column_text(raw, 0));
    const std::int64_t n = sqlite3_column_int64(raw, 1);
    if (state == "pending") c.pending = n;
    if (state == "published") c.published = n;
    if (state == "parked") c.parked = n;
  }
  return c;
}

std::vector<std::int64_t> Store::Ids(State state, const std::string& topic) {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT id FROM outbox WHERE state = ?1 AND (?2 = '' OR topic = ?2) ORDER BY id",
                     -1, &raw, nullptr);
  Stmt stmt(raw);
  const char* name = state == State::kPending ? "pending" : state == State::kPublished ? "published" : "parked";
  sqlite3_bind_text(raw, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(raw, 2, topic.data(), static_cast<int>(topic.size()), SQLITE_TRANSIENT);
  std::vector<std::int64_t> ids;
  while (sqlite3_step(raw) == SQLITE_ROW) ids.push_back(sqlite3_column_int64(raw, 0));
  return ids;
}

}  // namespace outbox
