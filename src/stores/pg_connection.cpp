#include "stores/pg_connection.h"

#include <cstring>
#include <utility>

#include "dispatch/outbox_store.h"

namespace dispatch::pg {
namespace {

// Type oids (pg_type.h is a server header, not in libpq-dev).
constexpr Oid kTimestamptzOid = 1184;

// PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
constexpr std::int64_t kPostgresEpochUs = 946'684'800LL * 1'000'000;

std::uint64_t ReadBigEndian(const char* bytes, int size) {
  std::uint64_t value = 0;
  for (int i = 0; i < size; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

// libpq's messages span lines ("...failed: Connection refused\n\tIs the
// server running..."); an error text is one line, for logs.
std::string OneLine(std::string_view text) {
  std::string line;
  for (char c : text) {
    if (c == '\n' || c == '\t') {
      if (!line.empty() && line.back() != ' ') line += ' ';
    } else {
      line += c;
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// The password of a connection string, to mask in error texts; empty when
// the string does not parse (Connection then refuses it without a word of it).
std::string PasswordOf(const PQconninfoOption* options) {
  for (const PQconninfoOption* o = options; o && o->keyword; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val) return o->val;
  }
  return "";
}

}  // namespace

void Params::Add(std::string value, int format, Oid type, bool null) {
  values_.push_back(std::move(value));
  pointers_.push_back(null ? nullptr : values_.back().data());
  lengths_.push_back(static_cast<int>(values_.back().size()));
  formats_.push_back(format);
  types_.push_back(type);
}

Params& Params::Bytes(std::string_view value) {
  Add(std::string(value), 1, 0);
  return *this;
}

Params& Params::Int(std::int64_t value) {
  Add(std::to_string(value), 0, 0);
  return *this;
}

Params& Params::Bool(bool value) {
  Add(value ? "true" : "false", 0, 0);
  return *this;
}

Params& Params::Time(std::chrono::system_clock::time_point value) {
  const auto us = std::chrono::floor<std::chrono::microseconds>(value.time_since_epoch()).count() -
                  kPostgresEpochUs;
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] =
        static_cast<char>((static_cast<std::uint64_t>(us) >> (8 * (7 - i))) & 0xff);
  }
  Add(std::move(bytes), 1, kTimestamptzOid);
  return *this;
}

Params& Params::TimeOrNull(std::chrono::system_clock::time_point value) {
  if (value.time_since_epoch().count() != 0) return Time(value);
  Add("", 1, kTimestamptzOid, /*null=*/true);
  return *this;
}

Params& Params::TextArray(const std::vector<std::string>& values) {
  // Every element quoted, with " and \ escaped: the array literal grammar.
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) literal += ',';
    literal += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') literal += '\\';
      literal += c;
    }
    literal += '"';
  }
  literal += '}';
  Add(std::move(literal), 0, 0);
  return *this;
}

Params& Params::IntArray(const std::vector<std::int64_t>& values) {
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) literal += ',';
    literal += std::to_string(values[i]);
  }
  literal += '}';
  Add(std::move(literal), 0, 0);
  return *this;
}

Params& Params::BoolArray(const std::vector<bool>& values) {
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) literal += ',';
    literal += values[i] ? 't' : 'f';
  }
  literal += '}';
  Add(std::move(literal), 0, 0);
  return *this;
}

Connection::Connection(const std::string& conninfo, std::string session_setup)
    : session_setup_(std::move(session_setup)) {
  // libpq's own parse errors quote pieces of the string, which may be the
  // password: check it first and say nothing of its text.
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &parse_error);
  PQfreemem(parse_error);
  if (!options) {
    throw StoreError(
        "postgres store: connect failed: the connection string does not parse (it is not "
        "repeated here, as it may hold a password)");
  }
  password_ = PasswordOf(options);
  PQconninfoFree(options);

  conn_ = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string error = Describe("connect", PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw StoreError(error);
  }
  // NOTICEs (such as "relation already exists, skipping") would go to stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  try {
    Setup();
  } catch (...) {
    PQfinish(conn_);
    conn_ = nullptr;
    throw;
  }
}

Connection::~Connection() { PQfinish(conn_); }

void Connection::Setup() {
  if (!session_setup_.empty()) ExecScript("session setup", session_setup_.c_str());
}

Result Connection::Exec(std::string_view what, const char* sql, const Params& params) {
  return Checked(what, PQexecParams(conn_, sql, static_cast<int>(params.values_.size()),
                                    params.types_.data(), params.pointers_.data(),
                                    params.lengths_.data(), params.formats_.data(), 1));
}

Result Connection::ExecPrepared(std::string_view what, const char* name, const char* sql,
                                const Params& params) {
  if (!prepare_) return Exec(what, sql, params);
  if (!prepared_.count(name)) {
    Checked(what, PQprepare(conn_, name, sql, static_cast<int>(params.values_.size()),
                            params.types_.data()));
    prepared_.insert(name);
  }
  return Checked(what, PQexecPrepared(conn_, name, static_cast<int>(params.values_.size()),
                                      params.pointers_.data(), params.lengths_.data(),
                                      params.formats_.data(), 1));
}

void Connection::ExecScript(std::string_view what, const char* sql) {
  Checked(what, PQexec(conn_, sql));
}

Result Connection::Checked(std::string_view what, PGresult* raw) const {
  Result result(raw);
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;

  std::string reason;
  const char* primary =
      result ? PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (primary) {
    const char* severity = PQresultErrorField(result.get(), PG_DIAG_SEVERITY);
    reason = std::string(severity ? severity : "ERROR") + ": " + primary;
  } else {
    reason = PQerrorMessage(conn_);  // the connection broke: no server message
  }
  throw StoreError(Describe(what, reason));
}

void Connection::ExecQuietly(const char* sql) noexcept {
  if (!Lost()) PQclear(PQexec(conn_, sql));
}

bool Connection::Lost() const { return PQstatus(conn_) != CONNECTION_OK; }

bool Connection::Reconnect() {
  if (!Lost()) return false;
  PQreset(conn_);
  prepared_.clear();  // a new session has none
  if (Lost()) throw StoreError(Describe("reconnect", PQerrorMessage(conn_)));
  Setup();
  return true;
}

int Connection::Socket() const { return PQsocket(conn_); }

bool Connection::ConsumeInput() { return !Lost() && PQconsumeInput(conn_) == 1; }

int Connection::TakeNotifications() {
  int taken = 0;
  while (PGnotify* notify = PQnotifies(conn_)) {
    PQfreemem(notify);
    ++taken;
  }
  return taken;
}

std::string Connection::Describe(std::string_view what, std::string_view reason) const {
  std::string text = OneLine(reason);
  constexpr std::string_view kMask = "********";
  for (std::size_t pos = 0;
       !password_.empty() && (pos = text.find(password_, pos)) != std::string::npos;
       pos += kMask.size()) {
    text.replace(pos, password_.size(), kMask);
  }
  return "postgres store: " + std::string(what) + " failed: " + text;
}

bool Bool(const PGresult* result, int row, int column) {
  return PQgetvalue(result, row, column)[0] != 0;
}

std::int64_t Int64(const PGresult* result, int row, int column) {
  return static_cast<std::int64_t>(ReadBigEndian(PQgetvalue(result, row, column), 8));
}

std::int32_t Int32(const PGresult* result, int row, int column) {
  return static_cast<std::int32_t>(ReadBigEndian(PQgetvalue(result, row, column), 4));
}

std::string Bytes(const PGresult* result, int row, int column) {
  return std::string(PQgetvalue(result, row, column),
                     static_cast<std::size_t>(PQgetlength(result, row, column)));
}

std::chrono::system_clock::time_point Time(const PGresult* result, int row, int column) {
  const auto us = std::chrono::microseconds(Int64(result, row, column) + kPostgresEpochUs);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(us));
}

}  // namespace dispatch::pg
