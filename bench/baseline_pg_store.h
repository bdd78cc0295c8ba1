// The PostgreSQL store's claim and finish as they were at commit b1859b3
// (issue 20's starting commit), for B8's store-side baseline: the same
// statements, in the same order, on the same connection class, so that a
// run measures them beside today's PostgresStore on the same server, table
// and load. Frozen: it is a yardstick, not a store to use. A claim: BEGIN;
// windows of 2 x limit pending rows, each row with an index probe for an
// earlier pending row of its key; pg_try_advisory_xact_lock per candidate
// key; the rows of the locked keys, each with a probe for an earlier row
// that is not due. Finish: one UPDATE for the published rows, one per
// failure, COMMIT. The dispatcher of b1859b3 asked OldestPending after every
// round: with `oldest_each_round` the store runs that query at the end of
// every claim (Finish or Release) itself, whatever today's dispatcher asks.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <unordered_set>
#include <vector>

#include "dispatch/outbox_store.h"
#include "stores/pg_connection.h"

namespace bench {

class BaselinePgStore final : public dispatch::OutboxStore {
 public:
  BaselinePgStore(const std::string& conninfo, bool oldest_each_round)
      : c_(conninfo, "SET idle_in_transaction_session_timeout = 300000"),
        oldest_each_round_(oldest_each_round) {}
  ~BaselinePgStore() override { Release(); }

  std::vector<dispatch::OutboxRow> Claim(std::size_t limit,
                                         std::chrono::system_clock::time_point now) override {
    namespace pg = dispatch::pg;
    Release();
    c_.Exec("claim (begin)", "BEGIN ISOLATION LEVEL READ COMMITTED");
    std::vector<std::string> keys;
    std::unordered_set<std::string> mine;
    std::int64_t through = 0;
    std::size_t rows_of_mine = 0;
    const std::size_t window = 2 * limit;
    while (rows_of_mine < limit) {
      const pg::Result rows =
          c_.Exec("claim (window)", kWindowSql,
                  pg::Params().Time(now).Int(through).Int(static_cast<std::int64_t>(window)));
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
        } else if (pg::Bool(rows.get(), considered, 2) && pg::Bool(rows.get(), considered, 3)) {
          ++hoped;
          wanted.insert(key);
          candidates.push_back(std::move(key));
        }
        ++considered;
      }
      through = pg::Int64(rows.get(), considered - 1, 0);
      if (!candidates.empty()) {
        const pg::Result got =
            c_.Exec("claim (locks)", kLockKeysSql, pg::Params().TextArray(candidates));
        keys_skipped += candidates.size() - static_cast<std::size_t>(PQntuples(got.get()));
        for (int i = 0; i < PQntuples(got.get()); ++i) {
          std::string key = pg::Bytes(got.get(), i, 0);
          mine.insert(key);
          keys.push_back(std::move(key));
        }
      }
      for (int i = 0; i < considered; ++i) rows_of_mine += mine.count(pg::Bytes(rows.get(), i, 1));
      if (considered == n && static_cast<std::size_t>(n) < window) break;
    }
    std::vector<dispatch::OutboxRow> out;
    if (!keys.empty()) {
      const pg::Result got = c_.Exec("claim (rows)", kRowsSql,
                                     pg::Params()
                                         .Time(now)
                                         .TextArray(keys)
                                         .Int(static_cast<std::int64_t>(limit))
                                         .Int(through));
      for (int i = 0; i < PQntuples(got.get()); ++i) {
        dispatch::OutboxRow row;
        row.id = pg::Int64(got.get(), i, 0);
        row.key = pg::Bytes(got.get(), i, 1);
        row.topic = pg::Bytes(got.get(), i, 2);
        row.payload = pg::Bytes(got.get(), i, 3);
        row.headers = dispatch::DecodeHeaders(pg::Bytes(got.get(), i, 4));
        row.attempts = pg::Int32(got.get(), i, 5);
        row.created_at = pg::Time(got.get(), i, 6);
        out.push_back(std::move(row));
      }
    }
    if (out.empty()) {
      Rollback();
    } else {
      open_ = true;
    }
    return out;
  }

  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<dispatch::RowFailure>& failures) override {
    namespace pg = dispatch::pg;
    std::vector<std::int64_t> ids = published;
    std::sort(ids.begin(), ids.end());
    if (!ids.empty()) c_.Exec("finish (mark)", kMarkPublishedSql, pg::Params().IntArray(ids));
    for (const dispatch::RowFailure& f : failures) {
      c_.Exec("finish (failure)", kRecordFailureSql,
              pg::Params().Int(f.id).Bytes(f.error).Bool(f.park).Time(f.retry_at));
    }
    c_.Exec("finish (commit)", "COMMIT");
    open_ = false;
    AfterRound();
  }

  void Release() noexcept override {
    if (open_) Rollback();
  }

  std::optional<std::chrono::system_clock::time_point> OldestPending() override {
    if (oldest_each_round_) return std::nullopt;  // asked in AfterRound
    return Oldest();
  }

  std::atomic<std::uint64_t> keys_skipped{0};

 private:
  static constexpr const char* kWindowSql = R"sql(
SELECT o.id, o.key,
       NOT EXISTS (SELECT 1 FROM outbox e
                   WHERE e.state = 'pending' AND e.key = o.key AND e.id < o.id) AS head,
       (o.retry_at IS NULL OR o.retry_at <= $1) AS due
FROM outbox o
WHERE o.state = 'pending' AND o.id > $2
ORDER BY o.id LIMIT $3
)sql";
  static constexpr const char* kLockKeysSql = R"sql(
SELECT k FROM unnest($1::text[]) AS k
WHERE pg_try_advisory_xact_lock('outbox'::regclass::oid::int4, hashtext(k))
)sql";
  static constexpr const char* kRowsSql = R"sql(
SELECT o.id, o.key, o.topic, o.payload, o.headers, o.attempts, o.created_at FROM outbox o
WHERE o.state = 'pending' AND o.key = ANY($2::text[]) AND o.id <= $4
  AND NOT EXISTS (SELECT 1 FROM outbox e
                  WHERE e.state = 'pending' AND e.key = o.key AND e.id <= o.id
                    AND e.retry_at > $1)
ORDER BY o.id LIMIT $3
)sql";
  static constexpr const char* kMarkPublishedSql = R"sql(
UPDATE outbox SET state = 'published', published_at = now(), retry_at = NULL
WHERE id = ANY($1::bigint[]) AND state = 'pending'
)sql";
  static constexpr const char* kRecordFailureSql = R"sql(
UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                  state = CASE WHEN $3 THEN 'parked' ELSE 'pending' END,
                  retry_at = CASE WHEN $3 THEN NULL ELSE $4 END
WHERE id = $1 AND state = 'pending'
)sql";

  void Rollback() noexcept {
    c_.ExecQuietly("ROLLBACK");
    open_ = false;
    AfterRound();
  }

  void AfterRound() noexcept {
    if (!oldest_each_round_) return;
    try {
      (void)Oldest();
    } catch (const dispatch::StoreError&) {
    }
  }

  std::optional<std::chrono::system_clock::time_point> Oldest() {
    const dispatch::pg::Result r = c_.Exec(
        "oldest", "SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1");
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return dispatch::pg::Time(r.get(), 0, 0);
  }

  dispatch::pg::Connection c_;
  const bool oldest_each_round_;
  bool open_ = false;
};

}  // namespace bench
