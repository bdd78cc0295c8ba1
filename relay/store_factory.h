// The relay's stores, made from [store]: one for the dispatcher, one more
// (its own connection) for the retention job and for each operator command.
#pragma once

#include <memory>

#include "dispatch/outbox_admin.h"
#include "dispatch/outbox_store.h"
#include "relay/config.h"

namespace dispatch::relay {

// Connects (PostgreSQL: the configuration's password added to the
// connection string in memory; the stores mask it in their errors). Throws
// StoreError, or std::runtime_error when this build lacks the store kind.
std::unique_ptr<OutboxStore> MakeStore(const StoreConfig& config);

// The operator interface on a connection of its own (PostgresAdmin,
// SqliteAdmin), for the retention job and each operator command. Throws as
// MakeStore does.
std::unique_ptr<OutboxAdmin> MakeAdmin(const StoreConfig& config);

}  // namespace dispatch::relay
