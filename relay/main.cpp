// dispatch-relay: relays a transactional outbox (PostgreSQL, or SQLite for
// one process) to Kafka, from a TOML configuration file.
//
//   dispatch-relay --config FILE          run until SIGTERM or SIGINT
//   dispatch-relay --check-config FILE    print the effective configuration
//   dispatch-relay status|parked|requeue|purge --config FILE [args]
//
// Every key can be overridden by DISPATCH_RELAY_<SECTION>_<KEY>; secrets come
// from the environment or from files, never from the command line
// (relay/config.h, relay/dispatch-relay.example.toml).
//
// Exit codes:
//   0  stopped by SIGTERM/SIGINT after the round in flight, or the command
//      or --check-config succeeded
//   1  runtime failure: the store or Kafka unusable at start, a store error
//      in a command
//   2  bad configuration, command line or command argument (nothing changed)
//   3  requeue refused: the rows would reach Kafka after later rows of their
//      key; nothing changed (give --allow-out-of-order)
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"
#include "relay/commands.h"
#include "relay/config.h"
#include "relay/relay.h"
#include "relay/store_factory.h"

namespace {

using namespace dispatch::relay;

void PrintHelp() {
  std::printf(
      "usage:\n"
      "  dispatch-relay --config FILE\n"
      "      runs the relay until SIGTERM or SIGINT; the round in flight ends within\n"
      "      dispatcher.publish_timeout, the publisher closes within kafka.close_timeout,\n"
      "      only rows Kafka acknowledged are marked; prints its totals\n"
      "  dispatch-relay --check-config FILE\n"
      "      prints the effective configuration (environment applied, secrets shown as\n"
      "      <redacted>) and exits 0, or prints every bad field and exits 2\n"
      "%s"
      "  dispatch-relay --help\n"
      "\n"
      "Every key of the file can be overridden by DISPATCH_RELAY_<SECTION>_<KEY>\n"
      "(DISPATCH_RELAY_KAFKA_BROKERS=a:9092,b:9092). Secrets only from the environment\n"
      "or from files: DISPATCH_RELAY_STORE_PASSWORD or store.password_file,\n"
      "DISPATCH_RELAY_KAFKA_SASL_PASSWORD or kafka.sasl_password_file,\n"
      "DISPATCH_RELAY_KAFKA_TLS_KEY_PASSWORD or kafka.tls_key_password_file.\n"
      "\n"
      "exit codes:\n"
      "  0  ok (stopped by a signal, command done, configuration valid)\n"
      "  1  runtime failure: store or Kafka unusable at start, store error in a command\n"
      "  2  bad configuration, command line or argument; nothing changed\n"
      "  3  requeue refused: rows would reach Kafka after later rows of their key;\n"
      "     nothing changed (give --allow-out-of-order)\n",
      CommandsUsage());
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "dispatch-relay: %s (dispatch-relay --help)\n", why.c_str());
  return kExitUsage;
}

// The configuration, or every problem printed to `to` and nullopt.
std::optional<RelayConfig> Load(const std::string& path, std::FILE* to) {
  try {
    return LoadConfig(path, ProcessEnvironment());
  } catch (const RelayConfigError& e) {
    std::fprintf(to, "dispatch-relay: %s\n", e.what());
    return std::nullopt;
  }
}

int CheckConfig(const std::string& path) {
  std::optional<RelayConfig> config = Load(path, stdout);
  if (!config) return kExitUsage;
  // librdkafka's own checks (property names and values, certificate files):
  // a producer made and closed at once, before any message.
  try {
    dispatch::kafka::KafkaPublisher probe(config->Kafka());
  } catch (const dispatch::kafka::ConfigError& e) {
    std::printf("dispatch-relay: 1 bad configuration value(s):\n  kafka.%s: %s\n",
                e.field().c_str(), e.what());
    return kExitUsage;
  }
  std::printf("%s", Describe(*config).c_str());
  return kExitOk;
}

int Run(const std::string& path) {
  // SIGTERM and SIGINT are taken by sigwait on this thread, so no other
  // thread is interrupted and the stop is an ordinary stop request. Blocked
  // before any thread starts, so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::optional<RelayConfig> config = Load(path, stderr);
  if (!config) return kExitUsage;
  std::unique_ptr<Relay> relay;
  try {
    relay = std::make_unique<Relay>(std::move(*config));
    relay->Start();
  } catch (const dispatch::kafka::ConfigError& e) {
    std::fprintf(stderr, "dispatch-relay: kafka.%s: %s\n", e.field().c_str(), e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dispatch-relay: cannot start: %s\n", e.what());
    return kExitRuntime;
  }
  std::printf("dispatch-relay: running, pid %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::fprintf(stderr, "dispatch-relay: %s, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  const dispatch::DispatcherMetrics m = relay->Stop();
  const RelaySnapshot s = relay->Snapshot();
  std::printf(
      "dispatch-relay: stopped; rounds %llu published %llu retried %llu parked %llu "
      "store_errors %llu publisher_recreated %llu retention_deleted %llu\n",
      static_cast<unsigned long long>(m.rounds), static_cast<unsigned long long>(m.published),
      static_cast<unsigned long long>(m.retried), static_cast<unsigned long long>(m.parked),
      static_cast<unsigned long long>(m.store_errors),
      static_cast<unsigned long long>(m.publisher_recreated),
      static_cast<unsigned long long>(s.retention.deleted));
  std::fflush(stdout);
  return kExitOk;
}

int RunOperatorCommand(const std::string& name, const std::vector<std::string>& rest) {
  std::string path;
  Command command{name, {}};
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == "--config") {
      if (i + 1 >= rest.size()) return Usage("--config needs a file");
      path = rest[++i];
    } else {
      command.args.push_back(rest[i]);
    }
  }
  if (path.empty()) return Usage(name + " needs --config FILE");
  CommandContext ctx{std::cout, std::cerr};
  if (CheckArguments(command, ctx) != kExitOk) return kExitUsage;
  std::optional<RelayConfig> config = Load(path, stderr);
  if (!config) return kExitUsage;
  std::unique_ptr<dispatch::OutboxAdmin> admin;
  try {
    admin = MakeAdmin(config->store);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dispatch-relay %s: %s\n", name.c_str(), e.what());
    return kExitRuntime;
  }
  return RunCommand(command, *admin, ctx);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("give --config FILE, --check-config FILE or a command");
  const std::string& first = args[0];
  if (first == "--help" || first == "-h") {
    PrintHelp();
    return kExitOk;
  }
  if (first == "status" || first == "parked" || first == "requeue" || first == "purge") {
    return RunOperatorCommand(first, {args.begin() + 1, args.end()});
  }
  if (first == "--check-config" || first == "--config") {
    if (args.size() != 2) return Usage(first + " takes one file and nothing else");
    return first == "--check-config" ? CheckConfig(args[1]) : Run(args[1]);
  }
  return Usage("unknown argument \"" + first + "\"");
}
