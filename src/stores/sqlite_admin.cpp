#include "dispatch/stores/sqlite_admin.h"

#include <sqlite3.h>

#include <string>
#include <utility>

#include "stores/admin_checks.h"
#include "stores/retention_walk.h"
#include "stores/sqlite_db.h"

namespace dispatch {
namespace {

using Clock = std::chrono::system_clock;
using sqlite::FromMs;
using sqlite::Statement;
using sqlite::ToMs;

// Each command's statements, through the partial indexes outbox_pending and
// outbox_parked or the primary key (see src/stores/sqlite_db.cpp's schema).
constexpr const char* kCountSql = R"sql(
SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'),
       (SELECT count(*) FROM outbox WHERE state = 'parked'),
       (SELECT min(created_at) FROM outbox WHERE state = 'pending'),
       (SELECT count(*) FROM outbox)
)sql";

constexpr const char* kParkedSql = R"sql(
SELECT id, key, topic, attempts, coalesce(last_error, ''), parked_at, created_at FROM outbox
WHERE state = 'parked' AND id > ?1 AND (?2 = '' OR topic = ?2)
ORDER BY id LIMIT ?3
)sql";

constexpr const char* kLaterPublished =
    "EXISTS (SELECT 1 FROM outbox l WHERE l.id > p.id AND l.key = p.key AND "
    "l.state = 'published')";

constexpr const char* kRetentionWindowSql = R"sql(
SELECT id, CASE WHEN state = 'published' AND published_at < ?2 THEN 0
                WHEN state = 'parked' THEN 1 ELSE 2 END
FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?3
)sql";

}  // namespace

struct SqliteAdmin::Walk : admin::RetentionWalk {};

SqliteAdmin::SqliteAdmin(const std::string& path)
    : path_(path), db_(sqlite::OpenOutbox(path)), walk_(std::make_unique<Walk>()) {}

SqliteAdmin::~SqliteAdmin() { sqlite3_close(db_); }

namespace {

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back on any throw.
template <typename Body>
auto InWriteTransaction(sqlite3* db, const std::string& path, const char* what, Body&& body) {
  sqlite::Exec(db, path, "BEGIN IMMEDIATE", what);
  try {
    auto result = body();
    sqlite::Exec(db, path, "COMMIT", what);
    return result;
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace

OutboxStatus SqliteAdmin::Status() {
  Statement counts(db_, path_, kCountSql, "status");
  counts.Step();
  OutboxStatus status;
  status.pending = counts.Int(0);
  status.parked = counts.Int(1);
  if (!counts.IsNull(2)) status.oldest_pending = FromMs(counts.Int(2));
  status.published = counts.Int(3) - status.pending - status.parked;
  status.published_is_estimate = false;
  return status;
}

std::vector<ParkedRow> SqliteAdmin::Parked(std::size_t limit, const std::string& topic,
                                           std::int64_t after_id) {
  admin::CheckCount("parked", "limit", limit);
  admin::CheckAfterId(after_id);
  Statement select(db_, path_, kParkedSql, "parked");
  select.Bind(1, after_id).BindText(2, topic).Bind(3, static_cast<std::int64_t>(limit));
  std::vector<ParkedRow> rows;
  while (select.Step()) {
    ParkedRow row;
    row.id = select.Int(0);
    row.key = select.Bytes(1);
    row.topic = select.Bytes(2);
    row.attempts = static_cast<int>(select.Int(3));
    row.last_error = select.Bytes(4);
    if (!select.IsNull(5)) row.parked_at = FromMs(select.Int(5));
    row.created_at = FromMs(select.Int(6));
    rows.push_back(std::move(row));
  }
  return rows;
}

RequeueResult SqliteAdmin::Requeue(const RequeueRequest& request) {
  const std::vector<std::int64_t> wanted = admin::RequeueIds(request);
  return InWriteTransaction(db_, path_, "requeue", [&] {
    std::vector<std::int64_t> found;
    RequeueResult result;
    const auto take = [&](Statement& s) {
      while (s.Step()) {
        found.push_back(s.Int(0));
        if (s.Int(1) != 0) result.out_of_order.push_back(found.back());
      }
    };
    const std::string select = std::string("SELECT p.id, ") + kLaterPublished +
                               " FROM outbox p WHERE p.state = 'parked' AND ";
    if (wanted.empty()) {
      Statement s(db_, path_, (select + "p.topic = ?1 ORDER BY p.id").c_str(), "requeue");
      s.BindText(1, request.topic);
      take(s);
    } else {
      Statement s(db_, path_, (select + "p.id = ?1").c_str(), "requeue");
      for (std::int64_t id : wanted) {
        s.Bind(1, id);
        take(s);
        s.Reset();
      }
    }
    if (!wanted.empty()) {
      const std::vector<std::int64_t> missing = admin::Missing(wanted, found);
      if (!missing.empty()) admin::ThrowNotParked(missing);
    }
    if (found.empty() || (!result.out_of_order.empty() && !request.allow_out_of_order)) {
      return result;
    }
    Statement update(db_, path_,
                     "UPDATE outbox SET state = 'pending', attempts = 0, retry_at = 0, "
                     "parked_at = NULL WHERE id = ?1 AND state = 'parked'",
                     "requeue (making rows pending)");
    for (std::int64_t id : found) update.Bind(1, id).Run();
    result.requeued = std::move(found);
    return result;
  });
}

std::int64_t SqliteAdmin::PurgeParked(Clock::time_point parked_before, std::size_t batch) {
  admin::CheckCount("purge", "batch", batch);
  admin::CheckNotFuture("purge", "parked_before", parked_before);
  std::int64_t purged = 0;
  for (;;) {
    const std::int64_t n = InWriteTransaction(db_, path_, "purge", [&] {
      Statement purge(db_, path_,
                      "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                      "WHERE state = 'parked' AND coalesce(parked_at, created_at) < ?1 "
                      "ORDER BY id LIMIT ?2)",
                      "purge");
      purge.Bind(1, ToMs(parked_before)).Bind(2, static_cast<std::int64_t>(batch)).Run();
      return static_cast<std::int64_t>(sqlite3_changes(db_));
    });
    purged += n;
    if (n < static_cast<std::int64_t>(batch)) return purged;
  }
}

std::int64_t SqliteAdmin::DeletePublished(Clock::time_point published_before, std::size_t batch) {
  admin::CheckCount("retention", "batch", batch);
  admin::CheckNotFuture("retention", "published_before", published_before);
  try {
    return InWriteTransaction(db_, path_, "retention", [&] {
      std::vector<std::int64_t> doomed;
      std::size_t read = 0;
      for (bool more = true; more && doomed.size() < batch && read < 4 * batch;) {
        const std::size_t asked = batch - doomed.size();
        Statement window(db_, path_, kRetentionWindowSql, "retention (reading rows)");
        window.Bind(1, walk_->Cursor())
            .Bind(2, ToMs(published_before))
            .Bind(3, static_cast<std::int64_t>(asked));
        std::vector<admin::WalkedRow> rows;
        while (window.Step()) {
          rows.push_back({window.Int(0), static_cast<admin::WalkedRow::Kind>(window.Int(1))});
        }
        read += rows.size();
        more = walk_->Take(rows, asked, doomed);
      }
      Statement remove(db_, path_, "DELETE FROM outbox WHERE id = ?1 AND state = 'published'",
                       "retention (deleting published rows)");
      std::int64_t deleted = 0;
      for (std::int64_t id : doomed) {
        remove.Bind(1, id).Run();
        deleted += sqlite3_changes(db_);
      }
      return deleted;
    });
  } catch (...) {
    walk_->Reset();
    throw;
  }
}

}  // namespace dispatch
