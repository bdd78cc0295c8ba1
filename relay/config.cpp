#include "relay/config.h"

#include <toml++/toml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "relay/config_loader.h"

namespace dispatch::relay {
namespace {

using internal::ConfigLoader;

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// A password in a connection string: the keyword, or a URI's "user:password@".
bool HoldsPassword(const std::string& conninfo) {
  if (conninfo.find("password") != std::string::npos) return true;
  const auto scheme = conninfo.find("://");
  if (scheme == std::string::npos) return false;
  const std::string rest = conninfo.substr(scheme + 3);
  const std::string authority = rest.substr(0, rest.find_first_of("/?"));
  const auto at = authority.rfind('@');
  return at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos;
}

void LoadStore(ConfigLoader& in, StoreConfig& store) {
  std::string kind = "postgres";
  in.Choice("store", "kind", {"postgres", "sqlite"}, kind);
  store.kind = kind == "sqlite" ? StoreKind::kSqlite : StoreKind::kPostgres;
  in.String("store", "conninfo", store.conninfo);
  in.Secret("store", "password", store.password, store.password_file);
  in.String("store", "table", store.table);
  in.Duration("store", "claim_idle_timeout", store.postgres.claim_idle_timeout);
  in.Bool("store", "listen", store.postgres.listen);
  std::string published = "mark";
  in.Choice("store", "published_rows", {"mark", "delete"}, published);
  store.postgres.published_rows =
      published == "delete" ? PublishedRows::kDelete : PublishedRows::kMark;
  in.Bool("store", "prepare_statements", store.postgres.prepare_statements);
  in.Bool("store", "migrate", store.postgres.migrate);
  in.String("store", "path", store.path);

  if (store.kind == StoreKind::kPostgres) {
    if (store.conninfo.empty()) {
      in.Problem("store.conninfo", in.ValueOf("store", "conninfo"),
                 "a libpq connection string (\"host=... dbname=...\" or postgresql://...), "
                 "required when store.kind is \"postgres\"",
                 in.OriginOf("store", "conninfo"));
    } else if (HoldsPassword(store.conninfo)) {
      // The value is not shown: it holds a password.
      in.Problem("store.conninfo", "<redacted>",
                 "a connection string without a password: set DISPATCH_RELAY_STORE_PASSWORD or "
                 "store.password_file",
                 in.OriginOf("store", "conninfo"));
    }
  } else if (store.path.empty()) {
    in.Problem("store.path", in.ValueOf("store", "path"),
               "the SQLite database file, required when store.kind is \"sqlite\"",
               in.OriginOf("store", "path"));
  }
  // SQLite's store knows its table by this name only; PostgreSQL's takes
  // any name its rule allows (PostgresStoreOptions::table).
  if (store.kind == StoreKind::kSqlite && store.table != "outbox") {
    in.Problem("store.table", Quote(store.table),
               "\"outbox\" when store.kind is \"sqlite\" (the SQLite store has no other table "
               "name)",
               in.OriginOf("store", "table"));
  } else if (const std::string error = PostgresTableNameError(store.table); !error.empty()) {
    in.Problem("store.table", Quote(store.table), error, in.OriginOf("store", "table"));
  }
  store.postgres.table = store.table;
  if (store.postgres.claim_idle_timeout.count() < 0) {
    in.Problem("store.claim_idle_timeout", in.ValueOf("store", "claim_idle_timeout"),
               "a duration of 0 (the server's setting) or more",
               in.OriginOf("store", "claim_idle_timeout"));
  }
}

void LoadKafka(ConfigLoader& in, KafkaSection& k) {
  kafka::KafkaConfig& c = k.config;
  in.StringList("kafka", "brokers", c.brokers);
  in.String("kafka", "client_id", c.client_id);
  std::string acks = "all";
  in.Choice("kafka", "required_acks", {"all", "leader", "none"}, acks);
  c.required_acks = acks == "none"     ? kafka::RequiredAcks::None
                    : acks == "leader" ? kafka::RequiredAcks::Leader
                                       : kafka::RequiredAcks::All;
  in.Duration("kafka", "write_timeout", c.write_timeout);
  in.Duration("kafka", "close_timeout", c.close_timeout);
  std::string partitioner = "murmur2_random";
  in.Choice(
      "kafka", "partitioner",
      {"murmur2_random", "murmur2", "consistent_random", "consistent", "fnv1a_random", "random"},
      partitioner);
  using P = kafka::Partitioner;
  c.partitioner = partitioner == "murmur2"             ? P::kMurmur2
                  : partitioner == "consistent_random" ? P::kConsistentRandom
                  : partitioner == "consistent"        ? P::kConsistent
                  : partitioner == "fnv1a_random"      ? P::kFnv1aRandom
                  : partitioner == "random"            ? P::kRandom
                                                       : P::kMurmur2Random;
  in.Choice("kafka", "security_protocol", {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"},
            k.security_protocol, true);
  in.String("kafka", "tls_ca_file", k.tls_ca_file);
  in.String("kafka", "tls_cert_file", k.tls_cert_file);
  in.String("kafka", "tls_key_file", k.tls_key_file);
  in.Secret("kafka", "tls_key_password", k.tls_key_password, k.tls_key_password_file);
  in.Choice("kafka", "sasl_mechanism",
            {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"}, k.sasl_mechanism,
            true);
  in.String("kafka", "sasl_username", k.sasl_username);
  in.Secret("kafka", "sasl_password", k.sasl_password, k.sasl_password_file);
  in.Properties("kafka.properties", c.properties);

  const auto need = [&](bool ok, const std::string& key, const std::string& allowed) {
    if (!ok)
      in.Problem("kafka." + key, in.ValueOf("kafka", key), allowed, in.OriginOf("kafka", key));
  };
  need(!c.brokers.empty(), "brokers", "at least one \"host:port\"");
  need(c.write_timeout.count() >= 0, "write_timeout", "a duration of 0 (none) or more");
  need(c.close_timeout.count() >= 0, "close_timeout", "a duration of 0 (purge at once) or more");
  need(k.tls_cert_file.empty() == k.tls_key_file.empty(), "tls_key_file",
       "set together with kafka.tls_cert_file (a client certificate and its key), or neither");
  const bool user_pass = k.sasl_mechanism == "PLAIN" || k.sasl_mechanism.starts_with("SCRAM");
  need(!user_pass || !k.sasl_username.empty(), "sasl_username",
       "a user name, required by sasl_mechanism " + Quote(k.sasl_mechanism));
  if (user_pass && k.sasl_password.empty()) {
    in.Problem("kafka.sasl_password", "",
               "a password for sasl_mechanism " + Quote(k.sasl_mechanism) +
                   ": set DISPATCH_RELAY_KAFKA_SASL_PASSWORD or kafka.sasl_password_file",
               in.OriginOf("kafka", "sasl_mechanism"));
  }
  for (const char* file : {"tls_ca_file", "tls_cert_file", "tls_key_file"}) {
    std::string path;
    in.String("kafka", file, path);
    need(path.empty() || std::ifstream(path).good(), file, "a readable file");
  }
}

void LoadDispatcher(ConfigLoader& in, DispatcherOptions& d) {
  in.Size("dispatcher", "batch_size", d.batch_size, 1, 1000000);
  in.Duration("dispatcher", "publish_timeout", d.publish_timeout);
  in.Duration("dispatcher", "retry_base", d.retry_base);
  in.Duration("dispatcher", "retry_cap", d.retry_cap);
  in.Duration("dispatcher", "poll_min", d.poll_min);
  in.Duration("dispatcher", "poll_max", d.poll_max);
  in.Duration("dispatcher", "wake_coalesce", d.wake_coalesce);
  in.String("dispatcher", "id_header", d.id_header);
  const auto need = [&](bool ok, const std::string& key, const std::string& allowed) {
    if (!ok) {
      in.Problem("dispatcher." + key, in.ValueOf("dispatcher", key), allowed,
                 in.OriginOf("dispatcher", key));
    }
  };
  const char* kPositive = "a positive duration";
  need(d.publish_timeout.count() > 0, "publish_timeout", kPositive);
  need(d.retry_base.count() > 0, "retry_base", kPositive);
  need(d.retry_cap.count() > 0, "retry_cap", kPositive);
  need(d.retry_base <= d.retry_cap, "retry_base",
       "at most dispatcher.retry_cap (" + FormatDuration(d.retry_cap) + ")");
  need(d.poll_min.count() > 0, "poll_min", kPositive);
  need(d.poll_max.count() > 0, "poll_max", kPositive);
  need(d.poll_min <= d.poll_max, "poll_min",
       "at most dispatcher.poll_max (" + FormatDuration(d.poll_max) + ")");
  need(d.wake_coalesce.count() > 0 && d.wake_coalesce <= d.poll_max, "wake_coalesce",
       "a positive duration, at most dispatcher.poll_max (" + FormatDuration(d.poll_max) + ")");
  need(!d.id_header.empty(), "id_header", "a header name, not empty");
}

void LoadRetention(ConfigLoader& in, RetentionConfig& r) {
  in.Bool("retention", "enabled", r.enabled);
  in.Duration("retention", "published_age", r.published_age);
  in.Size("retention", "batch", r.batch, 1, 100000);
  in.Duration("retention", "interval", r.interval);
  if (r.published_age.count() <= 0) {
    in.Problem("retention.published_age", in.ValueOf("retention", "published_age"),
               "a positive duration", in.OriginOf("retention", "published_age"));
  }
  if (r.interval.count() <= 0) {
    in.Problem("retention.interval", in.ValueOf("retention", "interval"), "a positive duration",
               in.OriginOf("retention", "interval"));
  }
}

bool ValidListen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return false;
  const std::string port = listen.substr(colon + 1);
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return port.size() <= 5 && std::stoi(port) <= 65535;
}

void LoadHttp(ConfigLoader& in, HttpConfig& h) {
  in.String("http", "listen", h.listen);
  in.Duration("http", "max_lag", h.max_lag);
  if (!ValidListen(h.listen)) {
    in.Problem("http.listen", in.ValueOf("http", "listen"),
               "\"host:port\" (\"127.0.0.1:9464\", \"[::1]:9464\", \"0.0.0.0:9464\"), port "
               "0 to 65535",
               in.OriginOf("http", "listen"));
  }
  if (h.max_lag.count() <= 0) {
    in.Problem("http.max_lag", in.ValueOf("http", "max_lag"), "a positive duration",
               in.OriginOf("http", "max_lag"));
  }
}

// The library's own checks of the publisher's configuration (broker syntax,
// owned properties, idempotence against acks), each property on its own so
// that every bad one is named.
void CheckKafkaWithLibrary(ConfigLoader& in, const RelayConfig& config) {
  const auto report = [&](const kafka::ConfigError& e) {
    const std::string field = "kafka." + e.field();
    // what() never holds a secret value (the library redacts them).
    in.Problem(field, "", e.what(), in.OriginOf("kafka", e.field().substr(0, e.field().find('['))));
  };
  kafka::KafkaConfig base = config.Kafka();
  const auto properties = base.properties;
  base.properties.clear();
  try {
    (void)kafka::EffectiveProperties(base);
  } catch (const kafka::ConfigError& e) {
    report(e);
    return;
  }
  for (const auto& [name, value] : properties) {
    kafka::KafkaConfig one = base;
    one.properties = {{name, value}};
    try {
      (void)kafka::EffectiveProperties(one);
    } catch (const kafka::ConfigError& e) {
      report(e);
    }
  }
  // Properties the relay's own keys set must not be set again in the table.
  for (const auto& [name, owner] :
       std::map<std::string, std::string>{{"security.protocol", "security_protocol"},
                                          {"ssl.ca.location", "tls_ca_file"},
                                          {"ssl.certificate.location", "tls_cert_file"},
                                          {"ssl.key.location", "tls_key_file"},
                                          {"ssl.key.password", "tls_key_password"},
                                          {"sasl.mechanisms", "sasl_mechanism"},
                                          {"sasl.mechanism", "sasl_mechanism"},
                                          {"sasl.username", "sasl_username"},
                                          {"sasl.password", "sasl_password"}}) {
    if (config.kafka.config.properties.count(name) != 0) {
      in.Problem("kafka.properties[" + name + "]", "",
                 "not set here: the relay sets it from kafka." + owner,
                 in.OriginOf("kafka", "properties"));
    }
  }
}

}  // namespace

kafka::KafkaConfig RelayConfig::Kafka() const {
  kafka::KafkaConfig c = kafka.config;
  const KafkaSection& k = kafka;
  std::string protocol = k.security_protocol;
  if (protocol.empty()) {
    const bool tls = !k.tls_ca_file.empty() || !k.tls_cert_file.empty();
    const bool sasl = !k.sasl_mechanism.empty();
    protocol = sasl ? (tls ? "sasl_ssl" : "sasl_plaintext") : (tls ? "ssl" : "");
  }
  const auto set = [&](const char* name, const std::string& value) {
    if (!value.empty()) c.properties[name] = value;
  };
  set("security.protocol", protocol);
  set("ssl.ca.location", k.tls_ca_file);
  set("ssl.certificate.location", k.tls_cert_file);
  set("ssl.key.location", k.tls_key_file);
  set("ssl.key.password", k.tls_key_password);
  set("sasl.mechanisms", k.sasl_mechanism);
  set("sasl.username", k.sasl_username);
  set("sasl.password", k.sasl_password);
  return c;
}

std::string ToString(const ConfigProblem& p) {
  std::string out = p.field;
  if (!p.value.empty()) out += " = " + p.value;
  out += ": expected " + p.allowed;
  if (!p.origin.empty()) out += " (" + p.origin + ")";
  return out;
}

namespace {
std::string JoinProblems(const std::vector<ConfigProblem>& problems) {
  std::string out = std::to_string(problems.size()) + " bad configuration value(s):";
  for (const ConfigProblem& p : problems) out += "\n  " + ToString(p);
  return out;
}
}  // namespace

RelayConfigError::RelayConfigError(std::vector<ConfigProblem> problems)
    : std::runtime_error(JoinProblems(problems)), problems_(std::move(problems)) {}

Environment ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Environment MapEnvironment(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](const std::string& name) -> std::optional<std::string> {
    const auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

RelayConfig ParseConfig(const std::string& toml_text, const std::string& origin,
                        const Environment& env) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw RelayConfigError(
        {{"(file)", "", "valid TOML: " + std::string(e.description()),
          origin + ":" + std::to_string(where.line) + ":" + std::to_string(where.column)}});
  }
  ConfigLoader in(root, origin, env);
  RelayConfig config;
  LoadStore(in, config.store);
  LoadKafka(in, config.kafka);
  LoadDispatcher(in, config.dispatcher);
  LoadRetention(in, config.retention);
  LoadHttp(in, config.http);
  in.RejectUnknown({"store", "kafka", "dispatcher", "retention", "http"});
  bool kafka_ok = true;
  for (const ConfigProblem& p : in.problems()) kafka_ok = kafka_ok && !p.field.starts_with("kafka");
  if (kafka_ok) CheckKafkaWithLibrary(in, config);
  if (!in.problems().empty()) throw RelayConfigError(std::move(in.problems()));
  return config;
}

RelayConfig LoadConfig(const std::string& path, const Environment& env) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw RelayConfigError({{"--config", Quote(path), "a readable TOML file", ""}});
  }
  std::ostringstream text;
  text << file.rdbuf();
  return ParseConfig(text.str(), path, env);
}

}  // namespace dispatch::relay
