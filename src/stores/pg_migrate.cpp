#include "stores/pg_migrate.h"

#include <cstdint>
#include <string>
#include <unordered_set>

#include "dispatch/outbox_store.h"
#include "stores/postgres_migrations.h"
#include "stores/table_names.h"

namespace dispatch::pg {
namespace {

// Key of the transaction-scoped advisory lock that serializes migrations. A
// single bigint key: the key locks of a claim use two int4 keys, which
// PostgreSQL keeps in a separate space. One key for every outbox table of
// the database, not one per table: migration 4 creates the functions
// outbox_headers and outbox_headers_bytea, which all tables share, and two
// CREATE OR REPLACE FUNCTION of one function at once fail ("tuple
// concurrently updated").
constexpr const char* kMigrateSql = R"sql(
SELECT pg_advisory_xact_lock(8031453476610911597)  -- "outbox-m" in ASCII
)sql";

constexpr const char* kMigrationsTableSql = R"sql(
CREATE TABLE IF NOT EXISTS outbox_schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)
)sql";

}  // namespace

void Migrate(Connection& c, std::string_view table) {
  // Each table records its own versions (<table>_schema_migrations), so two
  // outbox tables of one database migrate independently.
  const std::string create_table = ForTable(kMigrationsTableSql, table);
  const std::string read_versions = ForTable("SELECT version FROM outbox_schema_migrations", table);
  const std::string record_version =
      ForTable("INSERT INTO outbox_schema_migrations (version, name) VALUES ($1, $2)", table);
  c.Exec("migrate (begin)", "BEGIN");
  try {
    c.Exec("migrate (taking the migration lock)", kMigrateSql);
    c.Exec("migrate (creating the migrations table)", create_table.c_str());
    const Result applied = c.Exec("migrate (reading applied versions)", read_versions.c_str());
    std::unordered_set<std::int32_t> versions;
    for (int i = 0; i < PQntuples(applied.get()); ++i) versions.insert(Int32(applied.get(), i, 0));
    for (const Migration& m : Migrations()) {
      if (versions.count(m.version)) continue;
      const std::string what = std::string("migrate (applying ") + m.name + ")";
      c.ExecScript(what, ForTable(m.sql, table).c_str());
      c.Exec(what, record_version.c_str(), Params().Int(m.version).Bytes(m.name));
    }
    c.Exec("migrate (commit)", "COMMIT");
  } catch (const StoreError&) {
    c.ExecQuietly("ROLLBACK");
    throw;
  }
}

}  // namespace dispatch::pg
