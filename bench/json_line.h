// The JSON line that ends every benchmark's output (bench/run.py reads the
// last line that is a JSON object), built field by field so that every
// benchmark writes it the same way: `"key": value` pairs joined by ", ", a
// number with the precision asked for, and null for a number that is not
// finite (printf would write nan or inf, which is not JSON, and run.py would
// then drop the whole line).
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bench {

class Json {
 public:
  Json& Num(const std::string& key, double v, int precision = 3) {
    if (!std::isfinite(v)) return Null(key);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", precision, v);
    return Raw(key, buf);
  }
  Json& Int(const std::string& key, long long v) { return Raw(key, std::to_string(v)); }
  Json& Str(const std::string& key, const std::string& v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      q += c;
    }
    return Raw(key, q + "\"");
  }
  Json& Bool(const std::string& key, bool v) { return Raw(key, v ? "true" : "false"); }
  Json& Null(const std::string& key) { return Raw(key, "null"); }
  Json& Raw(const std::string& key, const std::string& v) {
    body_ += (body_.empty() ? "" : ", ") + ("\"" + key + "\": ") + v;
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

  // Prints the object as one line of stdout, flushed (a parent process may
  // be reading it through a pipe).
  void Print() const {
    std::printf("%s\n", str().c_str());
    std::fflush(stdout);
  }

 private:
  std::string body_;
};

// A number field of a flat JSON object in `text` (its last occurrence), NAN
// when absent: for a benchmark that reads the JSON line of a child process.
inline double JsonNumber(const std::string& text, const std::string& key) {
  const auto at = text.rfind("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  return std::atof(text.c_str() + at + key.size() + 3);
}

}  // namespace bench
