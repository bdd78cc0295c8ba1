#include "relay/commands.h"

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <sstream>

#include "relay/config.h"

namespace dispatch::relay {
namespace {

struct Parsed {
  std::optional<std::string> topic;
  std::vector<std::int64_t> ids;
  std::size_t limit = 100;
  std::int64_t after = 0;
  bool allow_out_of_order = false;
  std::optional<std::chrono::milliseconds> older_than;
  std::size_t batch = 5000;
};

std::optional<long long> Number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (end != text.c_str() + text.size() || errno != 0) return std::nullopt;
  return value;
}

// Parses `args` for command `name`; on a bad one writes why and returns nullopt.
std::optional<Parsed> Parse(const Command& command, std::ostream& err) {
  Parsed p;
  const auto bad = [&](const std::string& arg, const std::string& value,
                       const std::string& allowed) -> std::optional<Parsed> {
    err << "dispatch-relay " << command.name << ": " << arg
        << (value.empty() ? "" : " \"" + value + "\"") << ": expected " << allowed << "\n";
    return std::nullopt;
  };
  const std::string& name = command.name;
  for (std::size_t i = 0; i < command.args.size(); ++i) {
    const std::string& arg = command.args[i];
    const bool takes_value = arg == "--topic" || arg == "--limit" || arg == "--after" ||
                             arg == "--ids" || arg == "--older-than" || arg == "--batch";
    if (takes_value && i + 1 >= command.args.size()) return bad(arg, "", "a value after it");
    const std::string value = takes_value ? command.args[++i] : "";
    if (arg == "--topic" && (name == "parked" || name == "requeue")) {
      if (value.empty()) return bad(arg, value, "a topic name, not empty");
      p.topic = value;
    } else if (arg == "--limit" && name == "parked") {
      const auto n = Number(value);
      if (!n || *n < 1 || *n > 100000) return bad(arg, value, "an integer from 1 to 100000");
      p.limit = static_cast<std::size_t>(*n);
    } else if (arg == "--after" && name == "parked") {
      const auto n = Number(value);
      if (!n || *n < 0) return bad(arg, value, "a row id, 0 or more");
      p.after = *n;
    } else if (arg == "--ids" && name == "requeue") {
      std::istringstream in(value);
      for (std::string id; std::getline(in, id, ',');) {
        const auto n = Number(id);
        if (!n || *n < 1) return bad(arg, value, "row ids separated by commas, such as 12,15");
        p.ids.push_back(*n);
      }
      if (p.ids.empty()) return bad(arg, value, "row ids separated by commas, such as 12,15");
    } else if (arg == "--allow-out-of-order" && name == "requeue") {
      p.allow_out_of_order = true;
    } else if (arg == "--older-than" && name == "purge") {
      p.older_than = ParseDuration(value);
      if (!p.older_than) return bad(arg, value, "a duration such as \"30m\", \"12h\" or \"7d\"");
    } else if (arg == "--batch" && name == "purge") {
      const auto n = Number(value);
      if (!n || *n < 1 || *n > 100000) return bad(arg, value, "an integer from 1 to 100000");
      p.batch = static_cast<std::size_t>(*n);
    } else {
      return bad(arg, "", std::string("an argument of ") + name + " (dispatch-relay --help)");
    }
  }
  if (name == "requeue" && p.ids.empty() == !p.topic.has_value()) {
    return bad("requeue", "", "either --ids ID,... or --topic TOPIC (one of the two)");
  }
  if (name == "purge" && !p.older_than) {
    return bad("--older-than", "", "a duration: parked rows parked longer ago are deleted");
  }
  if (name != "status" && name != "parked" && name != "requeue" && name != "purge") {
    return bad(name, "", "a command: status, parked, requeue or purge");
  }
  return p;
}

std::string Utc(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string Ids(const std::vector<std::int64_t>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out;
}

int Status(OutboxAdmin& admin, CommandContext& ctx) {
  const OutboxStatus s = admin.Status();
  ctx.out << "pending " << s.pending << "\n"
          << "parked " << s.parked << "\n"
          << "published " << s.published << (s.published_is_estimate ? " (estimate)" : "") << "\n";
  if (s.oldest_pending) {
    const auto age =
        std::chrono::duration_cast<std::chrono::milliseconds>(ctx.now() - *s.oldest_pending);
    ctx.out << "oldest_pending_age " << FormatDuration(age) << " (created "
            << Utc(*s.oldest_pending) << ")\n";
  } else {
    ctx.out << "oldest_pending_age none\n";
  }
  return kExitOk;
}

int Parked(OutboxAdmin& admin, const Parsed& p, CommandContext& ctx) {
  const std::vector<ParkedRow> rows = admin.Parked(p.limit, p.topic.value_or(""), p.after);
  ctx.out << "id\tkey\ttopic\tattempts\tparked_at\tlast_error\n";
  for (const ParkedRow& r : rows) {
    ctx.out << r.id << "\t" << r.key << "\t" << r.topic << "\t" << r.attempts << "\t"
            << (r.parked_at ? Utc(*r.parked_at) : "unknown") << "\t" << r.last_error << "\n";
  }
  if (rows.size() == p.limit) {
    ctx.out << "# more may follow: --after " << rows.back().id << "\n";
  }
  return kExitOk;
}

int Requeue(OutboxAdmin& admin, const Parsed& p, CommandContext& ctx) {
  RequeueRequest request;
  request.ids = p.ids;
  request.topic = p.topic.value_or("");
  request.allow_out_of_order = p.allow_out_of_order;
  const RequeueResult result = admin.Requeue(request);
  if (!result.out_of_order.empty() && result.requeued.empty()) {
    ctx.err << "dispatch-relay requeue: rows " << Ids(result.out_of_order)
            << " have later rows of their key already published: a requeued row reaches Kafka "
               "after those later rows of its key. Nothing changed; run again with "
               "--allow-out-of-order to requeue them anyway.\n";
    return kExitNeedsFlag;
  }
  ctx.out << "requeued " << result.requeued.size() << " row(s): " << Ids(result.requeued)
          << " (attempts start again from 0)\n";
  if (!result.out_of_order.empty()) {
    ctx.out << "note: rows " << Ids(result.out_of_order)
            << " reach Kafka after later rows of their key, which were already published\n";
  }
  return kExitOk;
}

int Purge(OutboxAdmin& admin, const Parsed& p, CommandContext& ctx) {
  const auto before = ctx.now() - *p.older_than;
  const std::int64_t deleted = admin.PurgeParked(before, p.batch);
  ctx.out << "purged " << deleted << " parked row(s) parked before " << Utc(before) << "\n";
  return kExitOk;
}

}  // namespace

int CheckArguments(const Command& command, CommandContext& ctx) {
  return Parse(command, ctx.err) ? kExitOk : kExitUsage;
}

int RunCommand(const Command& command, OutboxAdmin& admin, CommandContext& ctx) {
  const std::optional<Parsed> parsed = Parse(command, ctx.err);
  if (!parsed) return kExitUsage;
  try {
    if (command.name == "status") return Status(admin, ctx);
    if (command.name == "parked") return Parked(admin, *parsed, ctx);
    if (command.name == "requeue") return Requeue(admin, *parsed, ctx);
    return Purge(admin, *parsed, ctx);
  } catch (const AdminArgumentError& e) {
    ctx.err << "dispatch-relay " << command.name << ": " << e.what() << " (nothing changed)\n";
    return kExitUsage;
  } catch (const StoreError& e) {
    ctx.err << "dispatch-relay " << command.name << ": " << e.what() << "\n";
    return kExitRuntime;
  }
}

const char* CommandsUsage() {
  return "  dispatch-relay status  --config FILE\n"
         "      rows per state, the oldest pending row's age\n"
         "  dispatch-relay parked  --config FILE [--topic T] [--limit N] [--after ID]\n"
         "      parked rows: id, key, topic, attempts, when parked, last error\n"
         "  dispatch-relay requeue --config FILE (--ids ID,ID,... | --topic T) "
         "[--allow-out-of-order]\n"
         "      makes parked rows pending again, attempts from 0. A parked row was skipped\n"
         "      and its key went on, so a requeued row reaches Kafka after the later rows\n"
         "      of its key; when some were already published, nothing changes without\n"
         "      --allow-out-of-order (exit 3)\n"
         "  dispatch-relay purge   --config FILE --older-than DURATION [--batch N]\n"
         "      deletes parked rows parked longer ago than DURATION (\"7d\")\n";
}

}  // namespace dispatch::relay
