// postgres_claimer: a dispatcher process for the several-processes tests.
// The connection string comes in DISPATCH_POSTGRES_CONNINFO (not argv, where
// `ps` would show its password).
//
//   postgres_claimer drain BATCH   drains the outbox (claim_worker.h), then
//                                  prints "published N overlaps M"
//   postgres_claimer hold LIMIT    claims up to LIMIT rows, prints
//                                  "claimed ID...", and holds the claim until
//                                  killed (or stdin closes)
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "dispatch/stores/postgres_store.h"
#include "postgres/claim_worker.h"

int main(int argc, char** argv) {
  const char* conninfo = std::getenv("DISPATCH_POSTGRES_CONNINFO");
  if (argc != 3 || !conninfo) {
    std::cerr << "usage: DISPATCH_POSTGRES_CONNINFO=... postgres_claimer drain|hold N\n";
    return 2;
  }
  const std::string mode = argv[1];
  const auto n = static_cast<std::size_t>(std::stoul(argv[2]));
  try {
    if (mode == "drain") {
      const auto report = dispatch::test::DrainOutbox(conninfo, n, 5);
      std::cout << "published " << report.published << " overlaps " << report.overlaps << std::endl;
      return 0;
    }
    dispatch::PostgresStore store(conninfo);
    std::cout << "claimed";
    for (const auto& row : store.Claim(n, std::chrono::system_clock::now())) {
      std::cout << ' ' << row.id;
    }
    std::cout << std::endl;
    std::string ignored;
    while (std::getline(std::cin, ignored)) {
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "postgres_claimer: " << e.what() << "\n";
    return 1;
  }
}
