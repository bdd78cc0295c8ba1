// How a PostgresStore hears of new rows: the trigger of
// sql/postgres/002_notify.sql notifies a channel at each commit that inserted
// rows, the store LISTENs on it, and WaitForRows waits on the connection's
// socket for a notification, a deadline, or a stop request.
#pragma once

#include <chrono>
#include <stop_token>

#include "stores/pg_connection.h"

namespace dispatch::pg {

// The statement that subscribes a session to the trigger's channel; part of
// the session setup, so that a reconnect listens again.
inline constexpr const char* kListenSql = "LISTEN dispatch_outbox";

// Whether the outbox table has the trigger outbox_notify and it fires in an
// ordinary session (not disabled, not replica-only). False when there is no
// outbox table yet. Throws StoreError.
bool NotifyTriggerEnabled(Connection& connection);

// Takes the notifications that arrived so far; true when there was one.
// False, too, when the connection broke.
bool TakeNotifications(Connection& connection);

// Waits until a notification arrives (true), or `until` passes, `stop` is
// requested or the connection breaks (false). A stop wakes it at once (an
// eventfd signalled by a stop_callback, polled beside the socket).
bool WaitForNotification(Connection& connection, std::chrono::steady_clock::time_point until,
                         const std::stop_token& stop);

}  // namespace dispatch::pg
