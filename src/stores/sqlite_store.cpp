#include "dispatch/stores/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>

#include "stores/sqlite_db.h"

namespace dispatch {
namespace {

using sqlite::FromMs;
using sqlite::Statement;
using sqlite::ToMs;
using SystemClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

// How often WaitForRows reads PRAGMA data_version. SQLite cannot wake a
// connection on another's commit, but the pragma only reads the WAL index in
// shared memory (no disk I/O, microseconds), so reading it every 5 ms costs
// little and keeps a woken row's delay below the 10 ms of poll_min.
constexpr auto kDataVersionPoll = std::chrono::milliseconds(5);

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

}  // namespace

SqliteStore::SqliteStore(const std::string& path) : path_(path), db_(sqlite::OpenOutbox(path)) {
  try {
    seen_version_ = DataVersion();
  } catch (const StoreError&) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

void SqliteStore::Exec(const char* sql, const char* what) { sqlite::Exec(db_, path_, sql, what); }

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
                   "state = CASE WHEN ?3 THEN 'parked' ELSE 'pending' END, "
                   "parked_at = CASE WHEN ?3 THEN ?5 ELSE parked_at END "
                   "WHERE id = ?4 AND state = 'pending'",
                   "Finish: record a failure");
    for (const RowFailure& f : failures) {
      fail.BindText(1, f.error).Bind(2, ToMs(f.retry_at)).Bind(3, f.park ? 1 : 0).Bind(4, f.id);
      fail.Bind(5, now);
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
