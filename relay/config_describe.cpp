// Describe(): the effective configuration as an operator reads it
// (--check-config), and the duration syntax both ways.
#include <cctype>
#include <sstream>
#include <string>

#include "relay/config.h"

namespace dispatch::relay {
namespace {

constexpr const char* kRedacted = "<redacted>";

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Secret(const std::string& value) { return value.empty() ? "\"\"" : Quote(kRedacted); }

std::string Bool(bool b) { return b ? "true" : "false"; }

std::string Duration(std::chrono::milliseconds d) { return Quote(FormatDuration(d)); }

const char* AcksName(kafka::RequiredAcks acks) {
  switch (acks) {
    case kafka::RequiredAcks::None: return "none";
    case kafka::RequiredAcks::Leader: return "leader";
    case kafka::RequiredAcks::All: return "all";
  }
  return "all";
}

const char* PartitionerName(kafka::Partitioner p) {
  using P = kafka::Partitioner;
  switch (p) {
    case P::kMurmur2Random: return "murmur2_random";
    case P::kMurmur2: return "murmur2";
    case P::kConsistentRandom: return "consistent_random";
    case P::kConsistent: return "consistent";
    case P::kFnv1aRandom: return "fnv1a_random";
    case P::kRandom: return "random";
  }
  return "murmur2_random";
}

bool IsSecretName(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return n.find("password") != std::string::npos || n.find("secret") != std::string::npos ||
         n == "ssl.key.pem" || n == "sasl.oauthbearer.config";
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  if (text == "0") return std::chrono::milliseconds(0);
  if (text.empty()) return std::nullopt;
  long long total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    long long number = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      number = number * 10 + (text[i++] - '0');
      if (number > 1'000'000'000'000LL) return std::nullopt;
    }
    std::string unit;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) unit += text[i++];
    long long scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else
      return std::nullopt;
    total += number * scale;
    if (total > 100LL * 365 * 86'400'000) return std::nullopt;  // a century
  }
  return std::chrono::milliseconds(total);
}

std::string FormatDuration(std::chrono::milliseconds value) {
  long long ms = value.count();
  if (ms == 0) return "0s";
  std::string out = ms < 0 ? "-" : "";
  if (ms < 0) ms = -ms;
  for (const auto& [scale, unit] : {std::pair<long long, const char*>{86'400'000, "d"},
                                    {3'600'000, "h"},
                                    {60'000, "m"},
                                    {1000, "s"},
                                    {1, "ms"}}) {
    if (ms >= scale) {
      out += std::to_string(ms / scale) + unit;
      ms %= scale;
    }
  }
  return out;
}

std::string Describe(const RelayConfig& config) {
  std::ostringstream out;
  const StoreConfig& s = config.store;
  out << "[store]\n"
      << "kind = " << Quote(s.kind == StoreKind::kSqlite ? "sqlite" : "postgres") << "\n";
  if (s.kind == StoreKind::kPostgres) {
    out << "conninfo = " << Quote(s.conninfo) << "\n"
        << "password = " << Secret(s.password) << "\n"
        << "password_file = " << Quote(s.password_file) << "\n"
        << "table = " << Quote(s.table) << "\n"
        << "claim_idle_timeout = " << Duration(s.postgres.claim_idle_timeout) << "\n"
        << "listen = " << Bool(s.postgres.listen) << "\n"
        << "published_rows = "
        << Quote(s.postgres.published_rows == PublishedRows::kDelete ? "delete" : "mark") << "\n"
        << "prepare_statements = " << Bool(s.postgres.prepare_statements) << "\n"
        << "migrate = " << Bool(s.postgres.migrate) << "\n";
  } else {
    out << "path = " << Quote(s.path) << "\n"
        << "table = " << Quote(s.table) << "\n";
  }

  const KafkaSection& k = config.kafka;
  out << "\n[kafka]\nbrokers = [";
  for (std::size_t i = 0; i < k.config.brokers.size(); ++i) {
    out << (i ? ", " : "") << Quote(k.config.brokers[i]);
  }
  out << "]\n"
      << "client_id = " << Quote(k.config.client_id) << "\n"
      << "required_acks = " << Quote(AcksName(k.config.required_acks)) << "\n"
      << "write_timeout = " << Duration(k.config.write_timeout) << "\n"
      << "close_timeout = " << Duration(k.config.close_timeout) << "\n"
      << "partitioner = " << Quote(PartitionerName(k.config.partitioner)) << "\n"
      << "security_protocol = " << Quote(k.security_protocol) << "\n"
      << "tls_ca_file = " << Quote(k.tls_ca_file) << "\n"
      << "tls_cert_file = " << Quote(k.tls_cert_file) << "\n"
      << "tls_key_file = " << Quote(k.tls_key_file) << "\n"
      << "tls_key_password = " << Secret(k.tls_key_password) << "\n"
      << "tls_key_password_file = " << Quote(k.tls_key_password_file) << "\n"
      << "sasl_mechanism = " << Quote(k.sasl_mechanism) << "\n"
      << "sasl_username = " << Quote(k.sasl_username) << "\n"
      << "sasl_password = " << Secret(k.sasl_password) << "\n"
      << "sasl_password_file = " << Quote(k.sasl_password_file) << "\n"
      << "\n[kafka.properties]\n";
  for (const auto& [name, value] : k.config.properties) {
    out << Quote(name) << " = " << (IsSecretName(name) ? Quote(kRedacted) : Quote(value)) << "\n";
  }

  const DispatcherOptions& d = config.dispatcher;
  out << "\n[dispatcher]\n"
      << "batch_size = " << d.batch_size << "\n"
      << "publish_timeout = " << Duration(d.publish_timeout) << "\n"
      << "retry_base = " << Duration(d.retry_base) << "\n"
      << "retry_cap = " << Duration(d.retry_cap) << "\n"
      << "poll_min = " << Duration(d.poll_min) << "\n"
      << "poll_max = " << Duration(d.poll_max) << "\n"
      << "wake_coalesce = " << Duration(d.wake_coalesce) << "\n"
      << "id_header = " << Quote(d.id_header) << "\n";

  const RetentionConfig& r = config.retention;
  out << "\n[retention]\n"
      << "enabled = " << Bool(r.enabled) << "\n"
      << "published_age = " << Duration(r.published_age) << "\n"
      << "batch = " << r.batch << "\n"
      << "interval = " << Duration(r.interval) << "\n";

  out << "\n[http]\n"
      << "listen = " << Quote(config.http.listen) << "\n"
      << "max_lag = " << Duration(config.http.max_lag) << "\n";

  // What the publisher hands librdkafka, secrets redacted by the library.
  out << "\n# librdkafka properties, in the order they are applied:\n";
  try {
    for (const auto& [name, value] : kafka::EffectiveProperties(config.Kafka())) {
      out << "#   " << name << " = "
          << (IsSecretName(name) || value == "[redacted]" ? kRedacted : value) << "\n";
    }
  } catch (const kafka::ConfigError& e) {
    out << "#   (not valid: " << e.what() << ")\n";
  }
  return out.str();
}

}  // namespace dispatch::relay
