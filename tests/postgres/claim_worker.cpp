#include "postgres/claim_worker.h"

#include <chrono>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {

void CreateBookkeeping(const std::string& conninfo) {
  PostgresStore migrate(conninfo);
  Query(conninfo, "CREATE TABLE held_keys (key text PRIMARY KEY)");
  Query(conninfo,
        "CREATE TABLE published_log (seq bigint GENERATED ALWAYS AS IDENTITY, row_id bigint, "
        "key text)");
}

DrainReport DrainOutbox(const std::string& conninfo, std::size_t batch, int fail_one_in) {
  PostgresStore store(conninfo);
  SqlSession sql(conninfo);
  DrainReport report;
  std::mt19937 random(std::random_device{}());
  while (true) {
    const auto now = std::chrono::system_clock::now();
    const std::vector<OutboxRow> rows = store.Claim(batch, now);
    if (rows.empty()) {
      if (store.Count().pending == 0) return report;
      std::this_thread::yield();  // rows held by the others, or backing off
      continue;
    }
    std::set<std::string> keys;
    for (const OutboxRow& row : rows) keys.insert(row.key);
    for (const std::string& key : keys) {
      // A key still held by another claim would already be in the table.
      const std::string inserted =
          sql.Query("WITH i AS (INSERT INTO held_keys VALUES ('" + key +
                    "') ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM i");
      if (inserted != "1") ++report.overlaps;
    }
    std::vector<std::int64_t> published;
    std::vector<RowFailure> failures;
    std::set<std::string> deferred;
    for (const OutboxRow& row : rows) {
      if (deferred.count(row.key)) continue;
      if (fail_one_in > 0 && random() % static_cast<unsigned>(fail_one_in) == 0) {
        failures.push_back(RowFailure{row.id, "injected", false, now});
        deferred.insert(row.key);
        continue;
      }
      sql.Query("INSERT INTO published_log (row_id, key) VALUES (" + std::to_string(row.id) +
                ", '" + row.key + "')");
      published.push_back(row.id);
    }
    // Removed while the claim still holds its keys: once it ends, another
    // claim may take them at once.
    for (const std::string& key : keys) {
      sql.Query("DELETE FROM held_keys WHERE key = '" + key + "'");
    }
    store.Finish(published, failures);
    report.published += static_cast<std::int64_t>(published.size());
  }
}

void AppendRowsOfKeys(const std::string& conninfo, int rows, int keys) {
  std::vector<OutboxRow> batch;
  for (int i = 0; i < rows; ++i) batch.push_back(Row("key-" + std::to_string(i % keys)));
  PostgresStore(conninfo).Append(batch);
}

std::string PublicationProblems(const std::string& conninfo, int rows) {
  SqlSession sql(conninfo);
  std::string problems;
  const auto check = [&](const std::string& what, const std::string& query,
                         const std::string& expected) {
    const std::string got = sql.Query(query);
    if (got != expected) problems += what + ": " + got + " (expected " + expected + "); ";
  };
  check("rows published", "SELECT count(*) FROM outbox WHERE state = 'published'",
        std::to_string(rows));
  check("rows logged", "SELECT count(*) FROM published_log", std::to_string(rows));
  check("distinct rows logged", "SELECT count(DISTINCT row_id) FROM published_log",
        std::to_string(rows));
  check("rows logged out of their key's order",
        "SELECT count(*) FROM (SELECT row_id, lag(row_id) OVER (PARTITION BY key ORDER BY seq) "
        "AS previous FROM published_log) t WHERE previous >= row_id",
        "0");
  return problems;
}

}  // namespace dispatch::test
