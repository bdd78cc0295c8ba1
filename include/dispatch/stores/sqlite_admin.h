/// @file
/// dispatch::SqliteAdmin: the operator commands (dispatch::OutboxAdmin) on a
/// SqliteStore's outbox file, on a connection of its own (a relay's
/// retention job runs on its own thread beside the dispatcher's store).
/// This header does not include sqlite3.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dispatch/outbox_admin.h"

struct sqlite3;

namespace dispatch {

/// OutboxAdmin over the table `outbox` of one SQLite file. Every count is
/// exact (published_is_estimate is false; the published count reads the
/// table's rows, which SQLite does quickly but in time that grows with the
/// table). Retention walks the primary key in id order as PostgresAdmin's
/// does (<dispatch/stores/postgres_admin.h>); a command that writes takes
/// SQLite's write lock, waiting for it up to 1 s as SqliteStore does, so
/// concurrent retention batches run one after the other. Not thread-safe:
/// one object per thread.
class SqliteAdmin final : public OutboxAdmin {
 public:
  /// Opens the file (creating the table, or upgrading an older one, as
  /// SqliteStore does). Throws StoreError naming the path.
  explicit SqliteAdmin(const std::string& path);
  ~SqliteAdmin() override;
  SqliteAdmin(const SqliteAdmin&) = delete;
  SqliteAdmin& operator=(const SqliteAdmin&) = delete;

  OutboxStatus Status() override;
  std::vector<ParkedRow> Parked(std::size_t limit, const std::string& topic = "",
                                std::int64_t after_id = 0) override;
  RequeueResult Requeue(const RequeueRequest& request) override;
  std::int64_t PurgeParked(std::chrono::system_clock::time_point parked_before,
                           std::size_t batch = 5000) override;
  std::int64_t DeletePublished(std::chrono::system_clock::time_point published_before,
                               std::size_t batch = 5000) override;

 private:
  struct Walk;
  std::string path_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Walk> walk_;  // the retention walk (src/stores/retention_walk.h)
};

}  // namespace dispatch
