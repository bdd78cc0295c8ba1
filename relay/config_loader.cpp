#include "relay/config_loader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace dispatch::relay::internal {
namespace {

std::string Upper(std::string s) {
  for (char& c : s) {
    c = (c == '.' || c == '-') ? '_'
                               : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += "?";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string Trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

// librdkafka properties that hold a secret (as the publisher redacts them).
bool IsSecretProperty(const std::string& name) {
  const std::string n = Lower(name);
  return n.find("password") != std::string::npos || n.find("secret") != std::string::npos ||
         n == "ssl.key.pem" || n == "sasl.oauthbearer.config";
}

// A node as the file wrote it (strings quoted), for messages.
std::string NodeText(const toml::node& node) {
  std::ostringstream out;
  node.visit([&](const auto& value) { out << value; });
  return out.str();
}

}  // namespace

std::string EnvName(const std::string& section, const std::string& key) {
  return "DISPATCH_RELAY_" + Upper(section) + "_" + Upper(key);
}

ConfigLoader::ConfigLoader(const toml::table& root, std::string origin, const Environment& env)
    : root_(root), origin_(std::move(origin)), env_(env) {}

const toml::table* ConfigLoader::Section(const std::string& section) const {
  const toml::table* table = &root_;
  std::istringstream parts(section);
  for (std::string part; std::getline(parts, part, '.');) {
    table = table->get_as<toml::table>(part);
    if (table == nullptr) return nullptr;
  }
  return table;
}

std::optional<ConfigLoader::Raw> ConfigLoader::Find(const std::string& section,
                                                    const std::string& key) {
  asked_.insert(section + "." + key);
  Raw raw;
  raw.field = section + "." + key;
  const std::string env_name = EnvName(section, key);
  if (auto value = env_(env_name)) {
    raw.env = std::move(*value);
    raw.origin = env_name;
    return raw;
  }
  if (const toml::table* table = Section(section)) {
    if (const toml::node* node = table->get(key)) {
      raw.node = node;
      raw.origin = OriginOf(section, key);
      return raw;
    }
  }
  return std::nullopt;
}

std::string ConfigLoader::OriginOf(const std::string& section, const std::string& key) const {
  std::string env_name = EnvName(section, key);
  if (env_(env_name)) return env_name;
  if (const toml::table* table = Section(section)) {
    if (const toml::node* node = table->get(key)) {
      const toml::source_region& where = node->source();
      return origin_ + ":" + std::to_string(where.begin.line) + ":" +
             std::to_string(where.begin.column);
    }
  }
  return origin_;
}

std::string ConfigLoader::ValueOf(const std::string& section, const std::string& key) const {
  if (auto value = env_(EnvName(section, key))) return Quote(*value);
  if (const toml::table* table = Section(section)) {
    if (const toml::node* node = table->get(key)) {
      if (auto s = node->value<std::string>(); s && node->is_string()) return Quote(*s);
      return NodeText(*node);
    }
  }
  return "";
}

void ConfigLoader::Problem(std::string field, std::string value, std::string allowed,
                           std::string origin) {
  problems_.push_back({std::move(field), std::move(value), std::move(allowed), std::move(origin)});
}

void ConfigLoader::Bad(const Raw& raw, const std::string& allowed) {
  const auto dot = raw.field.rfind('.');
  Problem(raw.field, ValueOf(raw.field.substr(0, dot), raw.field.substr(dot + 1)), allowed,
          raw.origin);
}

bool ConfigLoader::String(const std::string& section, const std::string& key, std::string& out) {
  const auto raw = Find(section, key);
  if (!raw) return false;
  if (raw->env) {
    out = *raw->env;
  } else if (auto s = raw->node->value<std::string>(); s && raw->node->is_string()) {
    out = *s;
  } else {
    Bad(*raw, "a string");
  }
  return true;
}

bool ConfigLoader::Bool(const std::string& section, const std::string& key, bool& out) {
  const auto raw = Find(section, key);
  if (!raw) return false;
  if (raw->env) {
    const std::string v = Lower(Trim(*raw->env));
    if (v == "true" || v == "1" || v == "yes" || v == "on") {
      out = true;
    } else if (v == "false" || v == "0" || v == "no" || v == "off") {
      out = false;
    } else {
      Bad(*raw, "true or false");
    }
  } else if (raw->node->is_boolean()) {
    out = *raw->node->value<bool>();
  } else {
    Bad(*raw, "true or false");
  }
  return true;
}

bool ConfigLoader::Size(const std::string& section, const std::string& key, std::size_t& out,
                        std::size_t min, std::size_t max) {
  const auto raw = Find(section, key);
  if (!raw) return false;
  std::optional<std::int64_t> value;
  if (raw->env) {
    const std::string v = Trim(*raw->env);
    char* end = nullptr;
    errno = 0;
    const long long parsed = std::strtoll(v.c_str(), &end, 10);
    if (!v.empty() && end == v.c_str() + v.size() && errno == 0) value = parsed;
  } else if (raw->node->is_integer()) {
    value = raw->node->value<std::int64_t>();
  }
  const std::string allowed =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value || *value < 0 || static_cast<std::size_t>(*value) < min ||
      static_cast<std::size_t>(*value) > max) {
    Bad(*raw, allowed);
  } else {
    out = static_cast<std::size_t>(*value);
  }
  return true;
}

bool ConfigLoader::Duration(const std::string& section, const std::string& key,
                            std::chrono::milliseconds& out) {
  const auto raw = Find(section, key);
  if (!raw) return false;
  std::optional<std::string> text = raw->env;
  if (!text && raw->node->is_string()) text = raw->node->value<std::string>();
  std::optional<std::chrono::milliseconds> value;
  if (text) value = ParseDuration(Trim(*text));
  if (!value) {
    Bad(*raw, "a duration such as \"250ms\", \"10s\", \"5m\", \"1h\" or \"7d\"");
  } else {
    out = *value;
  }
  return true;
}

bool ConfigLoader::StringList(const std::string& section, const std::string& key,
                              std::vector<std::string>& out) {
  const auto raw = Find(section, key);
  if (!raw) return false;
  std::vector<std::string> values;
  const auto split = [&](const std::string& text) {
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');) {
      if (!Trim(item).empty()) values.push_back(Trim(item));
    }
  };
  if (raw->env) {
    split(*raw->env);
  } else if (raw->node->is_string()) {
    split(*raw->node->value<std::string>());
  } else if (const toml::array* array = raw->node->as_array()) {
    for (const toml::node& item : *array) {
      if (!item.is_string()) {
        Bad(*raw, "an array of strings");
        return true;
      }
      values.push_back(*item.value<std::string>());
    }
  } else {
    Bad(*raw, "an array of strings, or one comma-separated string");
    return true;
  }
  out = std::move(values);
  return true;
}

bool ConfigLoader::Choice(const std::string& section, const std::string& key,
                          const std::vector<std::string>& allowed, std::string& out,
                          bool optional) {
  std::string value;
  const std::size_t before = problems_.size();
  if (!String(section, key, value)) return false;
  if (problems_.size() != before) return true;
  if (optional && Trim(value).empty()) {
    out.clear();
    return true;
  }
  for (const std::string& a : allowed) {
    if (Lower(a) == Lower(Trim(value))) {
      out = a;
      return true;
    }
  }
  std::string list;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + Quote(allowed[i]);
  }
  Problem(section + "." + key, Quote(value), "one of " + list + (optional ? ", or \"\"" : ""),
          OriginOf(section, key));
  return true;
}

void ConfigLoader::Secret(const std::string& section, const std::string& key, std::string& out,
                          std::string& file) {
  const std::string field = section + "." + key;
  const std::string env_name = EnvName(section, key);
  asked_.insert(field);
  const toml::table* table = Section(section);
  const bool inline_in_file = table != nullptr && table->get(key) != nullptr;
  if (inline_in_file) {
    Problem(field, "<redacted>",
            "no secret in the configuration file: set " + env_name + " or " + key + "_file",
            OriginOf(section, key));
  }
  String(section, key + "_file", file);
  const auto from_env = env_(env_name);
  if (from_env && !file.empty()) {
    Problem(field, "<redacted>", "one source: " + env_name + " or " + field + "_file, not both",
            env_name);
    return;
  }
  if (from_env) {
    out = *from_env;
    return;
  }
  if (file.empty()) return;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    Problem(field + "_file", Quote(file),
            std::string("a readable file holding the secret (") + std::strerror(errno) + ")",
            OriginOf(section, key + "_file"));
    return;
  }
  std::ostringstream content;
  content << in.rdbuf();
  out = content.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) {
    Problem(field + "_file", Quote(file), "a file holding the secret; it is empty",
            OriginOf(section, key + "_file"));
  }
}

void ConfigLoader::Properties(const std::string& section, std::map<std::string, std::string>& out) {
  asked_.insert(section);
  if (const toml::table* table = Section(section)) {
    for (const auto& [name, node] : *table) {
      const std::string n(name.str());
      const std::string field = section + "[" + n + "]";
      const std::string where = origin_ + ":" + std::to_string(node.source().begin.line) + ":" +
                                std::to_string(node.source().begin.column);
      if (IsSecretProperty(n)) {
        Problem(field, "<redacted>",
                "no secret in the configuration file: set it in " + EnvName(section, "") +
                    " (\"name=value,...\") or use the relay's *_file keys",
                where);
        continue;
      }
      if (node.is_string()) {
        out[n] = *node.value<std::string>();
      } else if (node.is_integer()) {
        out[n] = std::to_string(*node.value<std::int64_t>());
      } else if (node.is_boolean()) {
        out[n] = *node.value<bool>() ? "true" : "false";
      } else {
        Problem(field, NodeText(node), "a string, an integer or a boolean", where);
      }
    }
  }
  // DISPATCH_RELAY_KAFKA_PROPERTIES="name=value,name=value": added to the file's.
  std::string env_name = EnvName(section, "");
  env_name.pop_back();
  if (auto text = env_(env_name)) {
    std::istringstream in(*text);
    for (std::string item; std::getline(in, item, ',');) {
      if (Trim(item).empty()) continue;
      const auto eq = item.find('=');
      if (eq == std::string::npos || Trim(item.substr(0, eq)).empty()) {
        const std::string name = Trim(item.substr(0, eq));
        Problem(section, IsSecretProperty(name) ? "<redacted>" : Quote(Trim(item)),
                "\"name=value\" entries separated by commas", env_name);
        continue;
      }
      out[Trim(item.substr(0, eq))] = Trim(item.substr(eq + 1));
    }
  }
}

void ConfigLoader::RejectUnknown(const std::vector<std::string>& sections) {
  for (const auto& [name, node] : root_) {
    const std::string section(name.str());
    if (std::find(sections.begin(), sections.end(), section) == sections.end() ||
        !node.is_table()) {
      Problem(section, "", "a known section: [store], [kafka], [dispatcher], [retention], [http]",
              origin_ + ":" + std::to_string(node.source().begin.line));
      continue;
    }
    for (const auto& [key_name, value] : *node.as_table()) {
      const std::string key(key_name.str());
      const std::string field = section + "." + key;
      if (asked_.count(field) != 0) continue;
      Problem(field, "", "a known key of [" + section + "] (see dispatch-relay.example.toml)",
              origin_ + ":" + std::to_string(value.source().begin.line));
    }
  }
}

}  // namespace dispatch::relay::internal
