#include "relay/store_factory.h"

#include <cstdlib>
#include <stdexcept>

#include "dispatch/stores/postgres_store.h"
#if defined(DISPATCH_RELAY_WITH_SQLITE)
#include "dispatch/stores/sqlite_store.h"
#endif

namespace dispatch::relay {

std::unique_ptr<OutboxStore> MakeStore(const StoreConfig& config) {
  if (config.kind == StoreKind::kSqlite) {
#if defined(DISPATCH_RELAY_WITH_SQLITE)
    return std::make_unique<SqliteStore>(config.path);
#else
    throw std::runtime_error("store.kind \"sqlite\": this dispatch-relay was built without SQLite");
#endif
  }
  // libpq takes the password from PGPASSWORD when the connection string
  // has none, which the configuration guarantees (config.cpp).
  if (!config.password.empty()) setenv("PGPASSWORD", config.password.c_str(), 1);
  return std::make_unique<PostgresStore>(config.conninfo, config.postgres);
}

std::unique_ptr<OutboxAdmin> MakeAdmin(const StoreConfig& config) {
  StoreConfig admin = config;
  admin.postgres.listen = false;
  std::unique_ptr<OutboxStore> store = MakeStore(admin);
  auto* as_admin = dynamic_cast<OutboxAdmin*>(store.get());
  if (as_admin == nullptr) {
    throw std::runtime_error(
        "this build's store does not implement the operator commands (dispatch::OutboxAdmin)");
  }
  // The same object, now owned through its OutboxAdmin side (a virtual
  // destructor either way).
  (void)store.release();
  return std::unique_ptr<OutboxAdmin>(as_admin);
}

}  // namespace dispatch::relay
