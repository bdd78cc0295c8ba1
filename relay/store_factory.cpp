#include "relay/store_factory.h"

#include <cctype>
#include <stdexcept>
#include <string>

#include "dispatch/stores/postgres_admin.h"
#include "dispatch/stores/postgres_store.h"
#if defined(DISPATCH_RELAY_WITH_SQLITE)
#include "dispatch/stores/sqlite_admin.h"
#include "dispatch/stores/sqlite_store.h"
#endif

namespace dispatch::relay {
namespace {

// `conninfo` with the password added in its own syntax (a URI parameter,
// percent-encoded, or a quoted keyword value). The stores mask it in every
// error they report.
std::string WithPassword(const std::string& conninfo, const std::string& password) {
  if (password.empty()) return conninfo;
  if (conninfo.rfind("postgres://", 0) == 0 || conninfo.rfind("postgresql://", 0) == 0) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string encoded;
    for (const char c : password) {
      const auto u = static_cast<unsigned char>(c);
      if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
        encoded += c;
      } else {
        encoded += '%';
        encoded += kHex[u >> 4];
        encoded += kHex[u & 0xf];
      }
    }
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "password=" + encoded;
  }
  std::string quoted = "'";
  for (const char c : password) {
    if (c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  return conninfo + " password=" + quoted + "'";
}

}  // namespace

std::unique_ptr<OutboxStore> MakeStore(const StoreConfig& config) {
  if (config.kind == StoreKind::kSqlite) {
#if defined(DISPATCH_RELAY_WITH_SQLITE)
    return std::make_unique<SqliteStore>(config.path);
#else
    throw std::runtime_error("store.kind \"sqlite\": this dispatch-relay was built without SQLite");
#endif
  }
  // The configuration's conninfo holds no password (config.cpp refuses
  // one); without store.password, libpq's own sources apply.
  return std::make_unique<PostgresStore>(WithPassword(config.conninfo, config.password),
                                         config.postgres);
}

std::unique_ptr<OutboxAdmin> MakeAdmin(const StoreConfig& config) {
  if (config.kind == StoreKind::kSqlite) {
#if defined(DISPATCH_RELAY_WITH_SQLITE)
    return std::make_unique<SqliteAdmin>(config.path);
#else
    throw std::runtime_error("store.kind \"sqlite\": this dispatch-relay was built without SQLite");
#endif
  }
  // The schema is the relay's store's to migrate (store.migrate), not an
  // operator command's.
  PostgresAdminOptions options;
  options.table = config.table;
  return std::make_unique<PostgresAdmin>(WithPassword(config.conninfo, config.password), options);
}

}  // namespace dispatch::relay
