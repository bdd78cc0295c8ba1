/// @file
/// dispatch::OutboxStore: where a dispatch::Dispatcher finds outbox rows and
/// records what happened to them. Standard library only; each database is an
/// optional target (dispatch::sqlite_store, dispatch::postgres_store).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/publisher.h"

namespace dispatch {

/// A store operation failed (connection lost, SQL error, corrupt column);
/// what() names the operation and the database's reason, never a password.
/// The dispatcher treats it as retriable: nothing it claimed was marked.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where a row is in its life (the stores' Count() and Ids()).
enum class RowState {
  kPending,    ///< waiting to be published (or for its retry time)
  kPublished,  ///< acknowledged by the broker and marked
  kParked,     ///< failed permanently; kept with its error, never claimed again
};

/// The state as every store writes it in its `state` column: "pending",
/// "published" or "parked".
[[nodiscard]] constexpr std::string_view ToString(RowState state) {
  switch (state) {
    case RowState::kPending: return "pending";
    case RowState::kPublished: return "published";
    case RowState::kParked: return "parked";
  }
  return "pending";
}

/// Rows per state (the stores' Count()).
struct OutboxCounts {
  std::int64_t pending = 0;    ///< RowState::kPending
  std::int64_t published = 0;  ///< RowState::kPublished
  std::int64_t parked = 0;     ///< RowState::kParked
};

/// One pending outbox row, as a store hands it to the dispatcher.
struct OutboxRow {
  std::int64_t id = 0;          ///< ascending in commit order within a key
  std::string key;              ///< the Kafka key (the aggregate id): rows of one key stay in order
  std::string topic;            ///< the Kafka topic
  std::string payload;          ///< the record value: arbitrary bytes
  std::vector<Header> headers;  ///< the row's own headers, in order; binary values
  int attempts = 0;             ///< failed publishes so far
  std::chrono::system_clock::time_point created_at;  ///< when the service wrote the row
};

/// What became of one claimed row that was not published.
struct RowFailure {
  std::int64_t id = 0;  ///< the claimed row
  std::string error;    ///< Result::message of the last attempt
  /// Park the row (a permanent result): it leaves the pending set and no
  /// longer holds back its key.
  bool park = false;
  /// Retriable: not claimable before this time; the rows after it in its key
  /// wait too, so per-key order holds.
  std::chrono::system_clock::time_point retry_at;
};

/// Where the dispatcher reads and records rows. One OutboxStore object is
/// used by one dispatcher thread at a time; several dispatchers (threads or
/// processes) each hold their own object on the same database.
///
/// The contract every store keeps:
/// - Claim returns rows that no other live claim holds, in id order, and
///   only rows of keys whose earliest pending row is due (its retry_at has
///   passed): a later row of a key is never handed out while an earlier one
///   is pending, whoever holds it.
/// - A claim lasts until Finish or Release, or until the holder dies (its
///   connection closes or its lease expires); then its rows are claimable
///   again, unmarked.
/// - Finish records everything in one transaction: published rows are
///   marked, failures recorded; a claim that was lost (taken over after a
///   lease expired) marks nothing and throws StoreError.
/// - A failure adds one to the row's attempts and keeps its error; a parked
///   row is never claimed again.
///
/// The dispatcher ends every Claim, an empty one included, with exactly one
/// Finish or Release before it claims again.
///
/// A store of your own proves that it keeps the contract with the suite of
/// <dispatch/testing/outbox_store_contract.h> (target dispatch::testing),
/// which every store of this library runs.
///
/// How this interface grows, so that a store written outside the library
/// keeps compiling and working within a major version:
/// - An operation the dispatcher's own loop needs (waking on new rows, for
///   one) is added here as a virtual function with a default implementation
///   that keeps today's behaviour (waiting for a wake-up by sleeping through
///   the poll interval, that is, polling). A store opts in by overriding it.
/// - Operator commands (status, parked rows, requeue, purge, retention) go
///   into a separate interface that a store may implement besides this one;
///   the relay uses them when the store has them.
/// - Every new operation comes with cases in the exported contract suite (a
///   suite of its own for the operator interface), so a store proves itself
///   with the same suite as the library's stores.
/// - No pure virtual function is added to OutboxStore within a major
///   version.
class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  /// Claims up to `limit` pending rows that are due at `now`, oldest first.
  /// May hold several rows of one key (in id order). Throws StoreError.
  virtual std::vector<OutboxRow> Claim(std::size_t limit,
                                       std::chrono::system_clock::time_point now) = 0;

  /// Marks `published` rows published and records `failures`, in one
  /// transaction, and ends the claim. Rows of the claim in neither list stay
  /// pending, unchanged. Throws StoreError; then nothing was recorded.
  virtual void Finish(const std::vector<std::int64_t>& published,
                      const std::vector<RowFailure>& failures) = 0;

  /// Ends the claim without recording anything (a stop, a failed publisher).
  /// Never throws.
  virtual void Release() noexcept = 0;

  /// The creation time of the oldest pending row (the outbox lag), or
  /// nullopt when nothing is pending. Throws StoreError.
  virtual std::optional<std::chrono::system_clock::time_point> OldestPending() = 0;

  /// Whether WaitForRows wakes on rows committed by other connections and
  /// processes (a service's inserts), so that a quiet dispatcher waits on it
  /// rather than polling. The dispatcher asks after every round that claimed
  /// nothing, so the answer may change (PostgresStore's follows its
  /// connection). The default, false, keeps the poll backoff of
  /// DispatcherOptions::poll_min and poll_max.
  virtual bool WakesOnNewRows() const { return false; }

  /// Waits for a sign of new rows: returns true when rows may have been
  /// committed since the last Claim (or since the last WaitForRows that
  /// returned true), false at `until` or as soon as `stop` is requested. A
  /// sign may be spurious (the next Claim then finds nothing); a missed one
  /// costs at most the wait until `until`, which the dispatcher bounds. A
  /// store that cannot wait (a lost connection) returns false, at once if it
  /// likes: the next round reconnects.
  ///
  /// Called by the dispatcher's thread between rounds, when WakesOnNewRows()
  /// is true, never while a claim is open; like every other call, never from
  /// two threads at once. The default waits for `until` or the stop, and
  /// returns false. Should not throw; a StoreError is treated as false after
  /// waiting for `until`.
  virtual bool WaitForRows(std::chrono::steady_clock::time_point until,
                           const std::stop_token& stop);
};

/// Headers as stored in a BLOB / BYTEA column: per header, 4-byte
/// little-endian key length, key, 4-byte value length, value. Shared by the
/// stores so that a row written by one reads the same in another.
std::string EncodeHeaders(const std::vector<Header>& headers);
/// Throws StoreError naming the column when the bytes are truncated.
std::vector<Header> DecodeHeaders(const std::string& blob);

}  // namespace dispatch
