#include "stores/table_names.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <stdexcept>
#include <string>

#include "dispatch/stores/postgres_store.h"

namespace dispatch::pg {
namespace {

// The objects the migrations name after the table (sql/postgres/*.sql and
// pg_migrate.cpp), as the suffix after "outbox_". The PostgreSQL test
// AnotherTableAloneMakesOnlyObjectsOfItsOwnNameAndTheSharedFunctions
// (tests/postgres/store_table_name_test.cpp) fails when a migration names a
// new object after the table that this list lacks.
constexpr std::array<std::string_view, 6> kDerivedSuffixes = {
    "pending_id", "pending_key_id", "pending_retry", "parked_id", "notify", "schema_migrations",
};

// The notification channel of the table `outbox` (002_notify.sql).
constexpr std::string_view kChannelPrefix = "dispatch_";

// PostgreSQL's reserved key words (reserved, and reserved but usable as a
// function or type name): none can name a table unquoted. `SELECT word FROM
// pg_get_keywords() WHERE catcode IN ('R', 'T')` lists them; the PostgreSQL
// test EveryReservedWordOfTheServerIsRefusedAndNoOtherKeyWord checks the
// list against the server's.
// clang-format off
constexpr std::string_view kReserved[] = {
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization",
    "binary", "both", "case", "cast", "check", "collate", "collation", "column", "concurrently",
    "constraint", "create", "cross", "current_catalog", "current_date", "current_role",
    "current_schema", "current_time", "current_timestamp", "current_user", "default", "deferrable",
    "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign", "freeze",
    "from", "full", "grant", "group", "having", "ilike", "in", "initially", "inner", "intersect",
    "into", "is", "isnull", "join", "lateral", "leading", "left", "like", "limit", "localtime",
    "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only", "or", "order",
    "outer", "overlaps", "placing", "primary", "references", "returning", "right", "select",
    "session_user", "similar", "some", "symmetric", "system_user", "table", "tablesample", "then",
    "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "verbose", "when",
    "where", "window", "with",
};
// clang-format on

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// What `word` (a maximal run of word characters) becomes for `table`.
std::string Rewrite(std::string_view word, std::string_view table) {
  if (word == kDefaultTable) return std::string(table);
  if (word.size() > kChannelPrefix.size() &&
      word.substr(0, kChannelPrefix.size()) == kChannelPrefix &&
      word.substr(kChannelPrefix.size()) == kDefaultTable) {
    return std::string(kChannelPrefix) + std::string(table);
  }
  const std::size_t prefix = kDefaultTable.size() + 1;
  if (word.size() > prefix && word.substr(0, kDefaultTable.size()) == kDefaultTable &&
      word[kDefaultTable.size()] == '_') {
    const std::string_view suffix = word.substr(prefix);
    if (std::find(kDerivedSuffixes.begin(), kDerivedSuffixes.end(), suffix) !=
        kDerivedSuffixes.end()) {
      return std::string(table) + "_" + std::string(suffix);
    }
  }
  return std::string(word);
}

}  // namespace

std::string TableNameError(std::string_view table) {
  std::string why;
  const auto allowed_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (table.empty()) {
    why = "empty";
  } else if (table.size() > kMaxTableName) {
    why = std::to_string(table.size()) + " characters";
  } else if (table.find('.') != std::string_view::npos) {
    why = "a schema is not allowed";
  } else if (const auto bad = std::find_if_not(table.begin(), table.end(), allowed_char);
             bad != table.end()) {
    why = std::string("holds '") + *bad + "'";
  } else if (table.front() >= '0' && table.front() <= '9') {
    why = "starts with a digit";
  } else if (std::find(std::begin(kReserved), std::end(kReserved), table) != std::end(kReserved)) {
    why = "a reserved word of PostgreSQL";
  } else {
    return "";
  }
  return "an unquoted lower-case SQL identifier ([a-z_][a-z0-9_]*, at most " +
         std::to_string(kMaxTableName) +
         " characters, not a reserved word) without a schema (the connection's search_path "
         "chooses it); here: " +
         why;
}

void CheckTableName(std::string_view option, std::string_view table) {
  const std::string error = TableNameError(table);
  if (!error.empty()) {
    throw std::invalid_argument(std::string(option) + " \"" + std::string(table) + "\": expected " +
                                error);
  }
}

std::string ForTable(std::string_view sql, std::string_view table) {
  if (table == kDefaultTable) return std::string(sql);
  std::string out;
  out.reserve(sql.size() + 64);
  std::size_t i = 0;
  while (i < sql.size()) {
    if (!IsWordChar(sql[i])) {
      out += sql[i++];
      continue;
    }
    std::size_t end = i;
    while (end < sql.size() && IsWordChar(sql[end])) ++end;
    out += Rewrite(sql.substr(i, end - i), table);
    i = end;
  }
  return out;
}

}  // namespace dispatch::pg

namespace dispatch {

std::string PostgresTableNameError(std::string_view table) { return pg::TableNameError(table); }

}  // namespace dispatch
