// Configuration: validation and the mapping of KafkaConfig onto librdkafka
// properties. Everything here runs before librdkafka sees the config, so the
// errors can name the KafkaConfig field rather than a librdkafka property.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <string>

#include "internal.h"

namespace dispatch::kafka {
namespace internal {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Checks one "host:port" entry (optionally "SCHEME://host:port", IPv6 hosts in
// brackets) and throws a ConfigError naming the entry.
void CheckBroker(const std::string& entry, std::size_t index) {
  const std::string field = "brokers[" + std::to_string(index) + "]";
  const auto fail = [&](const std::string& why) { throw ConfigError(field, field + ": " + why); };
  if (entry.empty()) fail("empty entry; expected \"host:port\"");
  if (entry.find_first_of(", \t\r\n") != std::string::npos) {
    fail(Printable(entry) + " holds a comma or white space; give one \"host:port\" per entry");
  }
  std::string_view rest = entry;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    rest.remove_prefix(scheme + 3);
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) fail(Printable(entry) + " has an unclosed '['");
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') {
      fail(Printable(entry) + " has no port; expected \"[ipv6]:port\"");
    }
    port = rest.substr(1);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      fail(Printable(entry) + " has no port; expected \"host:port\"");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      fail(Printable(entry) + " looks like an IPv6 address; write it as \"[address]:port\"");
    }
  }
  if (host.empty()) fail(Printable(entry) + " has no host; expected \"host:port\"");
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) {
    if (ec == std::errc::result_out_of_range) {
      fail("port " + Printable(port) + " of " + Printable(entry) +
           " is out of range; allowed 1..65535");
    }
    fail("port " + Printable(port) + " of " + Printable(entry) +
         " is not a number; expected \"host:port\" with port 1..65535");
  }
  if (value < 1 || value > 65535) {
    fail("port " + std::to_string(value) + " of " + Printable(entry) +
         " is out of range; allowed 1..65535");
  }
}

std::string CheckTimeout(std::chrono::milliseconds value, const char* field) {
  if (value.count() < 0) {
    throw ConfigError(field, std::string(field) + ": " + std::to_string(value.count()) +
                                 " ms is negative; allowed 0 (none) to " + std::to_string(INT_MAX) +
                                 " ms");
  }
  if (value.count() > INT_MAX) {
    throw ConfigError(field, std::string(field) + ": " + std::to_string(value.count()) +
                                 " ms is too large; allowed 0 (none) to " +
                                 std::to_string(INT_MAX) + " ms");
  }
  return std::to_string(value.count());
}

const char* PartitionerName(Partitioner p) {
  switch (p) {
    case Partitioner::kMurmur2Random: return "murmur2_random";
    case Partitioner::kMurmur2: return "murmur2";
    case Partitioner::kConsistentRandom: return "consistent_random";
    case Partitioner::kConsistent: return "consistent";
    case Partitioner::kFnv1aRandom: return "fnv1a_random";
    case Partitioner::kRandom: return "random";
  }
  return nullptr;
}

// librdkafka decides that a topic is unknown on a topic scan that runs every
// second, after topic.metadata.propagation.max.ms: the window must end this
// long before the write timeout for the verdict to come first.
constexpr long long kTopicScanSlackMs = 1500;

// Properties that a KafkaConfig field owns, with that field.
constexpr std::pair<std::string_view, std::string_view> kOwned[] = {
    {"bootstrap.servers", "brokers"},
    {"metadata.broker.list", "brokers"},
    {"client.id", "client_id"},
    {"acks", "required_acks"},
    {"request.required.acks", "required_acks"},
    {"message.timeout.ms", "write_timeout"},
    {"delivery.timeout.ms", "write_timeout"},
    {"partitioner", "partitioner"},
    {"statistics.interval.ms", "statistics_interval"},
};

}  // namespace

bool IsSecretProperty(std::string_view name) {
  const std::string n = Lower(name);
  return n.find("password") != std::string::npos || n.find("secret") != std::string::npos ||
         n == "ssl.key.pem" || n == "sasl.oauthbearer.config" || n == "ssl_key";
}

std::string ScramCaveat(const KafkaConfig& config, int librdkafka_version,
                        std::string_view librdkafka_version_name) {
  constexpr int kScramFixed = 0x02060100;  // 2.6.1, in rd_kafka_version()'s encoding
  if (librdkafka_version >= kScramFixed) return {};
  for (const auto& [name, value] : config.properties) {
    const std::string n = Lower(name);
    if ((n == "sasl.mechanism" || n == "sasl.mechanisms") && Lower(value).starts_with("scram-")) {
      return "; note: librdkafka " + std::string(librdkafka_version_name) +
             " cannot log in with SCRAM to a Kafka 4 broker even with the right password; "
             "that needs librdkafka 2.6.1 or later (confluentinc/librdkafka#4895)";
    }
  }
  return {};
}

std::string Redact(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (auto pos = text.find(secret); pos != std::string::npos;
       pos = text.find(secret, pos + kRedacted.size())) {
    text.replace(pos, secret.size(), kRedacted);
  }
  return text;
}

std::string Printable(std::string_view value) {
  constexpr std::size_t kMax = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (value.size() > kMax) out += "... (" + std::to_string(value.size()) + " bytes)";
  return out;
}

std::vector<Property> BuildProperties(const KafkaConfig& config) {
  std::vector<Property> props;
  if (config.brokers.empty()) {
    throw ConfigError("brokers", "brokers: empty; give at least one \"host:port\"");
  }
  std::string bootstrap;
  for (std::size_t i = 0; i < config.brokers.size(); ++i) {
    CheckBroker(config.brokers[i], i);
    if (i > 0) bootstrap += ',';
    bootstrap += config.brokers[i];
  }
  props.push_back({"bootstrap.servers", bootstrap, "brokers"});
  if (!config.client_id.empty()) props.push_back({"client.id", config.client_id, "client_id"});

  const int acks = static_cast<int>(config.required_acks);
  if (acks != -1 && acks != 0 && acks != 1) {
    throw ConfigError("required_acks", "required_acks: " + std::to_string(acks) +
                                           " is not allowed; use None (0), Leader (1) or All (-1)");
  }
  props.push_back({"acks", std::to_string(acks), "required_acks"});
  // Under acks All (the idempotent producer) librdkafka never times a
  // message out: a message that times out while later ones of its partition
  // go on leaves a gap in the partition's sequence, and librdkafka then starts
  // a new producer epoch under which those later messages are written
  // (INTRODUCTION.md, "Message timeout considerations"). The write timeout is
  // the publisher's own bound on a call; what a call stopped waiting for stays
  // queued until it is written or Close purges it (docs/reliability.md, "A
  // key's order through failures").
  const std::string write_timeout_ms = CheckTimeout(config.write_timeout, "write_timeout");
  props.push_back({"message.timeout.ms",
                   config.required_acks == RequiredAcks::All ? "0" : write_timeout_ms,
                   "write_timeout"});
  CheckTimeout(config.close_timeout, "close_timeout");
  const std::string stats_ms = CheckTimeout(config.statistics_interval, "statistics_interval");
  if (config.statistics_interval.count() > 0 && !config.statistics) {
    throw ConfigError("statistics",
                      "statistics: empty while statistics_interval is " + stats_ms +
                          " ms; set a hook to receive them, or set the interval to 0");
  }
  if (config.statistics_interval.count() > 0) {
    props.push_back({"statistics.interval.ms", stats_ms, "statistics_interval"});
  }

  const char* partitioner = PartitionerName(config.partitioner);
  if (partitioner == nullptr) {
    throw ConfigError("partitioner",
                      "partitioner: " + std::to_string(static_cast<int>(config.partitioner)) +
                          " is not a Partitioner value");
  }
  props.push_back({"partitioner", partitioner, "partitioner"});

  // Defaults that the user may override through `properties`.
  if (config.required_acks == RequiredAcks::All) {
    // No reordering from internal retries, and no duplicates unless
    // librdkafka starts a new producer epoch (docs/reliability.md,
    // "Duplicates after a new producer epoch").
    props.push_back({"enable.idempotence", "true", "required_acks"});
  }
  // A blocking Publish must not sit in a linger timer; messages still batch
  // while a request is in flight.
  props.push_back({"linger.ms", "0", "(default)"});
  // A typo in a topic name must fail, not create a topic.
  props.push_back({"allow.auto.create.topics", "false", "(default)"});
  // librdkafka holds messages for a topic it cannot see for 30 s (in case
  // the topic is still propagating), longer than the write timeout: the
  // caller would see a deadline instead of "unknown topic". Half the write
  // timeout, at most 5 s, still covers the propagation of a new topic.
  // The window also ends kTopicScanSlackMs before the write timeout (0 when
  // the timeout is shorter): with a 2 s write timeout, half of it raced the
  // timeout and a missing topic came back as a retriable deadline.
  if (config.write_timeout.count() > 0) {
    const long long timeout = config.write_timeout.count();
    const auto propagation =
        std::max(0LL, std::min({timeout / 2, timeout - kTopicScanSlackMs, 5000LL}));
    props.push_back(
        {"topic.metadata.propagation.max.ms", std::to_string(propagation), "write_timeout"});
  }

  for (const auto& [name, value] : config.properties) {
    const std::string field = "properties[" + name + "]";
    if (name.empty()) throw ConfigError("properties", "properties: a property has an empty name");
    for (const auto& [owned, owner] : kOwned) {
      if (Lower(name) == owned) {
        throw ConfigError(field, field + ": set by KafkaConfig::" + std::string(owner) +
                                     "; set that field instead");
      }
    }
    const std::string lname = Lower(name);
    const std::string lvalue = Lower(value);
    const bool truthy = lvalue == "true" || lvalue == "t" || lvalue == "1";
    if (lname == "delivery.report.only.error" && truthy) {
      throw ConfigError(field, field + ": " + Printable(value) +
                                   " is not allowed; every publish waits for its delivery "
                                   "report, successful or not");
    }
    if (lname == "transactional.id") {
      throw ConfigError(field, field +
                                   ": transactions are not supported; the publisher "
                                   "delivers at least once (idempotent producer, acks "
                                   "All), and outbox consumers deduplicate");
    }
    if (lname == "enable.idempotence" && truthy && config.required_acks != RequiredAcks::All) {
      throw ConfigError(field, field + ": " + Printable(value) +
                                   " needs required_acks All (it is " +
                                   (acks == 0 ? "None" : "Leader") +
                                   "); the idempotent producer requires acks=all");
    }
    props.push_back({name, value, field});
  }
  return props;
}

}  // namespace internal

KafkaConfig DefaultKafkaConfig(std::vector<std::string> brokers) {
  KafkaConfig config;
  config.brokers = std::move(brokers);
  return config;
}

std::vector<std::pair<std::string, std::string>> EffectiveProperties(const KafkaConfig& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& p : internal::BuildProperties(config)) {
    out.emplace_back(p.name, internal::IsSecretProperty(p.name) ? std::string(internal::kRedacted)
                                                                : std::move(p.value));
  }
  return out;
}

}  // namespace dispatch::kafka
