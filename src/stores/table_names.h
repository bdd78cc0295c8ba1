// The outbox table's name (PostgresStoreOptions::table,
// PostgresAdminOptions::table): its check, and the rewrite of a statement
// written for the table `outbox` into one for the configured table. The
// statements and migrations are written once, for `outbox`; each store and
// admin rewrites them once, when it is built.
#pragma once

#include <string>
#include <string_view>

namespace dispatch::pg {

// The name every statement is written for, and the default.
inline constexpr std::string_view kDefaultTable = "outbox";

// The longest name allowed: the longest derived name,
// <table>_schema_migrations, must stay within PostgreSQL's 63 bytes.
inline constexpr std::size_t kMaxTableName = 40;

// Throws std::invalid_argument naming `option`, the value and what is
// allowed unless `table` is an unquoted lower-case SQL identifier
// ([a-z_][a-z0-9_]*, at most kMaxTableName characters) and not one of
// PostgreSQL's reserved key words. No schema: the table is looked up through
// the session's search_path.
void CheckTableName(std::string_view option, std::string_view table);

// Empty when `table` passes CheckTableName; else what is allowed, then
// "; here: " and what is wrong with it.
std::string TableNameError(std::string_view table);

// `sql`, written for the table `outbox`, for the table `table` (checked by
// CheckTableName): the identifier `outbox` becomes `table`, the objects
// derived from it (outbox_pending_id, outbox_pending_key_id,
// outbox_pending_retry, outbox_parked_id, outbox_notify,
// outbox_schema_migrations) become <table>_pending_id and so on, and the
// notification channel dispatch_outbox becomes dispatch_<table>. Words are
// replaced whole, in statements, strings and comments alike; every other
// word, outbox_headers among them (one function for every table), stays.
// For the table `outbox` the result is `sql` unchanged.
std::string ForTable(std::string_view sql, std::string_view table);

}  // namespace dispatch::pg
