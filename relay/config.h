// RelayConfig: what dispatch-relay reads from its TOML file, after the
// environment's overrides. config.cpp parses and validates it (toml++),
// config_fields.cpp holds the table of keys, config_describe.cpp prints it.
//
// Every key `key` of section `[section]` can be overridden by the
// environment variable DISPATCH_RELAY_<SECTION>_<KEY> (upper case, dots and
// dashes as underscores; lists comma-separated), and the environment wins.
// Secrets (store.password, kafka.sasl_password, kafka.tls_key_password and
// secret librdkafka properties) come only from the environment or from a
// `*_file` key: written inline in the file they are refused, and they never
// appear in an error or in Describe()'s output.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/dispatcher.h"
#include "dispatch/kafka/config.h"
#include "dispatch/stores/postgres_store.h"

namespace dispatch::relay {

enum class StoreKind { kPostgres, kSqlite };

struct StoreConfig {
  StoreKind kind = StoreKind::kPostgres;
  // PostgreSQL: a libpq connection string without a password.
  std::string conninfo;
  // The password, from DISPATCH_RELAY_STORE_PASSWORD or password_file;
  // empty: libpq's own sources (PGPASSWORD, ~/.pgpass).
  std::string password;
  std::string password_file;
  std::string table = "outbox";
  PostgresStoreOptions postgres;  // claim_idle_timeout, listen, published_rows, ...
  // SQLite: the database file.
  std::string path;
};

// [kafka]: the KafkaConfig fields plus TLS and SASL, which Kafka() maps onto
// librdkafka properties.
struct KafkaSection {
  kafka::KafkaConfig config;      // brokers, client_id, acks, timeouts, partitioner, properties
  std::string security_protocol;  // empty: derived from the TLS and SASL keys
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_key_password;  // secret
  std::string tls_key_password_file;
  std::string sasl_mechanism;
  std::string sasl_username;
  std::string sasl_password;  // secret
  std::string sasl_password_file;
};

struct RetentionConfig {
  bool enabled = false;
  std::chrono::milliseconds published_age = std::chrono::hours(24 * 7);
  std::size_t batch = 5000;
  std::chrono::milliseconds interval = std::chrono::minutes(1);
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9464";
  // /readyz reports unready while the outbox lag is above this.
  std::chrono::milliseconds max_lag = std::chrono::minutes(1);
};

struct RelayConfig {
  StoreConfig store;
  KafkaSection kafka;
  DispatcherOptions dispatcher;
  RetentionConfig retention;
  HttpConfig http;

  // The publisher's configuration: kafka.config plus the TLS and SASL keys as
  // librdkafka properties (security.protocol, ssl.*, sasl.*).
  kafka::KafkaConfig Kafka() const;
};

// One bad value: where it is, what it was (never a secret: "<redacted>"),
// what is allowed.
struct ConfigProblem {
  std::string field;  // "kafka.required_acks", "kafka.properties[linger.ms]"
  std::string value;  // as given, quoted; "" when the key is missing
  std::string allowed;
  std::string origin;  // "config.toml:12:3" or "DISPATCH_RELAY_KAFKA_BROKERS"
};

std::string ToString(const ConfigProblem& problem);

// Every problem LoadConfig found; what() lists them one a line.
class RelayConfigError : public std::runtime_error {
 public:
  explicit RelayConfigError(std::vector<ConfigProblem> problems);
  const std::vector<ConfigProblem>& problems() const { return problems_; }

 private:
  std::vector<ConfigProblem> problems_;
};

// Reads one environment variable; nullopt when unset. Tests pass a map.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;
Environment ProcessEnvironment();
Environment MapEnvironment(std::map<std::string, std::string> variables);

// Parses `path` (TOML), applies the environment, reads the secret files and
// validates everything, the Kafka side with the library's own checks too.
// Throws RelayConfigError with every problem found.
RelayConfig LoadConfig(const std::string& path, const Environment& env);
// The same from TOML text; `origin` names it in messages.
RelayConfig ParseConfig(const std::string& toml_text, const std::string& origin,
                        const Environment& env);

// The effective configuration as TOML, secrets shown as "<redacted>", then
// the librdkafka properties it maps to.
std::string Describe(const RelayConfig& config);

// "10s", "250ms", "5m", "1h30m", "7d", "0". nullopt when malformed.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);
std::string FormatDuration(std::chrono::milliseconds value);

}  // namespace dispatch::relay
