// Applying the PostgreSQL store's migrations (postgres_migrations.h) on one
// connection: PostgresStore::Migrate and PostgresAdmin's `migrate` option.
#pragma once

#include <string_view>

#include "stores/pg_connection.h"

namespace dispatch::pg {

// Applies the migrations, rewritten for `table` (table_names.h), that the
// database has not recorded yet for that table (<table>_schema_migrations:
// outbox_schema_migrations for the default), all in one transaction under an advisory lock,
// so that processes starting at once apply each one once. The connection
// must not be in a transaction. Throws StoreError, having applied nothing.
void Migrate(Connection& connection, std::string_view table);

}  // namespace dispatch::pg
