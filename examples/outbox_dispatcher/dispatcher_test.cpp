// The dispatcher against the mock publisher and a real SQLite outbox.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>

#include "dispatch/testing/mock_publisher.h"
#include "dispatcher.h"
#include "outbox_store.h"

namespace outbox {
namespace {

using dispatch::Delivery;
using dispatch::ErrorCode;
using dispatch::Message;
using dispatch::Result;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::Invoke;

Row MakeRow(const std::string& aggregate, const std::string& payload) {
  return Row{0, aggregate, "orders", payload, {{"event-type", "Test"}}, 0};
}

Result Retriable() {
  return Result::Error(ErrorCode::kBrokerUnavailable, Delivery::kNotDelivered, true, "down");
}
Result Poison() {
  return Result::Error(ErrorCode::kMessageTooLarge, Delivery::kNotDelivered, false, "too big");
}

// Answers each message by its payload: "fail" retriable, "poison" permanent,
// anything else ok; records every message it was given.
class ScriptedPublisher {
 public:
  explicit ScriptedPublisher(dispatch::testing::MockPublisher& mock) {
    ON_CALL(mock, PublishBatch(_, _))
        .WillByDefault(Invoke([this](const dispatch::Context&, std::span<const Message> batch) {
          std::vector<Result> results;
          for (const Message& m : batch) {
            sent.push_back(m.value);
            results.push_back(m.value.starts_with("fail")     ? Retriable()
                              : m.value.starts_with("poison") ? Poison()
                                                              : Result::Delivered());
          }
          return results;
        }));
  }
  std::vector<std::string> sent;
};

TEST(Dispatcher, PublishesEveryRowAsAKeyedMessageWithItsIdAndMarksItPublished) {
  Store store(":memory:");
  store.Append({MakeRow("order-1", "a"), MakeRow("order-2", "b")});
  dispatch::testing::MockPublisher publisher;
  std::vector<Message> seen;
  EXPECT_CALL(publisher, PublishBatch(_, _))
      .WillOnce(Invoke([&](const dispatch::Context&, std::span<const Message> batch) {
        seen.assign(batch.begin(), batch.end());
        return std::vector<Result>(batch.size(), Result::Delivered());
      }));
  const RoundStats stats = Dispatcher(store, publisher).RunOnce();
  EXPECT_EQ(stats.published, 2u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].key, std::optional<std::string>("order-1"));
  EXPECT_EQ(seen[0].headers.back(), (dispatch::Header{"outbox-id", "1"}));
  EXPECT_EQ(seen[1].headers.front(), (dispatch::Header{"event-type", "Test"}));
  EXPECT_EQ(store.Count().published, 2);
  EXPECT_EQ(store.Count().pending, 0);
}

TEST(Dispatcher, PartialFailureKeepsFailedRowsAndDefersLaterRowsOfTheirKey) {
  Store store(":memory:");
  store.Append({MakeRow("A", "fail-A1"), MakeRow("B", "B1"), MakeRow("A", "A2"), MakeRow("B", "B2")});
  dispatch::testing::MockPublisher publisher;
  ScriptedPublisher script(publisher);
  const RoundStats stats = Dispatcher(store, publisher).RunOnce();
  // A2 must not overtake A1: it is never sent in this round.
  EXPECT_THAT(script.sent, ElementsAre("fail-A1", "B1", "B2"));
  EXPECT_EQ(stats.published, 2u);
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.deferred, 1u);
  EXPECT_THAT(store.Ids(State::kPublished), ElementsAre(2, 4));
  EXPECT_THAT(store.Ids(State::kPending), ElementsAre(1, 3));
}

TEST(Dispatcher, PermanentFailureParksTheRowAndLetsItsKeyGoOn) {
  Store store(":memory:");
  store.Append({MakeRow("A", "poison-A1"), MakeRow("A", "A2")});
  dispatch::testing::MockPublisher publisher;
  ScriptedPublisher script(publisher);
  const RoundStats stats = Dispatcher(store, publisher).RunOnce();
  EXPECT_THAT(script.sent, ElementsAre("poison-A1", "A2"));
  EXPECT_EQ(stats.parked, 1u);
  EXPECT_THAT(store.Ids(State::kParked), ElementsAre(1));
  EXPECT_THAT(store.Ids(State::kPublished), ElementsAre(2));
  // A parked row is never fetched again.
  EXPECT_EQ(Dispatcher(store, publisher).RunOnce().fetched, 0u);
}

TEST(Dispatcher, CrashBetweenPublishAndMarkPublishesTheRowsAgainOnRestart) {
  const auto path = std::filesystem::path(::testing::TempDir()) / "crash_outbox.db";
  std::filesystem::remove(path);
  std::vector<std::string> sent;
  {
    Store store(path.string());
    store.Append({MakeRow("A", "A1"), MakeRow("B", "B1")});
    dispatch::testing::MockPublisher publisher;
    EXPECT_CALL(publisher, PublishBatch(_, _))
        .WillOnce(Invoke([&](const dispatch::Context&, std::span<const Message> batch)
                             -> std::vector<Result> {
          for (const Message& m : batch) sent.push_back(m.value);
          // The broker has the rows; the process dies before marking them.
          throw std::runtime_error("process killed");
        }));
    EXPECT_THROW(Dispatcher(store, publisher).RunOnce(), std::runtime_error);
  }
  Store reopened(path.string());
  EXPECT_EQ(reopened.Count().pending, 2);
  dispatch::testing::MockPublisher publisher;
  ScriptedPublisher script(publisher);
  EXPECT_EQ(Dispatcher(reopened, publisher).RunOnce().published, 2u);
  // At least once: both rows went out twice in all.
  EXPECT_THAT(sent, ElementsAre("A1", "B1"));
  EXPECT_THAT(script.sent, ElementsAre("A1", "B1"));
  EXPECT_EQ(reopened.Count().published, 2);
}

TEST(Dispatcher, RetriedRowsGoOutInIdOrderPerKeyOnTheNextRound) {
  Store store(":memory:");
  store.Append({MakeRow("A", "fail-A1"), MakeRow("A", "A2"), MakeRow("A", "A3")});
  dispatch::testing::MockPublisher publisher;
  ScriptedPublisher script(publisher);
  Dispatcher(store, publisher).RunOnce();
  EXPECT_THAT(script.sent, ElementsAre("fail-A1"));
  EXPECT_EQ(store.Count().pending, 3);
}

TEST(OutboxStore, HeadersRoundTripThroughTheBlobColumn) {
  const std::vector<dispatch::Header> headers = {{"a", std::string("\0\xff", 2)}, {"a", ""}, {"", "x"}};
  EXPECT_EQ(DecodeHeaders(EncodeHeaders(headers)), headers);
  EXPECT_THROW(DecodeHeaders(std::string("\x05\x00\x00\x00" "ab", 6)), StoreError);
}

TEST(OutboxStore, MissingDirectoryIsAClearError) {
  try {
    Store store("/nonexistent-dir/outbox.db");
    FAIL() << "opened a database in a missing directory";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("cannot open database \"/nonexistent-dir/outbox.db\""));
  }
}

TEST(OutboxStore, DatabaseLockedByAnotherWriterIsAClearError) {
  const auto path = std::filesystem::path(::testing::TempDir()) / "locked_outbox.db";
  std::filesystem::remove(path);
  { Store create(path.string()); }
  // Another process's connection holds the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.string().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  try {
    Store store(path.string());
    ADD_FAILURE() << "opened a database that another writer holds";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("locked by another process"));
  }
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

}  // namespace
}  // namespace outbox
