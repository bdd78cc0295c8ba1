#include "dispatch/stores/postgres_store.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <unordered_set>
#include <utility>

#include "stores/pg_connection.h"
#include "stores/pg_notify.h"
#include "stores/postgres_migrations.h"

namespace dispatch {
namespace {

// Key of the transaction-scoped advisory lock that serializes migrations. A
// single bigint key: the key locks of a claim use two int4 keys, which
// PostgreSQL keeps in a separate space.
constexpr const char* kMigrateSql = R"sql(
SELECT pg_advisory_xact_lock(8031453476610911597)  -- "outbox-m" in ASCII
)sql";

constexpr const char* kMigrationsTableSql = R"sql(
CREATE TABLE IF NOT EXISTS outbox_schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)
)sql";

// Every statement of a round is prepared once per session (parsed and
// planned once, PostgresStoreOptions::prepare) and touches rows through
// indexes only: its cost follows the rows it returns, not the table.

// A window of the pending rows after id $2, oldest first, up to $3, each
// with whether it is due at $1. The first row of a key in a claim's windows
// is taken for the key's head: the claim reads the windows in id order from
// the oldest pending row. A row of a key committed later than a window was
// read, with a smaller id than the window's rows of that key, is the head
// all the same, and kRowsSql, read after the locks, starts each key there.
constexpr const char* kWindowSql = R"sql(
SELECT o.id, o.key, (o.retry_at IS NULL OR o.retry_at <= $1) AS due
FROM outbox o
WHERE o.state = 'pending' AND o.id > $2
ORDER BY o.id LIMIT $3
)sql";

// Locks the keys no other claim holds and returns them. The lock space is
// the outbox table's oid, so outbox tables in other schemas of the database
// do not contend; two keys with the same hashtext share a lock, which only
// means one claim takes both. Every element is tried (no LIMIT), each once.
constexpr const char* kLockKeysSql = R"sql(
SELECT k FROM unnest($1::text[]) AS k
WHERE pg_try_advisory_xact_lock('outbox'::regclass::oid::int4, hashtext(k))
)sql";

// The claim's rows: pending rows of the locked keys up to the last id the
// windows read ($4), read after the locks were taken (a new READ COMMITTED
// snapshot, so a key's rows published by a claim that ended in between are
// seen as published), each key's rows from its head up to its first row that
// is not due. Per key: one range of the index outbox_pending_key_id and one
// probe of outbox_pending_retry (sql/postgres/003_claim.sql), which holds
// only the rows that wait for a retry.
constexpr const char* kRowsSql = R"sql(
SELECT o.id, o.key, o.topic, o.payload, o.headers, o.attempts, o.created_at
FROM unnest($2::text[]) AS k(key)
CROSS JOIN LATERAL (
  SELECT o.* FROM outbox o
  WHERE o.state = 'pending' AND o.key = k.key AND o.id <= $4
    AND o.id < coalesce((SELECT min(e.id) FROM outbox e
                         WHERE e.state = 'pending' AND e.key = k.key
                           AND e.retry_at IS NOT NULL AND e.retry_at > $1),
                        9223372036854775807)
) o
ORDER BY o.id LIMIT $3
)sql";

// Finish in one statement: the published rows ($1) marked (or deleted, the
// same statement with DELETE), the failures ($2 ids, $3 errors, $4 park,
// $5 retry times in microseconds since 1970) recorded, and how many of each were still pending. The
// two sets are disjoint (a row is one or the other).
constexpr const char* kFinishMarkSql = R"sql(
WITH published AS (
  UPDATE outbox SET state = 'published', published_at = now(), retry_at = NULL
  WHERE id = ANY($1::bigint[]) AND state = 'pending'
  RETURNING 1
), failed AS (
  UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error,
                      state = CASE WHEN f.park THEN 'parked' ELSE 'pending' END,
                      retry_at = CASE WHEN f.park THEN NULL
                                      ELSE 'epoch'::timestamptz + f.retry_us * interval '1 microsecond' END
  FROM unnest($2::bigint[], $3::text[], $4::boolean[], $5::bigint[])
       AS f(id, error, park, retry_us)
  WHERE o.id = f.id AND o.state = 'pending'
  RETURNING 1
)
SELECT (SELECT count(*) FROM published), (SELECT count(*) FROM failed)
)sql";

constexpr const char* kFinishDeleteSql = R"sql(
WITH published AS (
  DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND state = 'pending'
  RETURNING 1
), failed AS (
  UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error,
                      state = CASE WHEN f.park THEN 'parked' ELSE 'pending' END,
                      retry_at = CASE WHEN f.park THEN NULL
                                      ELSE 'epoch'::timestamptz + f.retry_us * interval '1 microsecond' END
  FROM unnest($2::bigint[], $3::text[], $4::boolean[], $5::bigint[])
       AS f(id, error, park, retry_us)
  WHERE o.id = f.id AND o.state = 'pending'
  RETURNING 1
)
SELECT (SELECT count(*) FROM published), (SELECT count(*) FROM failed)
)sql";

constexpr const char* kOldestPendingSql = R"sql(
SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1
)sql";

// Run after every connect: a reconnected session listens again.
std::string SessionSetup(const PostgresStoreOptions& options) {
  std::string sql;
  if (options.claim_idle_timeout.count() > 0) {
    sql = "SET idle_in_transaction_session_timeout = " +
          std::to_string(options.claim_idle_timeout.count()) + ";";
  }
  // A round's statements read a few rows through indexes; a parallel plan
  // (which a large outbox can tempt the planner into) only adds workers.
  // The statements are prepared once (PostgresStoreOptions::
  // prepare_statements) and have one good plan whatever their parameters:
  // planned once, not again at every call.
  sql += "SET max_parallel_workers_per_gather = 0; SET plan_cache_mode = force_generic_plan;";
  if (options.listen) sql += pg::kListenSql;
  return sql;
}

}  // namespace

struct PostgresStore::Impl {
  Impl(const std::string& conninfo, const PostgresStoreOptions& options)
      : connection(conninfo, SessionSetup(options)),
        listen(options.listen),
        delete_published(options.published_rows == PublishedRows::kDelete) {
    connection.Prepare(options.prepare_statements);
  }

  // Writes outside a claim. A lost connection is re-established by the next
  // call outside a claim, never inside one (the new session would hold none
  // of its locks).
  void Ready() {
    if (!claimed.empty()) throw StoreError("postgres store: a claim is open");
    if (connection.Reconnect()) CheckWake();
  }

  // Reads run inside an open claim's transaction, or reconnect if needed.
  void ReadyToRead() {
    if (claimed.empty() && connection.Reconnect()) CheckWake();
  }

  // At each connect (and after migrating): the store wakes when it listens
  // and the trigger that notifies is there and enabled.
  void CheckWake() { wakes = listen && pg::NotifyTriggerEnabled(connection); }

  void EndClaim() noexcept {
    if (!claimed.empty()) connection.ExecQuietly("ROLLBACK");
    claimed.clear();
  }

  struct LockedKeys {
    std::vector<std::string> keys;
    std::int64_t through_id = 0;  // the last id the windows read
  };

  // Locks the keys whose head is due, oldest head first, until their rows in
  // the windows read cover `limit` or the pending rows end. A window is
  // considered up to the row where its rows, counting those of keys about to
  // be locked, reach the limit, so that no more keys are locked than the
  // claim can fill; a key that another claim holds does not count, and the
  // next window goes on from there.
  LockedKeys LockDueKeys(std::size_t limit, std::chrono::system_clock::time_point now) {
    LockedKeys locked;
    std::unordered_set<std::string> seen;  // keys whose head a window showed
    std::unordered_set<std::string> mine;
    std::size_t rows_of_mine = 0;
    // The first window is the limit: enough when no other claim holds the
    // keys, as with one dispatcher. The next ones, which look past keys held
    // elsewhere, are twice that.
    std::size_t window = limit;
    for (bool first = true; rows_of_mine < limit; first = false) {
      if (!first) window = 2 * limit;
      const pg::Result rows = connection.ExecPrepared(
          "claim (reading pending rows)", "dispatch_window", kWindowSql,
          pg::Params().Time(now).Int(locked.through_id).Int(static_cast<std::int64_t>(window)));
      const int n = PQntuples(rows.get());
      if (n == 0) break;
      std::vector<std::string> candidates;
      std::unordered_set<std::string> wanted;
      std::size_t hoped = rows_of_mine;
      int considered = 0;
      while (considered < n && hoped < limit) {
        std::string key = pg::Bytes(rows.get(), considered, 1);
        if (mine.count(key) || wanted.count(key)) {
          ++hoped;
        } else if (seen.insert(key).second && pg::Bool(rows.get(), considered, 2)) {
          ++hoped;
          wanted.insert(key);
          candidates.push_back(std::move(key));
        }
        ++considered;
      }
      locked.through_id = pg::Int64(rows.get(), considered - 1, 0);
      if (!candidates.empty() && !began) {
        // The locks need a transaction; the windows do not (a claim that
        // finds nothing due costs one statement). Each statement must see
        // what committed before it started (the rows are read again after
        // locking), whatever default the role or database has.
        connection.Exec("claim (begin)", "BEGIN ISOLATION LEVEL READ COMMITTED");
        began = true;
      }
      if (!candidates.empty()) {
        const pg::Result got =
            connection.ExecPrepared("claim (locking keys)", "dispatch_lock_keys", kLockKeysSql,
                                    pg::Params().TextArray(candidates));
        const auto taken = static_cast<std::size_t>(PQntuples(got.get()));
        keys_locked += taken;
        keys_skipped += candidates.size() - taken;
        for (int i = 0; i < PQntuples(got.get()); ++i) {
          std::string key = pg::Bytes(got.get(), i, 0);
          mine.insert(key);
          locked.keys.push_back(std::move(key));
        }
      }
      for (int i = 0; i < considered; ++i) rows_of_mine += mine.count(pg::Bytes(rows.get(), i, 1));
      if (considered == n && static_cast<std::size_t>(n) < window) break;
    }
    return locked;
  }

  pg::Connection connection;
  std::unordered_set<std::int64_t> claimed;  // non-empty: a transaction is open
  const bool listen;
  const bool delete_published;
  bool wakes = false;
  bool began = false;  // the claim being made opened its transaction
  std::atomic<std::uint64_t> claims{0};
  std::atomic<std::uint64_t> keys_locked{0};
  std::atomic<std::uint64_t> keys_skipped{0};
};

PostgresStore::PostgresStore(const std::string& conninfo, PostgresStoreOptions options)
    : impl_(std::make_unique<Impl>(conninfo, options)) {
  if (options.migrate) {
    Migrate();  // checks the trigger
  } else {
    impl_->CheckWake();
  }
}

PostgresStore::~PostgresStore() { Release(); }

void PostgresStore::Migrate() {
  Release();
  impl_->Ready();
  pg::Connection& c = impl_->connection;
  c.Exec("migrate (begin)", "BEGIN");
  try {
    c.Exec("migrate (taking the migration lock)", kMigrateSql);
    c.Exec("migrate (creating outbox_schema_migrations)", kMigrationsTableSql);
    const pg::Result applied = c.Exec("migrate (reading applied versions)",
                                      "SELECT version FROM outbox_schema_migrations");
    std::unordered_set<std::int32_t> versions;
    for (int i = 0; i < PQntuples(applied.get()); ++i)
      versions.insert(pg::Int32(applied.get(), i, 0));
    for (const pg::Migration& m : pg::Migrations()) {
      if (versions.count(m.version)) continue;
      const std::string what = std::string("migrate (applying ") + m.name + ")";
      c.ExecScript(what, m.sql);
      c.Exec(what, "INSERT INTO outbox_schema_migrations (version, name) VALUES ($1, $2)",
             pg::Params().Int(m.version).Bytes(m.name));
    }
    c.Exec("migrate (commit)", "COMMIT");
  } catch (const StoreError&) {
    c.ExecQuietly("ROLLBACK");
    throw;
  }
  impl_->CheckWake();
}

std::vector<OutboxRow> PostgresStore::Claim(std::size_t limit,
                                            std::chrono::system_clock::time_point now) {
  Release();
  if (limit == 0) return {};
  impl_->Ready();
  ++impl_->claims;
  pg::Connection& c = impl_->connection;
  // Commits notified so far are seen by this claim's reads; a later one
  // stays queued and wakes the next WaitForRows.
  (void)pg::TakeNotifications(c);
  std::vector<OutboxRow> rows;
  impl_->began = false;
  try {
    const Impl::LockedKeys locked = impl_->LockDueKeys(limit, now);
    if (!locked.keys.empty()) {
      const pg::Result got = c.ExecPrepared("claim (reading rows)", "dispatch_rows", kRowsSql,
                                            pg::Params()
                                                .Time(now)
                                                .TextArray(locked.keys)
                                                .Int(static_cast<std::int64_t>(limit))
                                                .Int(locked.through_id));
      const PGresult* r = got.get();
      for (int i = 0; i < PQntuples(r); ++i) {
        OutboxRow row;
        row.id = pg::Int64(r, i, 0);
        row.key = pg::Bytes(r, i, 1);
        row.topic = pg::Bytes(r, i, 2);
        row.payload = pg::Bytes(r, i, 3);
        row.headers = DecodeHeaders(pg::Bytes(r, i, 4));
        row.attempts = pg::Int32(r, i, 5);
        row.created_at = pg::Time(r, i, 6);
        rows.push_back(std::move(row));
      }
    }
  } catch (const StoreError&) {
    if (impl_->began) c.ExecQuietly("ROLLBACK");
    throw;
  }
  if (rows.empty()) {
    if (impl_->began) c.ExecQuietly("ROLLBACK");  // nothing claimed: no locks to keep
    return rows;
  }
  for (const OutboxRow& row : rows) impl_->claimed.insert(row.id);
  return rows;
}

void PostgresStore::Finish(const std::vector<std::int64_t>& published,
                           const std::vector<RowFailure>& failures) {
  if (impl_->claimed.empty()) {
    if (published.empty() && failures.empty()) return;
    throw StoreError("postgres store: finish failed: no claim is open");
  }
  pg::Connection& c = impl_->connection;
  try {
    std::vector<std::int64_t> ids = published;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (std::int64_t id : ids) {
      if (!impl_->claimed.count(id)) {
        throw StoreError("postgres store: finish failed: row " + std::to_string(id) +
                         " is not one of the claim's");
      }
    }
    for (const RowFailure& f : failures) {
      if (!impl_->claimed.count(f.id)) {
        throw StoreError("postgres store: finish failed: row " + std::to_string(f.id) +
                         " is not one of the claim's");
      }
    }
    std::vector<std::int64_t> failed_ids;
    std::vector<std::string> errors;
    std::vector<bool> park;
    std::vector<std::int64_t> retry_us;
    for (const RowFailure& f : failures) {
      failed_ids.push_back(f.id);
      std::string error = f.error;
      std::replace(error.begin(), error.end(), '\0', '?');  // text cannot hold NUL
      errors.push_back(std::move(error));
      park.push_back(f.park);
      retry_us.push_back(
          std::chrono::floor<std::chrono::microseconds>(f.retry_at.time_since_epoch()).count());
    }
    const bool remove = impl_->delete_published;
    const pg::Result recorded = c.ExecPrepared(
        "finish (recording the rows)", remove ? "dispatch_finish_delete" : "dispatch_finish_mark",
        remove ? kFinishDeleteSql : kFinishMarkSql,
        pg::Params()
            .IntArray(ids)
            .IntArray(failed_ids)
            .TextArray(errors)
            .BoolArray(park)
            .IntArray(retry_us));
    // The claim's locks keep its rows pending; fewer means someone else
    // changed them (by hand?): record nothing rather than part.
    if (pg::Int64(recorded.get(), 0, 0) != static_cast<std::int64_t>(ids.size()) ||
        pg::Int64(recorded.get(), 0, 1) != static_cast<std::int64_t>(failures.size())) {
      throw StoreError("postgres store: finish failed: some claimed rows are no longer pending");
    }
    const pg::Result done = c.Exec("finish (commit)", "COMMIT");
    // COMMIT of a transaction that failed reports ROLLBACK, not an error.
    if (std::string(PQcmdStatus(done.get())) != "COMMIT") {
      throw StoreError("postgres store: finish failed: the transaction was rolled back");
    }
  } catch (const StoreError&) {
    Release();
    throw;
  }
  impl_->claimed.clear();
}

void PostgresStore::Release() noexcept { impl_->EndClaim(); }

std::optional<std::chrono::system_clock::time_point> PostgresStore::OldestPending() {
  impl_->ReadyToRead();
  const pg::Result r = impl_->connection.ExecPrepared("reading the oldest pending row",
                                                      "dispatch_oldest", kOldestPendingSql);
  if (PQntuples(r.get()) == 0) return std::nullopt;
  return pg::Time(r.get(), 0, 0);
}

PostgresClaimStats PostgresStore::ClaimStats() const {
  return {impl_->claims.load(), impl_->keys_locked.load(), impl_->keys_skipped.load()};
}

bool PostgresStore::WakesOnNewRows() const { return impl_->wakes; }

bool PostgresStore::WaitForRows(std::chrono::steady_clock::time_point until,
                                const std::stop_token& stop) {
  if (!impl_->wakes || !impl_->claimed.empty()) return OutboxStore::WaitForRows(until, stop);
  return pg::WaitForNotification(impl_->connection, until, stop);
}

std::vector<std::int64_t> PostgresStore::Append(const std::vector<OutboxRow>& rows) {
  impl_->Ready();
  pg::Connection& c = impl_->connection;
  std::vector<std::int64_t> ids;
  c.Exec("append (begin)", "BEGIN");
  try {
    for (const OutboxRow& row : rows) {
      const pg::Result r = c.Exec("append (insert)",
                                  "INSERT INTO outbox (key, topic, payload, headers, created_at) "
                                  "VALUES ($1, $2, $3, $4, coalesce($5, now())) RETURNING id",
                                  pg::Params()
                                      .Bytes(row.key)
                                      .Bytes(row.topic)
                                      .Bytes(row.payload)
                                      .Bytes(EncodeHeaders(row.headers))
                                      .TimeOrNull(row.created_at));
      ids.push_back(pg::Int64(r.get(), 0, 0));
    }
    c.Exec("append (commit)", "COMMIT");
  } catch (const StoreError&) {
    c.ExecQuietly("ROLLBACK");
    throw;
  }
  return ids;
}

OutboxCounts PostgresStore::Count() {
  impl_->ReadyToRead();
  const pg::Result r =
      impl_->connection.Exec("counting rows", "SELECT state, count(*) FROM outbox GROUP BY state");
  OutboxCounts counts;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    const std::string state = pg::Bytes(r.get(), i, 0);
    const std::int64_t n = pg::Int64(r.get(), i, 1);
    if (state == "pending") counts.pending = n;
    if (state == "published") counts.published = n;
    if (state == "parked") counts.parked = n;
  }
  return counts;
}

std::vector<std::int64_t> PostgresStore::Ids(RowState state, const std::string& topic) {
  impl_->ReadyToRead();
  const pg::Result r = impl_->connection.Exec(
      "listing row ids",
      "SELECT id FROM outbox WHERE state = $1 AND ($2::text = '' OR topic = $2::text) ORDER BY id",
      pg::Params().Bytes(ToString(state)).Bytes(topic));
  std::vector<std::int64_t> ids;
  for (int i = 0; i < PQntuples(r.get()); ++i) ids.push_back(pg::Int64(r.get(), i, 0));
  return ids;
}

}  // namespace dispatch
