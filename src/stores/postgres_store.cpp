#include "dispatch/stores/postgres_store.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <unordered_set>
#include <utility>

#include "stores/pg_connection.h"
#include "stores/pg_migrate.h"
#include "stores/pg_notify.h"
#include "stores/postgres_round_sql.h"
#include "stores/table_names.h"

namespace dispatch {
namespace {

// Run after every connect: a reconnected session listens again.
std::string SessionSetup(const PostgresStoreOptions& options, const pg::StoreSql& statements) {
  std::string sql;
  if (options.claim_idle_timeout.count() > 0) {
    sql = "SET idle_in_transaction_session_timeout = " +
          std::to_string(options.claim_idle_timeout.count()) + ";";
  }
  // A round's statements read a few rows through indexes; a parallel plan
  // (which a large outbox can tempt the planner into) only adds workers.
  // The statements are prepared once (PostgresStoreOptions::
  // prepare_statements) but planned at every call, with its parameters and
  // the table as it is then: a plan kept for the session would often be made
  // while the outbox is empty (a relay starts before the rows come) and then
  // serve a backlog of a hundred thousand rows with the wrong index or a
  // sequential scan. Sequential scans are off as well: every statement has
  // an index of the outbox to use, and a planner without statistics of rows
  // inserted a moment ago must not pick a scan of the whole table. Bitmap
  // scans are off because they never mark the index entries of rows that
  // left the pending set (published, not yet vacuumed) as dead: a claim's
  // window over 99,000 such rows read 3,800 pages in 25-40 ms at every claim
  // as a bitmap scan, 292 index pages in 0.4 ms as a plain index scan from
  // its second run on (EXPLAIN ANALYZE, PostgreSQL 15).
  sql +=
      "SET max_parallel_workers_per_gather = 0; SET plan_cache_mode = force_custom_plan; "
      "SET enable_seqscan = off; SET enable_bitmapscan = off;";
  if (options.listen) sql += statements.listen;
  return sql;
}

}  // namespace

struct PostgresStore::Impl {
  Impl(const std::string& conninfo, const PostgresStoreOptions& options)
      : table((pg::CheckTableName("PostgresStoreOptions::table", options.table), options.table)),
        sql(table),
        connection(conninfo, SessionSetup(options, sql)),
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
  void CheckWake() {
    wakes = listen && pg::NotifyTriggerEnabled(connection, sql.notify_trigger_enabled.c_str());
  }

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
          "claim (reading pending rows)", "dispatch_window", sql.window.c_str(),
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
            connection.ExecPrepared("claim (locking keys)", "dispatch_lock_keys",
                                    sql.lock_keys.c_str(), pg::Params().TextArray(candidates));
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

  const std::string table;
  const pg::StoreSql sql;  // before connection: its session setup listens
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

PostgresStore::PostgresStore(const std::string& conninfo, const PostgresStoreOptions& options)
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
  pg::Migrate(impl_->connection, impl_->table);
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
      const pg::Result got =
          c.ExecPrepared("claim (reading rows)", "dispatch_rows", impl_->sql.rows.c_str(),
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
        remove ? impl_->sql.finish_delete.c_str() : impl_->sql.finish_mark.c_str(),
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
  const pg::Result r = impl_->connection.ExecPrepared(
      "reading the oldest pending row", "dispatch_oldest", impl_->sql.oldest_pending.c_str());
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
      const pg::Result r = c.Exec("append (insert)", impl_->sql.append.c_str(),
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
  const pg::Result r = impl_->connection.Exec("counting rows", impl_->sql.count.c_str());
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
  const pg::Result r = impl_->connection.Exec("listing row ids", impl_->sql.ids.c_str(),
                                              pg::Params().Bytes(ToString(state)).Bytes(topic));
  std::vector<std::int64_t> ids;
  for (int i = 0; i < PQntuples(r.get()); ++i) ids.push_back(pg::Int64(r.get(), i, 0));
  return ids;
}

}  // namespace dispatch
