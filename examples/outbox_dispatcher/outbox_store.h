// A transactional outbox in SQLite: the table a service writes in the same
// transaction as its business data, and the queries a dispatcher runs on it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/publisher.h"

struct sqlite3;

namespace outbox {

// A store operation failed; what() says which and why.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class State { kPending, kPublished, kParked };

struct Row {
  std::int64_t id = 0;
  std::string aggregate_id;  // the Kafka key: rows of one aggregate stay in order
  std::string topic;
  std::string payload;
  std::vector<dispatch::Header> headers;
  int attempts = 0;
};

struct Counts {
  std::int64_t pending = 0;
  std::int64_t published = 0;
  std::int64_t parked = 0;
};

// One failed publish, to be recorded.
struct Failure {
  std::int64_t id;
  std::string error;
  bool park;  // move the row to the dead-letter state instead of retrying it
};

class Store {
 public:
  // Opens (creating if needed) the database at `path` (":memory:" for a
  // private in-memory one) and creates the schema. Throws StoreError when the
  // file cannot be opened or another process holds a write lock on it.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends rows in one transaction (ids are assigned in order), as the
  // service would in its business transaction.
  void Append(const std::vector<Row>& rows);

  // Up to `limit` pending rows, oldest first.
  std::vector<Row> FetchPending(std::size_t limit);

  // In one transaction: marks `published` rows published and records each
  // failure (attempts + 1, last error, parked when permanent).
  void Record(const std::vector<std::int64_t>& published, const std::vector<Failure>& failures);

  Counts Count();

  // Row ids in the given state, ascending; of one topic when `topic` is set.
  std::vector<std::int64_t> Ids(State state, const std::string& topic = "");

 private:
  void Exec(const char* sql);
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Headers as stored in the BLOB column: per header, 4-byte little-endian key
// length, key, 4-byte value length, value.
std::string EncodeHeaders(const std::vector<dispatch::Header>& headers);
std::vector<dispatch::Header> DecodeHeaders(const std::string& blob);

}  // namespace outbox
