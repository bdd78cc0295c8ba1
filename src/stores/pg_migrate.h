// Applying the PostgreSQL store's migrations (postgres_migrations.h) on one
// connection: PostgresStore::Migrate and PostgresAdmin's `migrate` option.
#pragma once

#include "stores/pg_connection.h"

namespace dispatch::pg {

// Applies the migrations the database has not recorded yet (table
// outbox_schema_migrations), all in one transaction under an advisory lock,
// so that processes starting at once apply each one once. The connection
// must not be in a transaction. Throws StoreError, having applied nothing.
void Migrate(Connection& connection);

}  // namespace dispatch::pg
