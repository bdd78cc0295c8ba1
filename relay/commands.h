// The operator commands of dispatch-relay (status, parked, requeue, purge)
// over dispatch::OutboxAdmin, apart from main() so that a test drives them
// with a fake admin. Each parses its own arguments (after `--config FILE`),
// writes what it did to `out` and what went wrong to `err`, and returns the
// process's exit code (main.cpp lists them).
#pragma once

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "dispatch/outbox_admin.h"

namespace dispatch::relay {

// Exit codes of dispatch-relay (also in --help).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;    // the store or Kafka unusable, a store error
inline constexpr int kExitUsage = 2;      // bad configuration, command line or argument
inline constexpr int kExitNeedsFlag = 3;  // requeue: rows would go out of order, nothing changed

struct CommandContext {
  std::ostream& out;
  std::ostream& err;
  // The wall clock (purge's age and status's lag); tests fix it.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// The command's arguments are checked before `admin` is made, so that a bad
// one changes nothing and needs no database: Prepare returns kExitOk or
// kExitUsage (having written why).
struct Command {
  std::string name;               // "status", "parked", "requeue", "purge"
  std::vector<std::string> args;  // after the subcommand, without --config FILE
};
int CheckArguments(const Command& command, CommandContext& ctx);
int RunCommand(const Command& command, OutboxAdmin& admin, CommandContext& ctx);

// Usage lines of the commands, for --help.
const char* CommandsUsage();

}  // namespace dispatch::relay
