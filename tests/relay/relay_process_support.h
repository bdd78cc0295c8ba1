// Running the built dispatch-relay as a child process (tests/postgres's
// ChildProcess), for the tests that treat it as an operator would.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace dispatch::relay::test {

struct Finished {
  int exit_code = -1;  // -1: it did not exit normally
  std::string output;  // its stdout and stderr, interleaved
};

// Runs dispatch-relay with `args` and `env` ("NAME=value") to its end;
// kills it after `timeout`.
Finished RunRelay(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                  std::chrono::seconds timeout = std::chrono::seconds(60));

// A config file's [http] section that lets the relay's listener take any
// free loopback port: ctest runs several relays at once, and the default
// port would let only one of them start.
inline const std::string kAnyHttpPort = "[http]\nlisten = \"127.0.0.1:0\"\n";

// Writes `content` to a fresh file under the test's temporary directory.
std::string WriteTempFile(const std::string& name, const std::string& content);

// A libpq key/value connection string split into the string without its
// password and the password.
std::pair<std::string, std::string> SplitPassword(const std::string& conninfo);

}  // namespace dispatch::relay::test
