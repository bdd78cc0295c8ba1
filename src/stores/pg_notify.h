// How a PostgresStore hears of new rows: the trigger of
// sql/postgres/002_notify.sql notifies a channel at each commit that inserted
// rows, the store LISTENs on it, and WaitForRows waits on the connection's
// socket for a notification, a deadline, or a stop request.
#pragma once

#include <chrono>
#include <stop_token>

#include "stores/pg_connection.h"

namespace dispatch::pg {

// The statements below are written for the table `outbox`; a store runs
// them through ForTable (table_names.h), which makes the channel
// dispatch_<table> and the trigger <table>_notify.

// The statement that subscribes a session to the trigger's channel; part of
// the session setup, so that a reconnect listens again.
inline constexpr const char* kListenSql = "LISTEN dispatch_outbox";

// Whether the outbox table has the trigger outbox_notify and it fires in an
// ordinary session (tgenabled: 'O' fires in ordinary sessions, 'A' always,
// 'R' only in replica sessions, 'D' never). False when there is no outbox
// table yet.
inline constexpr const char* kNotifyTriggerEnabledSql =
    "SELECT coalesce((SELECT tgenabled IN ('O', 'A') FROM pg_trigger "
    "WHERE tgrelid = to_regclass('outbox') AND tgname = 'outbox_notify'), false)";

// Runs `check_sql` (kNotifyTriggerEnabledSql for the store's table). Throws
// StoreError.
bool NotifyTriggerEnabled(Connection& connection, const char* check_sql);

// Takes the notifications that arrived so far; true when there was one.
// False, too, when the connection broke.
bool TakeNotifications(Connection& connection);

// Waits until a notification arrives (true), or `until` passes, `stop` is
// requested or the connection breaks (false). A stop wakes it at once (an
// eventfd signalled by a stop_callback, polled beside the socket).
bool WaitForNotification(Connection& connection, std::chrono::steady_clock::time_point until,
                         const std::stop_token& stop);

}  // namespace dispatch::pg
