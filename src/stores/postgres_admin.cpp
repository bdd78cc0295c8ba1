#include "dispatch/stores/postgres_admin.h"

#include <algorithm>
#include <string>
#include <utility>

#include "stores/admin_checks.h"
#include "stores/pg_connection.h"
#include "stores/pg_migrate.h"
#include "stores/postgres_admin_sql.h"
#include "stores/retention_walk.h"
#include "stores/table_names.h"

namespace dispatch {
namespace {

using Clock = std::chrono::system_clock;

// As the store's session (postgres_store.cpp): every statement reads through
// an index, planned with its parameters at each call, never as a bitmap scan
// (which does not mark the index entries of deleted rows dead, so that the
// next walk steps over them again) nor in parallel.
std::string SessionSetup(const PostgresAdminOptions& options) {
  std::string sql;
  if (options.lock_timeout.count() > 0) {
    sql = "SET lock_timeout = " + std::to_string(options.lock_timeout.count()) + ";";
  }
  return sql +
         "SET max_parallel_workers_per_gather = 0; SET plan_cache_mode = force_custom_plan; "
         "SET enable_seqscan = off; SET enable_bitmapscan = off;";
}

bool IsNull(const pg::Result& r, int row, int column) {
  return PQgetisnull(r.get(), row, column) != 0;
}

}  // namespace

struct PostgresAdmin::Impl {
  Impl(const std::string& conninfo, const PostgresAdminOptions& options)
      : table((pg::CheckTableName("PostgresAdminOptions::table", options.table), options.table)),
        sql(table),
        connection(conninfo, SessionSetup(options)) {
    connection.Prepare(false);  // rare commands: nothing to gain
  }

  // Runs `body` in one transaction; a StoreError or AdminArgumentError
  // rolls it back and passes on.
  template <typename Body>
  auto InTransaction(const char* what, Body&& body) {
    connection.Reconnect();
    connection.Exec(what, "BEGIN ISOLATION LEVEL READ COMMITTED");
    try {
      auto result = body();
      const pg::Result done = connection.Exec(what, "COMMIT");
      if (std::string(PQcmdStatus(done.get())) != "COMMIT") {
        throw StoreError(connection.Describe(what, "the transaction was rolled back"));
      }
      return result;
    } catch (...) {
      connection.ExecQuietly("ROLLBACK");
      throw;
    }
  }

  const std::string table;
  const pg::AdminSql sql;
  pg::Connection connection;
  admin::RetentionWalk walk;
};

PostgresAdmin::PostgresAdmin(const std::string& conninfo, const PostgresAdminOptions& options)
    : impl_(std::make_unique<Impl>(conninfo, options)) {
  if (options.migrate) pg::Migrate(impl_->connection, impl_->table);
}

PostgresAdmin::~PostgresAdmin() = default;

OutboxStatus PostgresAdmin::Status() {
  impl_->connection.Reconnect();
  const pg::Result r = impl_->connection.Exec("status", impl_->sql.status.c_str());
  OutboxStatus status;
  status.pending = pg::Int64(r.get(), 0, 0);
  status.parked = pg::Int64(r.get(), 0, 1);
  if (!IsNull(r, 0, 2)) status.oldest_pending = pg::Time(r.get(), 0, 2);
  const std::int64_t live = IsNull(r, 0, 3) ? 0 : pg::Int64(r.get(), 0, 3);
  status.published = std::max<std::int64_t>(0, live - status.pending - status.parked);
  status.published_is_estimate = true;
  return status;
}

std::vector<ParkedRow> PostgresAdmin::Parked(std::size_t limit, const std::string& topic,
                                             std::int64_t after_id) {
  admin::CheckCount("parked", "limit", limit);
  admin::CheckAfterId(after_id);
  impl_->connection.Reconnect();
  const pg::Result r = impl_->connection.Exec(
      "listing parked rows", impl_->sql.parked.c_str(),
      pg::Params().Int(after_id).Bytes(topic).Int(static_cast<std::int64_t>(limit)));
  std::vector<ParkedRow> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    ParkedRow row;
    row.id = pg::Int64(r.get(), i, 0);
    row.key = pg::Bytes(r.get(), i, 1);
    row.topic = pg::Bytes(r.get(), i, 2);
    row.attempts = pg::Int32(r.get(), i, 3);
    row.last_error = pg::Bytes(r.get(), i, 4);
    if (!IsNull(r, i, 5)) row.parked_at = pg::Time(r.get(), i, 5);
    row.created_at = pg::Time(r.get(), i, 6);
    rows.push_back(std::move(row));
  }
  return rows;
}

RequeueResult PostgresAdmin::Requeue(const RequeueRequest& request) {
  const std::vector<std::int64_t> wanted = admin::RequeueIds(request);
  return impl_->InTransaction("requeue", [&] {
    pg::Connection& c = impl_->connection;
    const pg::Result selected =
        c.Exec("requeue (selecting parked rows)", impl_->sql.requeue_select.c_str(),
               pg::Params().IntArray(wanted).Bytes(request.ids.empty() ? request.topic : ""));
    std::vector<std::int64_t> found;
    RequeueResult result;
    for (int i = 0; i < PQntuples(selected.get()); ++i) {
      found.push_back(pg::Int64(selected.get(), i, 0));
      if (pg::Bool(selected.get(), i, 1)) result.out_of_order.push_back(found.back());
    }
    if (!wanted.empty()) {
      const std::vector<std::int64_t> missing = admin::Missing(wanted, found);
      if (!missing.empty()) admin::ThrowNotParked(missing);
    }
    if (found.empty() || (!result.out_of_order.empty() && !request.allow_out_of_order)) {
      return result;  // commits a transaction that changed nothing
    }
    const pg::Result done = c.Exec("requeue (making rows pending)", impl_->sql.requeue.c_str(),
                                   pg::Params().IntArray(found));
    if (pg::Int64(done.get(), 0, 0) != static_cast<std::int64_t>(found.size())) {
      throw StoreError(c.Describe("requeue", "some selected rows were no longer parked"));
    }
    result.requeued = std::move(found);
    return result;
  });
}

std::int64_t PostgresAdmin::PurgeParked(Clock::time_point parked_before, std::size_t batch) {
  admin::CheckCount("purge", "batch", batch);
  admin::CheckNotFuture("purge", "parked_before", parked_before);
  std::int64_t purged = 0;
  for (;;) {
    const std::int64_t n = impl_->InTransaction("purge", [&] {
      const pg::Result r = impl_->connection.Exec(
          "purge (deleting parked rows)", impl_->sql.purge.c_str(),
          pg::Params().Time(parked_before).Int(static_cast<std::int64_t>(batch)));
      return std::stoll(PQcmdTuples(r.get()));
    });
    purged += n;
    if (n < static_cast<std::int64_t>(batch)) return purged;
  }
}

std::int64_t PostgresAdmin::DeletePublished(Clock::time_point published_before, std::size_t batch) {
  admin::CheckCount("retention", "batch", batch);
  admin::CheckNotFuture("retention", "published_before", published_before);
  try {
    return impl_->InTransaction("retention", [&]() -> std::int64_t {
      pg::Connection& c = impl_->connection;
      const pg::Result locked =
          c.Exec("retention (taking the retention lock)", impl_->sql.retention_lock.c_str());
      if (!pg::Bool(locked.get(), 0, 0)) return 0;  // another process's batch
      std::vector<std::int64_t> doomed;
      // Parked rows in a window are kept, so read on until the batch is
      // full or the pass ends, up to four batches' worth of rows.
      std::size_t read = 0;
      for (bool more = true; more && doomed.size() < batch && read < 4 * batch;) {
        const std::size_t asked = batch - doomed.size();
        const pg::Result window =
            c.Exec("retention (reading rows in id order)", impl_->sql.retention_window.c_str(),
                   pg::Params()
                       .Int(impl_->walk.Cursor())
                       .Time(published_before)
                       .Int(static_cast<std::int64_t>(asked)));
        std::vector<admin::WalkedRow> rows;
        for (int i = 0; i < PQntuples(window.get()); ++i) {
          rows.push_back({pg::Int64(window.get(), i, 0),
                          static_cast<admin::WalkedRow::Kind>(pg::Int32(window.get(), i, 1))});
        }
        read += rows.size();
        more = impl_->walk.Take(rows, asked, doomed);
      }
      if (doomed.empty()) return 0;
      const pg::Result r =
          c.Exec("retention (deleting published rows)", impl_->sql.retention_delete.c_str(),
                 pg::Params().IntArray(doomed));
      return std::stoll(PQcmdTuples(r.get()));
    });
  } catch (...) {
    impl_->walk.Reset();
    throw;
  }
}

}  // namespace dispatch
