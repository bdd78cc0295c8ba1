// libFuzzer target: configuration validation and topic names.
//
// Input lines: "b:ENTRY" adds a broker, "p:NAME=VALUE" a property,
// "t:NAME" checks a topic name, "a:N" sets required_acks, "w:N" the write
// timeout in ms. Invariants checked beyond "no crash, no other exception":
// - a secret property value never appears in an error text;
// - a topic name that passes obeys Kafka's rules.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dispatch/kafka/kafka_publisher.h"
#include "kafka/internal.h"

namespace {

constexpr std::string_view kSecret = "fuzz-secret-7f3a9c";

bool ValidTopicChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

void CheckTopic(std::string_view topic) {
  if (dispatch::kafka::internal::TopicNameProblem(topic)) return;
  if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") std::abort();
  for (char c : topic) {
    if (!ValidTopicChar(c)) std::abort();
  }
}

// The input as error texts show it: bytes outside printable ASCII become
// \xNN. Escaping can itself spell the secret ("\xff" + "uzz-secret-..."),
// which is not a leak.
std::string Escaped(std::string_view input) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : input) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  dispatch::kafka::KafkaConfig config;
  config.properties["sasl.password"] = std::string(kSecret);
  std::size_t start = 0;
  while (start <= input.size()) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view line = input.substr(start, end - start);
    start = end + 1;
    if (line.size() < 2 || line[1] != ':') continue;
    const std::string_view rest = line.substr(2);
    switch (line[0]) {
      case 'b':
        config.brokers.emplace_back(rest);
        break;
      case 'p': {
        const auto eq = rest.find('=');
        if (eq == std::string_view::npos) break;
        const std::string name(rest.substr(0, eq));
        if (name == "sasl.password") break;  // keep the known secret
        config.properties[name] = std::string(rest.substr(eq + 1));
        break;
      }
      case 't':
        CheckTopic(rest);
        break;
      case 'a':
        config.required_acks = static_cast<dispatch::kafka::RequiredAcks>(std::atoi(std::string(rest).c_str()));
        break;
      case 'w':
        config.write_timeout = std::chrono::milliseconds(std::atoll(std::string(rest).c_str()));
        break;
      default:
        break;
    }
  }
  const bool secret_elsewhere = input.find(kSecret) != std::string_view::npos ||
                                Escaped(input).find(kSecret) != std::string::npos;
  try {
    for (const auto& [name, value] : dispatch::kafka::EffectiveProperties(config)) {
      if (value.find(kSecret) != std::string::npos && !secret_elsewhere) std::abort();
    }
  } catch (const dispatch::kafka::ConfigError& e) {
    if (std::string_view(e.what()).find(kSecret) != std::string_view::npos && !secret_elsewhere) {
      std::abort();
    }
  }
  return 0;
}
