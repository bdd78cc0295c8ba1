// A dispatcher stand-in for the several-dispatchers tests, run in threads
// and in separate processes (postgres_claimer): it claims rows, "publishes"
// them by logging them to a table, and finishes. Bookkeeping tables in the
// same database let the test check the guarantees afterwards:
//   held_keys      a key is in it while one claim holds it: a second insert
//                  of the same key means two claims held it at once;
//   published_log  every published row in publication order (seq).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dispatch::test {

// Creates held_keys and published_log; also applies the outbox migration.
void CreateBookkeeping(const std::string& conninfo);

struct DrainReport {
  std::int64_t published = 0;  // rows this worker published
  std::int64_t overlaps = 0;   // claims that found one of their keys held elsewhere
};

// Claims up to `batch` rows at a time until nothing is pending. Within a
// claim, each key's rows go in order; about one row in `fail_one_in` fails
// retriably (due again at once), which defers the rest of its key to a
// later claim, as the Dispatcher does. Throws what the store throws.
DrainReport DrainOutbox(const std::string& conninfo, std::size_t batch, int fail_one_in);

// Appends `rows` rows spread over `keys` keys, the workers' workload.
void AppendRowsOfKeys(const std::string& conninfo, int rows, int keys);

// What is wrong with the publications once the workers are done: rows not
// marked published, rows logged other than once, rows of a key logged after
// a row of that key with a larger id. Empty when nothing is.
std::string PublicationProblems(const std::string& conninfo, int rows);

}  // namespace dispatch::test
