// B8's store side (dispatcher_scaling --store-side): what the PostgreSQL
// store costs the database, with no Kafka in the way. See store_side.cpp.
#pragma once

#include <string>
#include <vector>

namespace bench {

struct StoreSideOptions {
  std::string conninfo;  // a role that may create databases
  long rows = 100'000;
  long keys = 2'000;
  std::vector<int> workers = {1, 2, 4};
  int repeat = 3;
  int steady_rate = 500;     // rows/s of the steady part; 0 skips it
  int steady_seconds = 20;   // how long the steady part inserts
  bool analyze = false;      // VACUUM ANALYZE the seeded rows before a drain
  int wake_coalesce_ms = 0;  // DispatcherOptions::wake_coalesce; 0 keeps the default
};

// Runs the drains and the steady part, prints every run and the medians,
// and ends with one JSON line. Returns the process's exit code.
int RunStoreSide(const StoreSideOptions& o);

}  // namespace bench
