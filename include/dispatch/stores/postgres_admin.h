/// @file
/// dispatch::PostgresAdmin: the operator commands (dispatch::OutboxAdmin) on
/// a PostgresStore's outbox table, on a connection of their own, so that a
/// relay's retention job and an operator's `status` run beside the
/// dispatchers without sharing their connections. Standard library only:
/// libpq stays in the source. docs/outbox-dispatcher.md, "Operating the
/// PostgreSQL outbox", says what each command costs the database.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dispatch/outbox_admin.h"

namespace dispatch {

/// How a PostgresAdmin connects.
struct PostgresAdminOptions {
  /// Apply the shipped migrations at construction, as PostgresStore does by
  /// default (the commands need migration 4's parked_at column and
  /// outbox_parked_id index). Off by default: an operator's command should
  /// not change the schema; the relay's store applies it.
  bool migrate = false;
  /// A command waits at most this long for a row lock or a table lock held
  /// elsewhere (lock_timeout), then fails with StoreError, having changed
  /// nothing. The commands lock only parked and published rows, which no
  /// dispatcher holds, so a wait means another operator command or DDL.
  std::chrono::milliseconds lock_timeout = std::chrono::seconds(5);
  /// The outbox table's name, as PostgresStoreOptions::table (the same rule;
  /// the index names below are then `<table>_parked_id` and so on). A bad
  /// name makes the constructor throw std::invalid_argument.
  std::string table = "outbox";
};

/// OutboxAdmin over the outbox table (PostgresAdminOptions::table, `outbox`
/// by default) of one PostgreSQL database. Not
/// thread-safe: one object per thread. A lost connection is re-established
/// by the next call. Errors are StoreError (the operation and PostgreSQL's
/// reason, the password masked) or AdminArgumentError.
///
/// What each command reads (sql/postgres/001_outbox.sql and
/// 004_operator.sql): Status counts through the partial indexes of pending
/// and parked rows and estimates the published rows from the table's
/// statistics (pg_stat_user_tables.n_live_tup); Parked, Requeue and
/// PurgeParked go through outbox_parked_id. Requeue's check for a later
/// published row of each selected row's key walks the primary key from
/// that row up to the first such row (or the table's end): it costs a
/// read of the rows inserted after the parked row, once per command. A
/// later row that retention has already deleted is not seen.
///
/// DeletePublished (retention) adds nothing to a dispatcher's statements
/// and no index: it walks the primary key in id order from where its last
/// call stopped, `batch` rows a call, and deletes the published rows older
/// than the cut among them. A pass ends at the first pending row, at the
/// first published row not older than the cut, or at the table's end; the
/// next pass starts again at the first row the last pass kept, and every
/// 16th pass at the table's start (rows published behind the walk, or
/// committed late with a lower id). One process at a time per outbox: a
/// call returns 0 while another holds the retention lock
/// (pg_try_advisory_xact_lock on a key derived from the table's oid).
class PostgresAdmin final : public OutboxAdmin {
 public:
  /// Connects with a libpq connection string and, with options.migrate,
  /// applies the migrations. Throws StoreError; std::invalid_argument when
  /// options.table is not a name allowed there.
  explicit PostgresAdmin(const std::string& conninfo, const PostgresAdminOptions& options = {});
  ~PostgresAdmin() override;
  PostgresAdmin(const PostgresAdmin&) = delete;
  PostgresAdmin& operator=(const PostgresAdmin&) = delete;

  OutboxStatus Status() override;
  std::vector<ParkedRow> Parked(std::size_t limit, const std::string& topic = "",
                                std::int64_t after_id = 0) override;
  RequeueResult Requeue(const RequeueRequest& request) override;
  std::int64_t PurgeParked(std::chrono::system_clock::time_point parked_before,
                           std::size_t batch = 5000) override;
  std::int64_t DeletePublished(std::chrono::system_clock::time_point published_before,
                               std::size_t batch = 5000) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch
