// The schema migrations of the PostgreSQL store: the files of sql/postgres,
// compiled in by CMake (cmake/postgres_migrations.cpp.in), so that an
// installed library needs no path to them.
#pragma once

#include <vector>

namespace dispatch::pg {

struct Migration {
  int version;       // the file name's number: 001_outbox.sql is 1
  const char* name;  // the file name
  const char* sql;
};

// In ascending version order.
const std::vector<Migration>& Migrations();

}  // namespace dispatch::pg
