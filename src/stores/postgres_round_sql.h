// The statements of a PostgresStore round (the claim, the finish, the lag
// query), as postgres_store.cpp runs them; docs/outbox-dispatcher.md, "The
// mechanism" and "What a round costs the database", describe them.
#pragma once

#include <string>
#include <string_view>

#include "stores/pg_notify.h"
#include "stores/table_names.h"

namespace dispatch::pg {

// Every statement of a round is prepared once per session (parsed and
// planned once, PostgresStoreOptions::prepare) and touches rows through
// indexes only: its cost follows the rows it returns, not the table.

// A window of the pending rows after id $2, oldest first, up to $3, each
// with whether it is due at $1. The first row of a key in a claim's windows
// is taken for the key's head: the claim reads the windows in id order from
// the oldest pending row. A row of a key committed later than a window was
// read, with a smaller id than the window's rows of that key, is the head
// all the same, and kRowsSql, read after the locks, starts each key there.
inline constexpr const char* kWindowSql = R"sql(
SELECT o.id, o.key, (o.retry_at IS NULL OR o.retry_at <= $1) AS due
FROM outbox o
WHERE o.state = 'pending' AND o.id > $2
ORDER BY o.id LIMIT $3
)sql";

// Locks the keys no other claim holds and returns them. The lock space is
// the outbox table's oid, so outbox tables in other schemas of the database
// do not contend; two keys with the same hashtext share a lock, which only
// means one claim takes both. Every element is tried (no LIMIT), each once.
inline constexpr const char* kLockKeysSql = R"sql(
SELECT k FROM unnest($1::text[]) AS k
WHERE pg_try_advisory_xact_lock('outbox'::regclass::oid::int4, hashtext(k))
)sql";

// The claim's rows: pending rows of the locked keys up to the last id the
// windows read ($4), read after the locks were taken (a new READ COMMITTED
// snapshot, so a key's rows published by a claim that ended in between are
// seen as published), each key's rows from its head up to its first row that
// is not due. The keys' first rows that are not due (normally none) are
// found once per claim, up to $4, through outbox_pending_retry
// (sql/postgres/003_claim.sql) or the pending rows the windows read; then per
// key one range of the index outbox_pending_key_id (or one pass over those
// pending rows).
//
// The not-due rows are a CTE computed once, not a subquery per key: on a
// table whose statistics say that no row is pending (an analyzed outbox of
// published rows, then a backlog of new rows that autovacuum has not
// analyzed yet) the planner took outbox_pending_id for a per-key probe and
// walked every pending row for each key: 3 s a claim of 500 rows with
// 10,000 pending beside 200,000 published, 8 ms as it is now
// (bench/retention_claim, EXPLAIN ANALYZE on PostgreSQL 15).
inline constexpr const char* kRowsSql = R"sql(
WITH blocked AS MATERIALIZED (
  SELECT e.key, min(e.id) AS id FROM outbox e
  WHERE e.state = 'pending' AND e.retry_at IS NOT NULL AND e.retry_at > $1
    AND e.key = ANY($2::text[]) AND e.id <= $4
  GROUP BY e.key
)
SELECT o.id, o.key, o.topic, o.payload, o.headers, o.attempts, o.created_at
FROM unnest($2::text[]) AS k(key)
CROSS JOIN LATERAL (
  SELECT o.* FROM outbox o
  WHERE o.state = 'pending' AND o.key = k.key AND o.id <= $4
    AND o.id < coalesce((SELECT b.id FROM blocked b WHERE b.key = k.key),
                        9223372036854775807)
) o
ORDER BY o.id LIMIT $3
)sql";

// Finish in one statement: the published rows ($1) marked (or deleted, the
// same statement with DELETE), the failures ($2 ids, $3 errors, $4 park,
// $5 retry times in microseconds since 1970) recorded, and how many of each were still pending. The
// two sets are disjoint (a row is one or the other). A parked row gets its
// parked_at (sql/postgres/004_operator.sql); a published one only its state
// and published_at, as before that column.
//
// "Still pending" is written `state <> 'published' AND state <> 'parked'`
// (the same, under the table's CHECK), not `state = 'pending'`, so that
// the planner cannot serve the statement from a partial index of pending
// rows: on a table whose statistics say that none is pending (an analyzed
// outbox of published rows, then a backlog), it took outbox_pending_key_id
// and filtered every pending row for each finish instead of looking the
// ids up in the primary key: 105 ms against 3 ms to mark 500 rows beside
// 50,000 pending and 1,000,000 published (EXPLAIN ANALYZE, PostgreSQL 15).
inline constexpr const char* kFinishMarkSql = R"sql(
WITH published AS (
  UPDATE outbox SET state = 'published', published_at = now(), retry_at = NULL
  WHERE id = ANY($1::bigint[]) AND state <> 'published' AND state <> 'parked'
  RETURNING 1
), failed AS (
  UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error,
                      state = CASE WHEN f.park THEN 'parked' ELSE 'pending' END,
                      parked_at = CASE WHEN f.park THEN now() ELSE o.parked_at END,
                      retry_at = CASE WHEN f.park THEN NULL
                                      ELSE 'epoch'::timestamptz + f.retry_us * interval '1 microsecond' END
  FROM unnest($2::bigint[], $3::text[], $4::boolean[], $5::bigint[])
       AS f(id, error, park, retry_us)
  WHERE o.id = f.id AND o.state <> 'published' AND o.state <> 'parked'
  RETURNING 1
)
SELECT (SELECT count(*) FROM published), (SELECT count(*) FROM failed)
)sql";

inline constexpr const char* kFinishDeleteSql = R"sql(
WITH published AS (
  DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND state <> 'published' AND state <> 'parked'
  RETURNING 1
), failed AS (
  UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error,
                      state = CASE WHEN f.park THEN 'parked' ELSE 'pending' END,
                      parked_at = CASE WHEN f.park THEN now() ELSE o.parked_at END,
                      retry_at = CASE WHEN f.park THEN NULL
                                      ELSE 'epoch'::timestamptz + f.retry_us * interval '1 microsecond' END
  FROM unnest($2::bigint[], $3::text[], $4::boolean[], $5::bigint[])
       AS f(id, error, park, retry_us)
  WHERE o.id = f.id AND o.state <> 'published' AND o.state <> 'parked'
  RETURNING 1
)
SELECT (SELECT count(*) FROM published), (SELECT count(*) FROM failed)
)sql";

inline constexpr const char* kOldestPendingSql = R"sql(
SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1
)sql";

inline constexpr const char* kAppendSql =
    "INSERT INTO outbox (key, topic, payload, headers, created_at) "
    "VALUES ($1, $2, $3, $4, coalesce($5, now())) RETURNING id";

inline constexpr const char* kCountSql = "SELECT state, count(*) FROM outbox GROUP BY state";

inline constexpr const char* kIdsSql =
    "SELECT id FROM outbox WHERE state = $1 AND ($2::text = '' OR topic = $2::text) ORDER BY id";

// A store's statements for its table (PostgresStoreOptions::table), each
// rewritten once, when the store is built.
struct StoreSql {
  explicit StoreSql(std::string_view table)
      : window(ForTable(kWindowSql, table)),
        lock_keys(ForTable(kLockKeysSql, table)),
        rows(ForTable(kRowsSql, table)),
        finish_mark(ForTable(kFinishMarkSql, table)),
        finish_delete(ForTable(kFinishDeleteSql, table)),
        oldest_pending(ForTable(kOldestPendingSql, table)),
        append(ForTable(kAppendSql, table)),
        count(ForTable(kCountSql, table)),
        ids(ForTable(kIdsSql, table)),
        listen(ForTable(kListenSql, table)),
        notify_trigger_enabled(ForTable(kNotifyTriggerEnabledSql, table)) {}

  std::string window;
  std::string lock_keys;
  std::string rows;
  std::string finish_mark;
  std::string finish_delete;
  std::string oldest_pending;
  std::string append;
  std::string count;
  std::string ids;
  std::string listen;
  std::string notify_trigger_enabled;
};

}  // namespace dispatch::pg
