// ConfigLoader: reads one key at a time from the TOML tree or from its
// environment variable (which wins), converts it, and records a
// ConfigProblem instead of stopping when it is bad, so that LoadConfig names
// every bad field at once. Internal to the relay (config.cpp uses it).
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "relay/config.h"

namespace dispatch::relay::internal {

// DISPATCH_RELAY_<SECTION>_<KEY>: upper case, '.' and '-' as '_'.
std::string EnvName(const std::string& section, const std::string& key);

class ConfigLoader {
 public:
  ConfigLoader(const toml::table& root, std::string origin, const Environment& env);

  // Each reads section.key when the file or the environment gives it and
  // leaves `out` as it was otherwise (its default) or when the value is bad
  // (then a problem is recorded). They return whether the key was given.
  bool String(const std::string& section, const std::string& key, std::string& out);
  bool Bool(const std::string& section, const std::string& key, bool& out);
  bool Size(const std::string& section, const std::string& key, std::size_t& out, std::size_t min,
            std::size_t max);
  bool Duration(const std::string& section, const std::string& key, std::chrono::milliseconds& out);
  // A TOML array of strings, or a comma-separated string (the environment's form).
  bool StringList(const std::string& section, const std::string& key,
                  std::vector<std::string>& out);
  // One of `allowed` (compared case-insensitively; `out` gets the allowed
  // spelling), or "" when `optional`.
  bool Choice(const std::string& section, const std::string& key,
              const std::vector<std::string>& allowed, std::string& out, bool optional = false);
  // A secret: from the environment only; in the file it is refused. The
  // matching `<key>_file` key (a path, not a secret) is read into `file` and
  // the secret loaded from it; setting both is refused.
  void Secret(const std::string& section, const std::string& key, std::string& out,
              std::string& file);
  // [section] as a table of librdkafka properties, plus the environment's
  // "name=value,name=value". Secret properties only from the environment.
  void Properties(const std::string& section, std::map<std::string, std::string>& out);

  // Records a problem; a secret value is never passed here.
  void Problem(std::string field, std::string value, std::string allowed, std::string origin);
  // Where section.key came from ("file:line:col", the variable), for Problem.
  std::string OriginOf(const std::string& section, const std::string& key) const;
  // The value of section.key as given (quoted), for Problem.
  std::string ValueOf(const std::string& section, const std::string& key) const;

  // Keys and sections in the file that no call asked for (typos), as
  // problems; `sections` lists the known ones.
  void RejectUnknown(const std::vector<std::string>& sections);

  std::vector<ConfigProblem>& problems() { return problems_; }

 private:
  // The raw value of section.key: the environment's text, or the file's node.
  struct Raw {
    std::optional<std::string> env;
    const toml::node* node = nullptr;
    std::string origin;
    std::string field;
  };
  std::optional<Raw> Find(const std::string& section, const std::string& key);
  const toml::table* Section(const std::string& section) const;
  void Bad(const Raw& raw, const std::string& allowed);

  const toml::table& root_;
  std::string origin_;
  const Environment& env_;
  std::set<std::string> asked_;  // "section.key" and "section"
  std::vector<ConfigProblem> problems_;
};

}  // namespace dispatch::relay::internal
