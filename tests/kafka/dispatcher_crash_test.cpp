// Issue 14's proof under crashes: four outbox_worker processes share one
// PostgreSQL outbox and publish to the three-node Kafka cluster while a
// random worker is killed with SIGKILL every few seconds (and started again)
// and one partition leader is killed once. Then kcat reads the topic back.
// A fifth of the rows are on five hot keys, so that claims hold many rows of
// one key at once.
//
// Needs both CTest fixtures (kafka_trio, postgres_server). The size
// (200,000 rows over 2,000 keys plus the five hot ones) is the default;
// DISPATCH_CRASH_ROWS scales the rows down for a local run (ctest runs the
// default).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/stores/postgres_store.h"
#include "kafka/real_kafka.h"
#include "postgres/child_process.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

using namespace std::chrono_literals;
using dispatch::suite::RealKafka;
using dispatch::testing::Record;
using Clock = std::chrono::steady_clock;

constexpr int kWorkers = 4;
constexpr int kKeys = 2'000;
// Every kHotEvery-th row is on one of kHotKeys keys, in turn.
constexpr int kHotKeys = 5;
constexpr std::size_t kHotEvery = 5;
constexpr int kPartitions = 12;
constexpr int kPoisonRows = 5;
constexpr auto kKillInterval = 3s;
constexpr std::int32_t kLeaderPartition = 0;  // whose leader is killed
// The whole test must end well inside its CTest TIMEOUT (600 s).
constexpr auto kPublishBound = 420s;

std::size_t RowCount() {
  const char* rows = std::getenv("DISPATCH_CRASH_ROWS");
  return rows ? std::stoul(rows) : 200'000;
}

// The ids of the last claim in a worker's journal (outbox_worker --journal)
// that has no "finish" or "release" after it: what the worker had in flight
// when it was killed. Empty when every claim ended.
std::vector<std::int64_t> InFlight(const std::string& journal) {
  std::ifstream in(journal);
  std::vector<std::int64_t> open;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string verb;
    words >> verb;
    open.clear();
    if (verb != "claim") continue;
    for (std::int64_t id = 0; words >> id;) open.push_back(id);
  }
  return open;
}

// kWorkers outbox_worker processes, each in a slot with a journal of its
// own; a killed one is replaced in its slot by a new process.
class Workers {
 public:
  Workers(std::string conninfo, std::string bootstrap, std::string dir)
      : conninfo_(std::move(conninfo)),
        bootstrap_(std::move(bootstrap)),
        dir_(std::move(dir)),
        running_(kWorkers),
        journals_(kWorkers) {
    for (int slot = 0; slot < kWorkers; ++slot) Start(slot);
  }

  // SIGKILL, then a new process in the same slot. Returns the killed
  // process's journal.
  std::string KillAndRestart(int slot) {
    running_[slot]->Signal(SIGKILL);
    running_[slot]->Wait();
    const std::string journal = journals_[slot];
    Start(slot);
    return journal;
  }

  // SIGTERM to each; true when every one exits 0.
  bool StopAll() {
    bool clean = true;
    for (auto& worker : running_) {
      worker->Signal(SIGTERM);
      const int status = worker->Wait();
      clean = clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return clean;
  }

 private:
  void Start(int slot) {
    const std::string journal = dir_ + "/worker-" + std::to_string(started_++) + ".journal";
    auto worker = std::make_unique<ChildProcess>(
        DISPATCH_OUTBOX_WORKER,
        std::vector<std::string>{"--postgres", conninfo_, "--brokers", bootstrap_, "--journal",
                                 journal},
        std::vector<std::string>{});
    const std::string line = worker->ReadLine(30s);
    if (line.find("running") == std::string::npos) {
      throw std::runtime_error("outbox_worker did not start: '" + line + "'");
    }
    running_[slot] = std::move(worker);
    journals_[slot] = journal;
  }

  std::string conninfo_;
  std::string bootstrap_;
  std::string dir_;
  int started_ = 0;
  std::vector<std::unique_ptr<ChildProcess>> running_;
  std::vector<std::string> journals_;
};

// Parses "id:n,id:n" (string_agg output) into a map.
std::map<std::int64_t, int> ParsePairs(const std::string& text) {
  std::map<std::int64_t, int> out;
  std::istringstream in(text);
  for (std::string pair; std::getline(in, pair, ',');) {
    const auto colon = pair.find(':');
    out[std::stoll(pair.substr(0, colon))] = std::stoi(pair.substr(colon + 1));
  }
  return out;
}

std::int64_t IdOf(const Record& record) {
  for (const Header& h : record.headers) {
    if (h.key == "outbox-id") return std::stoll(h.value);
  }
  return -1;
}

class DispatcherCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    kafka_ = RealKafka::FromEnvironment(&why);
    ASSERT_TRUE(kafka_.has_value()) << why;
    if (!kafka_->ControlsProcesses() || kafka_->NodeCount() < 3) {
      GTEST_SKIP() << "needs the three-node cluster that the CTest fixture starts "
                      "(a partition leader is killed)";
    }
  }

  // Brings a killed broker back even when the test failed half-way: the
  // cluster serves the tests after this one.
  void TearDown() override {
    if (killed_broker_ > 0) kafka_->Restart(killed_broker_);
  }

  std::optional<RealKafka> kafka_;
  int killed_broker_ = -1;
};

TEST_F(DispatcherCrash, FourWorkersUnderKillsPublishEveryRowAtLeastOnceInKeyOrder) {
  const auto test_start = Clock::now();
  const std::size_t total = RowCount();
  const std::string topic = RealKafka::UniqueTopic("dispatcher-crash");
  kafka_->CreateTopic(topic, kPartitions, 3, {{"min.insync.replicas", "2"}});

  // Rows round-robin over the keys, as many services write them, but one in
  // kHotEvery on kHotKeys hot keys (an aggregate with a burst of events); a
  // few are larger than message.max.bytes on purpose (poison: they must be
  // parked, and the rows after them in their key published; at the default
  // size, as at any multiple of 50, they fall on hot keys).
  ScratchDatabase db;
  PostgresStore store(db.Conninfo("crash-test"));
  std::map<std::int64_t, std::string> key_of;
  std::set<std::int64_t> poison;
  constexpr std::size_t kChunk = 10'000;
  for (std::size_t first = 0; first < total; first += kChunk) {
    std::vector<OutboxRow> rows;
    for (std::size_t i = first; i < std::min(total, first + kChunk); ++i) {
      const std::string key = i % kHotEvery == 0
                                  ? "hot-" + std::to_string(i / kHotEvery % kHotKeys)
                                  : "key-" + std::to_string((i - i / kHotEvery - 1) % kKeys);
      rows.push_back(Row(key, "row " + std::to_string(i), {}, topic));
      if (i % (total / kPoisonRows) == total / kPoisonRows / 2) {
        rows.back().payload.append(2'000'000, 'x');
      }
    }
    const std::vector<std::int64_t> ids = store.Append(rows);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      key_of[ids[i]] = rows[i].key;
      if (rows[i].payload.size() > 1'000'000) poison.insert(ids[i]);
    }
  }
  ASSERT_EQ(poison.size(), static_cast<std::size_t>(kPoisonRows));
  const double seed_s = std::chrono::duration<double>(Clock::now() - test_start).count();

  const std::string journal_dir = ::testing::TempDir() + "/" + topic;
  std::filesystem::create_directories(journal_dir);
  const auto dispatch_start = Clock::now();
  Workers workers(db.Conninfo("outbox-worker"), kafka_->bootstrap(), journal_dir);

  // The schedule: every kKillInterval a random worker is killed and started
  // again; the leader of partition 0 is killed once a quarter of the rows is
  // published, and started again at half.
  const unsigned seed = std::random_device()();
  std::mt19937 random(seed);
  std::vector<std::string> killed_journals;
  bool leader_restarted = false;
  OutboxCounts counts;
  bool done = false;
  while (!done && Clock::now() - dispatch_start < kPublishBound) {
    std::this_thread::sleep_for(kKillInterval);
    counts = store.Count();
    done = counts.pending == 0;
    if (done) break;
    killed_journals.push_back(
        workers.KillAndRestart(std::uniform_int_distribution<int>(0, kWorkers - 1)(random)));
    const auto published = static_cast<std::size_t>(counts.published);
    if (killed_broker_ < 0 && published >= total / 4) {
      for (const auto& p : kafka_->Partitions(topic)) {
        if (p.id == kLeaderPartition) killed_broker_ = p.leader;
      }
      ASSERT_GT(killed_broker_, 0) << "partition 0 has no leader";
      kafka_->Signal(killed_broker_, "KILL");
      std::printf("[ crash    ] killed broker %d, leader of partition %d, at %zu published\n",
                  killed_broker_, kLeaderPartition, published);
    } else if (killed_broker_ > 0 && !leader_restarted && published >= total / 2) {
      kafka_->Restart(killed_broker_);
      leader_restarted = true;
    }
  }
  const double dispatch_s = std::chrono::duration<double>(Clock::now() - dispatch_start).count();
  ASSERT_TRUE(done) << "rows still pending after " << dispatch_s << " s: " << counts.pending;
  EXPECT_TRUE(workers.StopAll()) << "a worker did not stop cleanly on SIGTERM";
  ASSERT_GT(killed_broker_, 0) << "the leader kill never happened (too few rows?)";
  if (!leader_restarted) kafka_->Restart(killed_broker_);
  const int broker_killed = killed_broker_;
  killed_broker_ = -1;

  // Every row is marked published but the poison ones, which are parked.
  std::vector<std::int64_t> expected_published;
  for (const auto& [id, key] : key_of) {
    if (!poison.count(id)) expected_published.push_back(id);
  }
  EXPECT_EQ(store.Ids(RowState::kPublished), expected_published);
  const std::vector<std::int64_t> parked = store.Ids(RowState::kParked);
  EXPECT_EQ(parked, std::vector<std::int64_t>(poison.begin(), poison.end()));

  // Every published row is in Kafka at least once, under its key; the first
  // copies of each key are in row id order.
  const std::vector<Record> records = kafka_->ReadWithKcat(topic);
  std::map<std::int64_t, int> copies;
  std::map<std::string, std::int64_t> last_first_copy;
  std::size_t order_violations = 0;
  std::vector<Record> sorted = records;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Record& a, const Record& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  std::map<std::int64_t, const Record*> first_copy;
  std::map<std::int64_t, std::vector<const Record*>> later_copies;
  for (const Record& r : sorted) {
    const std::int64_t id = IdOf(r);
    ASSERT_TRUE(key_of.count(id)) << "a record with an unknown row id " << id;
    ASSERT_EQ(r.key, key_of[id]) << "row " << id;
    if (copies[id]++ > 0) {
      later_copies[id].push_back(&r);
      continue;
    }
    first_copy[id] = &r;
    std::int64_t& last = last_first_copy[key_of[id]];
    if (id < last) {
      if (++order_violations <= 10) {
        ADD_FAILURE() << "key " << key_of[id] << ": row " << id << " first appears after row "
                      << last;
      }
    }
    last = std::max(last, id);
  }
  EXPECT_EQ(order_violations, 0u);
  std::size_t missing = 0;
  for (std::int64_t id : expected_published) missing += copies.count(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "published rows missing from Kafka";
  for (std::int64_t id : poison) EXPECT_FALSE(copies.count(id)) << "poison row " << id;

  // Each extra copy of a row is explained: the row was in flight in a
  // killed worker (its journal's open claim), or a publish of it failed
  // with an unknown outcome and was retried (attempts, recorded in the row;
  // the leader kill causes those), or librdkafka wrote it again under a new
  // producer epoch, as it documents (RealKafka::OriginsOf: the leader kill
  // can start a new epoch with no failed publish, and a message in flight
  // then is written twice with an ok result).
  std::map<std::int64_t, int> in_flight_kills;
  std::size_t in_flight_total = 0;
  for (const std::string& journal : killed_journals) {
    for (std::int64_t id : InFlight(journal)) {
      ++in_flight_kills[id];
      ++in_flight_total;
    }
  }
  SqlSession sql(db.Conninfo("crash-check"));
  const std::map<std::int64_t, int> attempts =
      ParsePairs(sql.Query("SELECT string_agg(id || ':' || attempts, ',') FROM outbox "
                           "WHERE attempts > 0 AND state = 'published'"));
  const std::string retry_errors = sql.Query(
      "SELECT string_agg(DISTINCT last_error, ' | ') FROM outbox "
      "WHERE attempts > 0 AND state = 'published'");
  std::size_t duplicates = 0;
  std::size_t by_kill = 0;
  std::size_t by_retry = 0;
  std::vector<suite::Duplicate> candidates;  // extra copies neither a kill nor a retry explains
  for (const auto& [id, n] : copies) {
    if (n == 1) continue;
    duplicates += n - 1;
    const int kills = in_flight_kills.count(id) ? in_flight_kills.at(id) : 0;
    const int retries = attempts.count(id) ? attempts.at(id) : 0;
    if (n - 1 <= kills) {
      by_kill += n - 1;
    } else if (n - 1 <= kills + retries) {
      by_retry += n - 1;
    } else {
      by_kill += kills;
      by_retry += retries;
      const std::vector<const Record*>& again = later_copies.at(id);
      for (std::size_t c = static_cast<std::size_t>(kills + retries); c < again.size(); ++c) {
        candidates.push_back({first_copy.at(id), again[c]});
      }
    }
  }
  std::size_t by_epoch = 0;
  std::size_t unexplained = 0;
  const std::vector<suite::DuplicateOrigin> origins = candidates.empty()
                                                          ? std::vector<suite::DuplicateOrigin>{}
                                                          : kafka_->OriginsOf(topic, candidates);
  for (std::size_t d = 0; d < candidates.size(); ++d) {
    if (origins[d].resent_under_new_epoch) {
      ++by_epoch;
    } else if (++unexplained <= 10) {
      ADD_FAILURE() << "row " << IdOf(*candidates[d].first) << " again at " << origins[d].where
                    << ": not in flight in a killed worker, not retried after a failed "
                       "publish, not resent under a new producer epoch";
    }
  }
  EXPECT_EQ(unexplained, 0u);

  std::printf(
      "[ figures  ] %zu rows (%d keys and %d hot ones with every %zu-th row, %d poison) over "
      "%d workers, topic of %d partitions; "
      "seeded in %.1f s, dispatched in %.1f s (%.0f rows/s) under %zu worker kills (seed %u) "
      "and the kill of broker %d (leader of partition %d)\n",
      total, kKeys, kHotKeys, kHotEvery, kPoisonRows, kWorkers, kPartitions, seed_s, dispatch_s,
      static_cast<double>(total) / dispatch_s, killed_journals.size(), seed, broker_killed,
      kLeaderPartition);
  std::printf(
      "[ figures  ] kcat read %zu records; duplicates %zu: %zu of rows in flight in a killed "
      "worker (%zu rows were in flight over all kills), %zu of rows retried after a failed "
      "publish (%zu published rows have attempts > 0: %s), %zu resent by librdkafka under a "
      "new producer epoch, %zu unexplained; parked %zu\n",
      records.size(), duplicates, by_kill, in_flight_total, by_retry, attempts.size(),
      retry_errors.empty() ? "-" : retry_errors.c_str(), by_epoch, unexplained, parked.size());
  EXPECT_GT(killed_journals.size(), 0u) << "no worker was killed: the run proved nothing";
}

}  // namespace
}  // namespace dispatch::test
