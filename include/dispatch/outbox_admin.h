/// @file
/// dispatch::OutboxAdmin: what an operator (and the relay's retention job)
/// asks of an outbox, beside the dispatcher's OutboxStore. A store may
/// implement it besides OutboxStore; the relay uses it when the store has it
/// (see "How this interface grows" in <dispatch/outbox_store.h>). Standard
/// library only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/outbox_store.h"

namespace dispatch {

/// An operator command's argument is unusable (an empty selection, an id
/// that is not a parked row, a negative age). what() names the argument, the
/// value and what is allowed; the command changed nothing.
class AdminArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The outbox at a glance (OutboxAdmin::Status). Cheap on a table of
/// millions of rows: no count walks the published rows.
struct OutboxStatus {
  std::int64_t pending = 0;  ///< exact: rows waiting to be published
  std::int64_t parked = 0;   ///< exact: rows waiting for an operator
  /// Rows kept in state published. An estimate from the database's
  /// statistics when published_is_estimate is true (PostgreSQL), exact
  /// otherwise.
  std::int64_t published = 0;
  bool published_is_estimate = false;  ///< whether `published` is an estimate
  /// The creation time of the oldest pending row; nullopt when none is.
  std::optional<std::chrono::system_clock::time_point> oldest_pending;
};

/// One parked row as an operator sees it (OutboxAdmin::Parked).
struct ParkedRow {
  std::int64_t id = 0;     ///< the row's id
  std::string key;         ///< its Kafka key
  std::string topic;       ///< its Kafka topic
  int attempts = 0;        ///< failed publishes, the last of them the one that parked it
  std::string last_error;  ///< that publish's Result::message
  /// When it was parked; nullopt for a row parked by a relay that did not
  /// record it (before migration 004).
  std::optional<std::chrono::system_clock::time_point> parked_at;
  std::chrono::system_clock::time_point created_at;  ///< when the service wrote it
};

/// Which parked rows to requeue (OutboxAdmin::Requeue): the rows `ids`, or,
/// when ids is empty, every parked row of `topic`. Exactly one of the two
/// must be given.
struct RequeueRequest {
  std::vector<std::int64_t> ids;  ///< the parked rows to requeue
  std::string topic;              ///< or, with no ids, every parked row of this topic
  /// A parked row was skipped and its key went on, so when later rows of
  /// its key were already published the requeued row reaches Kafka after
  /// them. Without this flag such a request changes nothing and names the
  /// rows (RequeueResult::out_of_order).
  bool allow_out_of_order = false;
};

/// What Requeue did.
struct RequeueResult {
  /// Rows made pending again with attempts 0, in id order. Empty when the
  /// request needed allow_out_of_order and did not have it.
  std::vector<std::int64_t> requeued;
  /// Selected rows whose key has a later row already published: they reach
  /// Kafka after it.
  std::vector<std::int64_t> out_of_order;
};

/// Operator commands over one outbox. One object per thread, like
/// OutboxStore; every call is its own transaction. Throws StoreError when
/// the database fails, AdminArgumentError for a bad argument; either way
/// nothing changed.
///
/// The contract (the suite of <dispatch/testing/outbox_admin_contract.h>
/// proves it for a store):
/// - Status, Parked and the retention delete never change a pending or a
///   parked row, and never block a claim for longer than one batch.
/// - Requeue changes only parked rows: state pending, attempts 0, no retry
///   time, last_error kept; the key's order among pending rows is the ids'
///   order, as for any pending row.
/// - PurgeParked deletes only parked rows; DeletePublished only published
///   rows.
class OutboxAdmin {
 public:
  virtual ~OutboxAdmin() = default;

  /// Rows per state and the oldest pending row's age.
  virtual OutboxStatus Status() = 0;

  /// Up to `limit` parked rows with id greater than `after_id`, ascending;
  /// of one topic when `topic` is not empty.
  virtual std::vector<ParkedRow> Parked(std::size_t limit, const std::string& topic = "",
                                        std::int64_t after_id = 0) = 0;

  /// Makes parked rows pending again (see RequeueRequest). Throws
  /// AdminArgumentError, changing nothing, when neither ids nor a topic is
  /// given, when both are, or when an id is not a parked row (the message
  /// lists them). A topic with no parked row requeues nothing.
  virtual RequeueResult Requeue(const RequeueRequest& request) = 0;

  /// Deletes the parked rows parked before `parked_before` (a row without a
  /// parked time counts from its creation time), in batches of at most
  /// `batch` rows a transaction. Returns how many it deleted.
  virtual std::int64_t PurgeParked(std::chrono::system_clock::time_point parked_before,
                                   std::size_t batch = 5000) = 0;

  /// Retention: deletes at most `batch` published rows published before
  /// `published_before`, in one short transaction, and returns how many.
  /// Returns 0 at once, deleting nothing, while another process runs a
  /// retention batch on the same outbox (one relay at a time). The caller
  /// repeats it while it returns `batch`.
  virtual std::int64_t DeletePublished(std::chrono::system_clock::time_point published_before,
                                       std::size_t batch = 5000) = 0;
};

}  // namespace dispatch
