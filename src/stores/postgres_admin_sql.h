// The statements of PostgresAdmin (postgres_admin.cpp), one per command;
// docs/outbox-dispatcher.md, "Operating the PostgreSQL outbox", describes
// them. Each reads through an index: the partial indexes of pending rows
// (001_outbox.sql) and parked rows (004_operator.sql), or the primary key.
#pragma once

#include <string>
#include <string_view>

#include "stores/table_names.h"

namespace dispatch::pg {

// Written for the table `outbox`; AdminSql rewrites them for the admin's
// table (PostgresAdminOptions::table) once, when the admin is built.

// Exact counts of pending and parked rows through their partial indexes,
// the oldest pending row (an index lookup), the live rows as the
// statistics count them (n_live_tup, updated as transactions end: no
// count over the published rows).
inline constexpr const char* kStatusSql = R"sql(
SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'),
       (SELECT count(*) FROM outbox WHERE state = 'parked'),
       (SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1),
       (SELECT coalesce(n_live_tup, 0) FROM pg_stat_user_tables
         WHERE relid = 'outbox'::regclass)
)sql";

inline constexpr const char* kParkedSql = R"sql(
SELECT id, key, topic, attempts, coalesce(last_error, ''), parked_at, created_at
FROM outbox
WHERE state = 'parked' AND id > $1 AND ($2::text = '' OR topic = $2::text)
ORDER BY id LIMIT $3
)sql";

// The selected parked rows, locked (a purge or another requeue waits), each
// with whether a later row of its key is published: a walk of the primary
// key from the row up to the first such row.
inline constexpr const char* kRequeueSelectSql = R"sql(
SELECT p.id,
       EXISTS (SELECT 1 FROM outbox l
               WHERE l.id > p.id AND l.key = p.key AND l.state = 'published') AS later
FROM outbox p
WHERE p.state = 'parked'
  AND CASE WHEN $2::text = '' THEN p.id = ANY($1::bigint[]) ELSE p.topic = $2::text END
ORDER BY p.id
FOR UPDATE OF p
)sql";

// Pending again from the start: no attempts, no retry time, no parked time
// (the last error stays for the operator). The notification wakes the
// dispatchers that wait on the insert trigger's channel (002_notify.sql).
inline constexpr const char* kRequeueSql = R"sql(
WITH requeued AS (
  UPDATE outbox SET state = 'pending', attempts = 0, retry_at = NULL, parked_at = NULL
  WHERE id = ANY($1::bigint[]) AND state = 'parked'
  RETURNING 1
)
SELECT (SELECT count(*) FROM requeued), pg_notify('dispatch_outbox', '')
)sql";

// One batch of parked rows parked before $1 (by their creation time when a
// relay before version 4 parked them), through outbox_parked_id.
inline constexpr const char* kPurgeSql = R"sql(
WITH doomed AS (
  SELECT id FROM outbox
  WHERE state = 'parked' AND coalesce(parked_at, created_at) < $1
  ORDER BY id LIMIT $2
)
DELETE FROM outbox o USING doomed d WHERE o.id = d.id AND o.state = 'parked'
)sql";

// Retention's lock: one process at a time per outbox table. A single bigint
// key ("outbox-r" in ASCII, xor the table's oid), a space apart from the
// claims' two-int4 keys and from the migration lock's key.
inline constexpr const char* kRetentionLockSql = R"sql(
SELECT pg_try_advisory_xact_lock(8031453476610911602 # 'outbox'::regclass::oid::bigint)
)sql";

// A window of the primary key after $1: each row's id and what retention
// makes of it (0 delete: published before $2; 1 skip: parked; 2 stop).
inline constexpr const char* kRetentionWindowSql = R"sql(
SELECT id, CASE WHEN state = 'published' AND published_at < $2 THEN 0
                WHEN state = 'parked' THEN 1 ELSE 2 END
FROM outbox WHERE id > $1 ORDER BY id LIMIT $3
)sql";

inline constexpr const char* kRetentionDeleteSql = R"sql(
DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND state = 'published'
)sql";

struct AdminSql {
  explicit AdminSql(std::string_view table)
      : status(ForTable(kStatusSql, table)),
        parked(ForTable(kParkedSql, table)),
        requeue_select(ForTable(kRequeueSelectSql, table)),
        requeue(ForTable(kRequeueSql, table)),
        purge(ForTable(kPurgeSql, table)),
        retention_lock(ForTable(kRetentionLockSql, table)),
        retention_window(ForTable(kRetentionWindowSql, table)),
        retention_delete(ForTable(kRetentionDeleteSql, table)) {}

  std::string status;
  std::string parked;
  std::string requeue_select;
  std::string requeue;
  std::string purge;
  std::string retention_lock;
  std::string retention_window;
  std::string retention_delete;
};

}  // namespace dispatch::pg
