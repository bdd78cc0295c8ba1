// Where retention (OutboxAdmin::DeletePublished) reads next: a walk of the
// outbox in id order through the primary key, so that deleting old
// published rows needs no index of its own (an index on published rows
// would cost every marked row an entry). Shared by the stores.
//
// A call reads windows of rows after the cursor and hands back which to
// delete. A pass ends at the first row that is pending or published but not
// older than the cut (the rows after it are younger, or wait behind it), or
// at the table's end; the next pass starts just before that row, so that
// the rows already deleted (whose dead index entries a walk would step
// over until a vacuum) are not walked again. Every kFullPassEvery-th pass
// starts from the table's start, for the rows that left the pending set
// behind the walk: a row committed late with a lower id, a requeued one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dispatch::admin {

// One row of a window, as the store read it.
struct WalkedRow {
  std::int64_t id = 0;
  enum Kind { kDelete, kSkip, kStop } kind = kStop;  // kSkip: parked rows
};

class RetentionWalk {
 public:
  static constexpr int kFullPassEvery = 16;

  // Where the next window starts (ids greater than this).
  std::int64_t Cursor() {
    if (!in_pass_) {
      cursor_ = passes_ % kFullPassEvery == 0 ? 0 : next_pass_;
      in_pass_ = true;
      ++passes_;
    }
    return cursor_;
  }

  // Takes a window read from Cursor() (ascending ids, up to `asked` rows):
  // appends the ids to delete to `doomed` and returns whether the pass goes
  // on after it.
  bool Take(const std::vector<WalkedRow>& rows, std::size_t asked,
            std::vector<std::int64_t>& doomed) {
    for (const WalkedRow& row : rows) {
      if (row.kind == WalkedRow::kStop) {
        EndPass(row.id - 1);
        return false;
      }
      if (row.kind == WalkedRow::kDelete) doomed.push_back(row.id);
      cursor_ = row.id;
    }
    if (rows.size() < asked) {
      EndPass(cursor_);
      return false;
    }
    return true;
  }

  // After a failed transaction: the next call starts a full pass, so that
  // no row the failed one meant to delete is passed over.
  void Reset() { *this = RetentionWalk(); }

 private:
  void EndPass(std::int64_t next) {
    next_pass_ = next;
    in_pass_ = false;
  }
  std::int64_t cursor_ = 0;
  std::int64_t next_pass_ = 0;
  int passes_ = 0;
  bool in_pass_ = false;
};

}  // namespace dispatch::admin
