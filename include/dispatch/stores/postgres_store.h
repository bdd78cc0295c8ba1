/// @file
/// dispatch::PostgresStore: the outbox in PostgreSQL, through libpq. Any
/// number of dispatcher processes may share one outbox table; per-key order
/// and single publication at a time hold across all of them (see
/// docs/outbox-dispatcher.md, "PostgreSQL: several dispatchers").
/// Standard library only: libpq stays in the source.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/outbox_store.h"

namespace dispatch {

/// What Finish does with a published row (PostgresStoreOptions::published_rows).
enum class PublishedRows {
  /// Keep it, with state 'published' and published_at: an operator sees what
  /// went out (Count, Ids), and a sweep deletes old ones in bulk, off the
  /// relay's rounds. The default.
  kMark,
  /// Delete it in the transaction that records it: the least work per row
  /// for the database (no new row version, no index entry) and a table that
  /// holds only pending and parked rows; Count().published stays 0.
  kDelete,
};

/// How a PostgresStore sets up its schema and its session.
struct PostgresStoreOptions {
  /// Apply the migrations shipped with the library (sql/postgres/*.sql,
  /// compiled in) at construction, as Migrate() does. Turn it off when the
  /// schema is applied by other means (the files are installed under
  /// share/dispatch_kafka/sql/postgres) or the role may not run DDL.
  bool migrate = true;
  /// A claim is a transaction that stays open, idle, while its rows are
  /// published. PostgreSQL ends a session idle in a transaction longer than
  /// this (idle_in_transaction_session_timeout), which releases the claim of
  /// a process that hangs or whose host vanished without closing its socket;
  /// the rows are then claimable again, unmarked, and the late Finish throws.
  /// Keep it well above a round's publish time. Zero keeps the server's
  /// setting.
  std::chrono::milliseconds claim_idle_timeout = std::chrono::minutes(5);
  /// LISTEN on the channel that the outbox's trigger outbox_notify
  /// (sql/postgres/002_notify.sql) notifies at each commit that inserted
  /// rows, so that a waiting dispatcher claims them at once rather than on
  /// its next poll (WakesOnNewRows, WaitForRows). Turn it off behind a pooler
  /// in transaction mode (PgBouncer's pool_mode = transaction), where LISTEN
  /// has no session of its own to stay in: the dispatcher then polls.
  bool listen = true;
  /// What Finish does with a published row: mark it (the default) or
  /// delete it. See PublishedRows.
  PublishedRows published_rows = PublishedRows::kMark;
  /// Prepare a round's statements once per session (parse and plan once).
  /// Turn it off behind a pooler in transaction mode that does not keep
  /// prepared statements (PgBouncer before 1.21, or max_prepared_statements
  /// = 0), where a later transaction may run on a session that lacks them.
  bool prepare_statements = true;
  /// The outbox table's name: an unquoted lower-case SQL identifier
  /// ([a-z_][a-z0-9_]*, at most 40 characters, not a reserved word), without
  /// a schema; the connection's search_path chooses the schema (for example
  /// `options=-csearch_path=app` in the connection string). The objects the
  /// migrations make are named after it: the indexes `<table>_pending_id`,
  /// `<table>_pending_key_id`, `<table>_pending_retry` and `<table>_parked_id`,
  /// the trigger and its function `<table>_notify`, which notifies the channel
  /// `dispatch_<table>`, and the record of applied migrations
  /// `<table>_schema_migrations`, so that outbox tables of one database
  /// migrate, wake and are claimed independently. The header functions
  /// outbox_headers and outbox_headers_bytea are one pair for every table.
  /// Another name makes the constructor throw std::invalid_argument.
  std::string table = "outbox";
};

/// Empty when `table` may name the outbox table (PostgresStoreOptions::table,
/// PostgresAdminOptions::table); else what is allowed, then "; here: " and
/// what is wrong with it, for a configuration's error message.
std::string PostgresTableNameError(std::string_view table);

/// What the claims of one PostgresStore met so far (PostgresStore::ClaimStats).
struct PostgresClaimStats {
  std::uint64_t claims = 0;        ///< Claim calls that asked the database
  std::uint64_t keys_locked = 0;   ///< keys whose advisory lock a claim took
  std::uint64_t keys_skipped = 0;  ///< due keys passed over: another claim held their lock
};

/// An OutboxStore on one PostgreSQL connection. Claim opens a transaction
/// that lasts until Finish or Release and holds a transaction-scoped
/// advisory lock per claimed key; a dead process's locks end with its
/// connection. Not thread-safe: one object per dispatcher thread. A lost
/// connection is re-established by the next call. Every error is a
/// StoreError naming the operation and PostgreSQL's reason; none repeats the
/// connection string, and the password in it is masked wherever it appears.
/// The table is PostgresStoreOptions::table; the names below (outbox,
/// outbox_notify, outbox_schema_migrations) are the default table's.
class PostgresStore final : public OutboxStore {
 public:
  /// Where a row is in its life (column `state`).
  /// Connects with a libpq connection string ("host=... dbname=..." or a
  /// postgresql:// URI) and, unless options.migrate is off, applies the
  /// migrations. Throws StoreError; std::invalid_argument when
  /// options.table is not a name allowed there.
  explicit PostgresStore(const std::string& conninfo, const PostgresStoreOptions& options = {});
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  /// Applies the shipped migrations that the database has not recorded yet
  /// (table outbox_schema_migrations), all in one transaction under an
  /// advisory lock: processes that start at once apply each one once.
  /// Idempotent. Ends an open claim first, as Release does. Throws
  /// StoreError.
  void Migrate();

  /// A Claim that already holds rows ends them first, as Release does.
  std::vector<OutboxRow> Claim(std::size_t limit,
                               std::chrono::system_clock::time_point now) override;
  /// Throws StoreError, recording nothing, when the claim's connection was
  /// lost (the rows went back to the others), when a row is not one of the
  /// claim's, or when the commit fails. A commit whose reply is lost may
  /// have been recorded all the same: the rows then are simply not claimed
  /// again.
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<RowFailure>& failures) override;
  void Release() noexcept override;
  /// The creation time of the pending row with the smallest id (an index
  /// lookup, not a scan of the pending rows).
  std::optional<std::chrono::system_clock::time_point> OldestPending() override;

  /// True when the store listens (PostgresStoreOptions::listen) and the
  /// trigger outbox_notify was enabled when it last connected; an operator
  /// who disables it (ALTER TABLE outbox DISABLE TRIGGER outbox_notify)
  /// makes the dispatchers that connect afterwards poll.
  bool WakesOnNewRows() const override;
  /// Waits on the connection's socket for a notification of the trigger
  /// (true), `until` or the stop request (false, at once on the request).
  /// Returns false at once when the connection is lost: the next Claim
  /// reconnects and listens again. Sleeps to `until`, as the default does,
  /// when the store does not wake.
  bool WaitForRows(std::chrono::steady_clock::time_point until,
                   const std::stop_token& stop) override;

  /// Inserts the rows' key, topic, payload, headers and created_at (now when
  /// unset) in one transaction, in order, as a service would (tests, the
  /// demo, benchmarks); the other fields are the database's. Returns the new
  /// ids. Throws StoreError, also when a claim is open (its transaction is
  /// not the place for them).
  std::vector<std::int64_t> Append(const std::vector<OutboxRow>& rows);

  /// Counters of this object's claims since it was made: how much the
  /// claims contend (keys_skipped against keys_locked). Cheap; any thread
  /// may read them while the dispatcher's thread claims.
  PostgresClaimStats ClaimStats() const;

  /// Count and Ids run inside an open claim's transaction. Throw StoreError.
  OutboxCounts Count();
  /// Ids of the rows in `state`, ascending; of one topic when `topic` is set.
  std::vector<std::int64_t> Ids(RowState state, const std::string& topic = "");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch
