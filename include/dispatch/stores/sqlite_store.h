/// @file
/// dispatch::SqliteStore: an OutboxStore in a SQLite database, for a service
/// that keeps its data (and so its outbox) in SQLite. Target
/// dispatch::sqlite_store, built when CMake finds SQLite3; this header does
/// not include sqlite3.h.
///
/// One dispatcher per database file. SQLite has no row locks, so a claim is
/// held in this object only: a second dispatcher (thread or process) on the
/// same file is unsupported. It would publish the rows the first one holds
/// (duplicates) and could break per-key order between the two. Writers of
/// rows (the service) may share the file freely: it runs in WAL mode, and a
/// write lock held by another connection is waited for up to 1 s, then
/// reported as a StoreError.
///
/// A waiting dispatcher notices rows that other connections commit within a
/// few milliseconds (WaitForRows, on PRAGMA data_version).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "dispatch/outbox_store.h"

struct sqlite3;

namespace dispatch {

/// The outbox table `outbox` in one SQLite file. Its column names and
/// states are PostgresStore's; the types are SQLite's (times in INTEGER
/// milliseconds). docs/outbox-dispatcher.md lists both tables side by side.
///
/// | column | type | meaning |
/// | --- | --- | --- |
/// | id | INTEGER PRIMARY KEY AUTOINCREMENT | commit order |
/// | key | TEXT | the Kafka key (the aggregate id) |
/// | topic | TEXT | |
/// | payload | BLOB | the record value |
/// | headers | BLOB | EncodeHeaders() |
/// | created_at | INTEGER | ms since the Unix epoch |
/// | retry_at | INTEGER | ms since the epoch; not claimed before (0: at once) |
/// | published_at | INTEGER | ms since the epoch, or NULL |
/// | attempts | INTEGER | failed publishes |
/// | last_error | TEXT | the last failure's message |
/// | parked_at | INTEGER | ms since the epoch when Finish parked it, or NULL |
/// | state | TEXT | 'pending', 'published' or 'parked' |
///
/// A service appends rows with its own INSERT in its business transaction
/// (or with Append). Not thread-safe: one thread at a time.
class SqliteStore final : public OutboxStore {
 public:
  /// Opens (creating if needed) the database at `path` (":memory:" for a
  /// private in-memory one) and creates the table, or upgrades a table made
  /// by an older version in one transaction: `aggregate_id` (before 0.2.0)
  /// is renamed `key` (SQLite 3.25 or newer), and a missing `retry_at` or
  /// `parked_at` is added. Throws StoreError naming the path when the file cannot be opened,
  /// the upgrade fails, or another connection holds its write lock for more
  /// than 1 s.
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// Pending rows due at `now` whose key's earliest pending row is due, in
  /// id order, up to `limit`. Throws StoreError, and also when a claim is
  /// still open (Finish or Release it first).
  std::vector<OutboxRow> Claim(std::size_t limit,
                               std::chrono::system_clock::time_point now) override;
  /// One transaction. Throws StoreError, recording nothing, when an id is not
  /// in the open claim or is no longer pending, or SQLite fails.
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<RowFailure>& failures) override;
  /// Ends the claim; nothing is written.
  void Release() noexcept override;
  /// MIN(created_at) of the pending rows. Throws StoreError.
  std::optional<std::chrono::system_clock::time_point> OldestPending() override;

  /// True: WaitForRows sees commits of other connections (the service's).
  bool WakesOnNewRows() const override { return true; }
  /// Reads PRAGMA data_version every 5 ms until it differs from its value
  /// at the last Claim (or the last wake): another connection of any process
  /// committed. This object's own commits (Finish, Append) do not count.
  /// Returns false at `until`, at once on the stop request, and when SQLite
  /// fails (the next Claim reports it).
  bool WaitForRows(std::chrono::steady_clock::time_point until,
                   const std::stop_token& stop) override;

  /// Appends rows in one transaction, as a service would in its business
  /// transaction, and returns their ids (ascending). Uses each row's key,
  /// topic, payload, headers, and created_at when set (else now); ignores id
  /// and attempts. Throws StoreError; then nothing was added.
  std::vector<std::int64_t> Append(const std::vector<OutboxRow>& rows);

  /// Rows per state. Throws StoreError.
  OutboxCounts Count();

  /// Ids of the rows in `state`, ascending; of one topic when `topic` is not
  /// empty. Throws StoreError.
  std::vector<std::int64_t> Ids(RowState state, const std::string& topic = "");

 private:
  void Exec(const char* sql, const char* what);
  std::int64_t DataVersion();
  std::string path_;
  sqlite3* db_ = nullptr;
  std::vector<std::int64_t> claimed_;  // ascending
  bool claim_open_ = false;
  std::int64_t seen_version_ = 0;  // PRAGMA data_version at the last Claim or wake
};

}  // namespace dispatch
