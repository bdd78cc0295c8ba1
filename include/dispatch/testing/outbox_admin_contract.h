/// @file
/// dispatch::testing::OutboxAdminContract: the OutboxAdmin contract
/// (<dispatch/outbox_admin.h>) as a typed GoogleTest suite, the one that
/// PostgresAdmin and SqliteAdmin run. A store of your own that implements
/// OutboxAdmin proves it with this suite beside OutboxStoreContract
/// (<dispatch/testing/outbox_store_contract.h>).
///
/// The harness is the store contract's (a default-constructible type that
/// sets up a fresh, empty outbox) with one more member:
///
/// @code
///   class MyStoreHarness {
///    public:
///     dispatch::OutboxStore& Store();   // the dispatcher's store
///     dispatch::OutboxAdmin& Admin();   // the operator commands, same outbox
///     std::int64_t Append(const dispatch::OutboxRow& row);
///     std::vector<std::int64_t> Ids(dispatch::RowState state);
///   };
///   namespace dispatch::testing {
///   INSTANTIATE_TYPED_TEST_SUITE_P(MyStore, OutboxAdminContract, ::myapp::MyStoreHarness);
///   }
/// @endcode
///
/// The cases compare times written by the database (published and parked
/// times) with the test's clock, so the database must run on the test's
/// machine or one with the same clock. Link with dispatch::testing (or
/// GoogleTest alone: the header needs nothing else).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dispatch/outbox_admin.h"
#include "dispatch/outbox_store.h"

namespace dispatch::testing {

/// The fixture of the suite: a fresh `Harness` per test and the steps the
/// cases share.
template <typename Harness>
class OutboxAdminContract : public ::testing::Test {
 protected:
  using Clock = std::chrono::system_clock;  ///< the stores' clock

  /// Appends a pending row of `key` to `topic` through the harness.
  std::int64_t Append(const std::string& key, const std::string& topic = "orders") {
    OutboxRow row;
    row.key = key;
    row.topic = topic;
    row.payload = "payload of " + key;
    return harness_.Append(row);
  }
  /// Claims every due row and finishes the claim: `published` marked,
  /// `parked` parked with error `error`, the other rows left pending.
  /// Expects the claim to hold every id named.
  void Finish(const std::vector<std::int64_t>& published,
              const std::vector<std::int64_t>& parked = {},
              const std::string& error = "message too large") {
    std::vector<OutboxRow> rows = store().Claim(1000, Clock::now());
    std::vector<std::int64_t> claimed;
    for (const OutboxRow& r : rows) claimed.push_back(r.id);
    std::vector<RowFailure> failures;
    for (std::int64_t id : parked) failures.push_back(RowFailure{id, error, true, {}});
    for (std::int64_t id : published) {
      EXPECT_NE(std::find(claimed.begin(), claimed.end(), id), claimed.end()) << id;
    }
    for (std::int64_t id : parked) {
      EXPECT_NE(std::find(claimed.begin(), claimed.end(), id), claimed.end()) << id;
    }
    store().Finish(published, failures);
  }
  /// Waits until the clock has passed `t` by `by` (times the database
  /// writes have millisecond resolution in some stores) and returns now.
  static Clock::time_point After(Clock::time_point t,
                                 std::chrono::milliseconds by = std::chrono::milliseconds(3)) {
    while (Clock::now() < t + by) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Clock::now();
  }
  /// Calls DeletePublished until it returns less than `batch`, at most 64
  /// times; returns the rows deleted.
  std::int64_t DeleteAllPublished(Clock::time_point cut, std::size_t batch = 5000) {
    std::int64_t deleted = 0;
    for (int i = 0; i < 64; ++i) {
      const std::int64_t n = admin().DeletePublished(cut, batch);
      deleted += n;
      if (n < static_cast<std::int64_t>(batch)) break;
    }
    return deleted;
  }

  /// A request for the rows `ids`.
  static RequeueRequest ByIds(std::vector<std::int64_t> ids, bool allow_out_of_order = false) {
    RequeueRequest request;
    request.ids = std::move(ids);
    request.allow_out_of_order = allow_out_of_order;
    return request;
  }
  /// A request for every parked row of `topic`.
  static RequeueRequest ByTopic(std::string topic) {
    RequeueRequest request;
    request.topic = std::move(topic);
    return request;
  }

  OutboxStore& store() { return harness_.Store(); }  ///< the harness's store
  OutboxAdmin& admin() { return harness_.Admin(); }  ///< its operator interface
  /// The ids of the rows in `state`, ascending.
  std::vector<std::int64_t> Ids(RowState state) { return harness_.Ids(state); }

  Harness harness_;  ///< a fresh one per test
};

/// @cond
TYPED_TEST_SUITE_P(OutboxAdminContract);

TYPED_TEST_P(OutboxAdminContract, StatusCountsRowsPerStateAndTheOldestPendingRow) {
  const OutboxStatus empty = this->admin().Status();
  EXPECT_EQ(empty.pending, 0);
  EXPECT_EQ(empty.parked, 0);
  EXPECT_EQ(empty.oldest_pending, std::nullopt);
  const auto before = std::chrono::floor<std::chrono::milliseconds>(TestFixture::Clock::now());
  const auto a = this->Append("A");
  const auto b = this->Append("B");
  const auto c = this->Append("C");
  this->Append("D");
  this->Finish({a, b}, {c});
  const OutboxStatus status = this->admin().Status();
  EXPECT_EQ(status.pending, 1);
  EXPECT_EQ(status.parked, 1);
  if (!status.published_is_estimate) {
    EXPECT_EQ(status.published, 2);
  }
  EXPECT_GE(status.published, 0);
  ASSERT_TRUE(status.oldest_pending.has_value());
  EXPECT_GE(*status.oldest_pending, before);
  EXPECT_LE(*status.oldest_pending, TestFixture::Clock::now());
}

TYPED_TEST_P(OutboxAdminContract, ParkedListsWhatFinishParkedWithItsErrorAttemptsAndTime) {
  const auto a = this->Append("A");
  const auto b = this->Append("B", "payments");
  const auto c = this->Append("C");
  const auto before = std::chrono::floor<std::chrono::milliseconds>(TestFixture::Clock::now());
  this->Finish({}, {a, b, c}, "topic unknown");
  const auto after = TestFixture::Clock::now();
  const std::vector<ParkedRow> all = this->admin().Parked(10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, a);
  EXPECT_EQ(all[0].key, "A");
  EXPECT_EQ(all[0].topic, "orders");
  EXPECT_EQ(all[0].attempts, 1);
  EXPECT_EQ(all[0].last_error, "topic unknown");
  ASSERT_TRUE(all[0].parked_at.has_value());
  EXPECT_GE(*all[0].parked_at, before);
  EXPECT_LE(*all[0].parked_at, after);
  EXPECT_LE(all[0].created_at, *all[0].parked_at);
  EXPECT_EQ(all[1].id, b);
  EXPECT_EQ(all[2].id, c);
  // One topic; a page after an id; a limit.
  const auto payments = this->admin().Parked(10, "payments");
  ASSERT_EQ(payments.size(), 1u);
  EXPECT_EQ(payments[0].id, b);
  const auto page = this->admin().Parked(1, "", a);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, b);
  EXPECT_TRUE(this->admin().Parked(10, "nothing-parked-here").empty());
}

TYPED_TEST_P(OutboxAdminContract, RequeueMakesAParkedRowPendingWithNoAttemptsAndItIsClaimedAgain) {
  const auto a = this->Append("A");
  this->Finish({}, {a});
  const RequeueResult result = this->admin().Requeue(TestFixture::ByIds({a}));
  EXPECT_EQ(result.requeued, (std::vector<std::int64_t>{a}));
  EXPECT_TRUE(result.out_of_order.empty());
  EXPECT_EQ(this->Ids(RowState::kPending), (std::vector<std::int64_t>{a}));
  EXPECT_EQ(this->admin().Status().parked, 0);
  const auto rows = this->store().Claim(10, TestFixture::Clock::now());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, a);
  EXPECT_EQ(rows[0].attempts, 0);
  this->store().Finish({a}, {});
  EXPECT_EQ(this->Ids(RowState::kPublished), (std::vector<std::int64_t>{a}));
}

TYPED_TEST_P(OutboxAdminContract, RequeueOfATopicTakesEveryParkedRowOfThatTopicOnly) {
  const auto a = this->Append("A");
  const auto b = this->Append("B", "payments");
  const auto c = this->Append("C");
  this->Finish({}, {a, b, c});
  const RequeueResult result = this->admin().Requeue(TestFixture::ByTopic("orders"));
  EXPECT_EQ(result.requeued, (std::vector<std::int64_t>{a, c}));
  EXPECT_EQ(this->Ids(RowState::kParked), (std::vector<std::int64_t>{b}));
  EXPECT_TRUE(this->admin().Requeue(TestFixture::ByTopic("no-such-topic")).requeued.empty());
}

TYPED_TEST_P(OutboxAdminContract, RequeueOfARowThatIsNotParkedThrowsAndChangesNothing) {
  const auto a = this->Append("A");
  const auto b = this->Append("B");
  const auto c = this->Append("C");
  this->Finish({b}, {a});
  // b is published, c pending, 999999 does not exist: a is not requeued either.
  for (const std::vector<std::int64_t>& ids :
       {std::vector<std::int64_t>{a, b}, std::vector<std::int64_t>{a, c},
        std::vector<std::int64_t>{a, 999999}}) {
    try {
      (void)this->admin().Requeue(TestFixture::ByIds(ids));
      ADD_FAILURE() << "no AdminArgumentError for id " << ids[1];
    } catch (const AdminArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(ids[1])), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(this->Ids(RowState::kParked), (std::vector<std::int64_t>{a}));
  EXPECT_EQ(this->Ids(RowState::kPublished), (std::vector<std::int64_t>{b}));
  EXPECT_EQ(this->Ids(RowState::kPending), (std::vector<std::int64_t>{c}));
}

TYPED_TEST_P(OutboxAdminContract, RequeueOfAnEmptyOrAmbiguousRequestThrowsAndChangesNothing) {
  const auto a = this->Append("A");
  this->Finish({}, {a});
  EXPECT_THROW((void)this->admin().Requeue(RequeueRequest{}), AdminArgumentError);
  EXPECT_THROW((void)this->admin().Requeue([&] {
    RequeueRequest both = TestFixture::ByIds({a});
    both.topic = "orders";
    return both;
  }()),
               AdminArgumentError);
  EXPECT_THROW((void)this->admin().Requeue(TestFixture::ByIds({-1})), AdminArgumentError);
  EXPECT_EQ(this->Ids(RowState::kParked), (std::vector<std::int64_t>{a}));
}

TYPED_TEST_P(OutboxAdminContract, RequeueReportsALaterPublishedRowOfItsKeyAndWaitsForConsent) {
  const auto a1 = this->Append("A");
  const auto a2 = this->Append("A");
  const auto b1 = this->Append("B");
  const auto b2 = this->Append("B");
  this->Finish({a2}, {a1, b1});  // a2 went out after a1 was parked; b2 stays pending
  const RequeueResult refused = this->admin().Requeue(TestFixture::ByIds({a1, b1}));
  EXPECT_TRUE(refused.requeued.empty());
  EXPECT_EQ(refused.out_of_order, (std::vector<std::int64_t>{a1}));
  EXPECT_EQ(this->Ids(RowState::kParked), (std::vector<std::int64_t>{a1, b1}));
  // b1 alone is in order: b2 has not gone out.
  EXPECT_EQ(this->admin().Requeue(TestFixture::ByIds({b1})).requeued,
            (std::vector<std::int64_t>{b1}));
  const RequeueResult allowed = this->admin().Requeue(TestFixture::ByIds({a1}, true));
  EXPECT_EQ(allowed.requeued, (std::vector<std::int64_t>{a1}));
  EXPECT_EQ(allowed.out_of_order, (std::vector<std::int64_t>{a1}));
  EXPECT_EQ(this->Ids(RowState::kPending), (std::vector<std::int64_t>{a1, b1, b2}));
}

TYPED_TEST_P(OutboxAdminContract, PurgeParkedDeletesOnlyRowsParkedBeforeTheCut) {
  const auto old_row = this->Append("A");
  const auto published = this->Append("B");
  const auto pending = this->Append("C");
  this->Finish({published}, {old_row});
  const auto cut = TestFixture::After(TestFixture::Clock::now());
  TestFixture::After(cut);
  const auto young = this->Append("D");
  this->Finish({}, {young});
  EXPECT_EQ(this->admin().PurgeParked(cut), 1);
  EXPECT_EQ(this->Ids(RowState::kParked), (std::vector<std::int64_t>{young}));
  EXPECT_EQ(this->Ids(RowState::kPublished), (std::vector<std::int64_t>{published}));
  EXPECT_EQ(this->Ids(RowState::kPending), (std::vector<std::int64_t>{pending}));
  EXPECT_EQ(this->admin().PurgeParked(cut), 0);
}

TYPED_TEST_P(OutboxAdminContract, DeletePublishedDeletesOnlyOldPublishedRowsNeverPendingOrParked) {
  const auto p1 = this->Append("A");
  const auto parked = this->Append("B");
  const auto p2 = this->Append("C");
  this->Finish({p1, p2}, {parked});
  const auto cut = TestFixture::After(TestFixture::Clock::now());
  TestFixture::After(cut);
  const auto young = this->Append("D");
  const auto pending = this->Append("E");
  this->Finish({young}, {});  // pending stays pending (released unmarked)
  EXPECT_EQ(this->DeleteAllPublished(cut), 2);
  EXPECT_EQ(this->Ids(RowState::kPublished), (std::vector<std::int64_t>{young}));
  EXPECT_EQ(this->Ids(RowState::kParked), (std::vector<std::int64_t>{parked}));
  EXPECT_EQ(this->Ids(RowState::kPending), (std::vector<std::int64_t>{pending}));
  EXPECT_EQ(this->DeleteAllPublished(cut), 0);
}

TYPED_TEST_P(OutboxAdminContract, DeletePublishedDeletesAtMostBatchAndTheRestOnLaterCalls) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(this->Append("K" + std::to_string(i)));
  this->Finish(ids);
  const auto cut = TestFixture::After(TestFixture::Clock::now());
  EXPECT_EQ(this->admin().DeletePublished(cut, 3), 3);
  EXPECT_EQ(this->Ids(RowState::kPublished).size(), 4u);
  EXPECT_EQ(this->admin().DeletePublished(cut, 3), 3);
  EXPECT_EQ(this->admin().DeletePublished(cut, 3), 1);
  EXPECT_TRUE(this->Ids(RowState::kPublished).empty());
}

TYPED_TEST_P(OutboxAdminContract, DeletePublishedTakesRowsPublishedAfterAnEarlierPassStopped) {
  const auto p1 = this->Append("A");
  const auto held = this->Append("B");
  const auto p3 = this->Append("C");
  this->Finish({p1, p3});  // held stays pending: a pass stops there
  const auto cut = TestFixture::After(TestFixture::Clock::now());
  EXPECT_EQ(this->DeleteAllPublished(cut), 1);
  EXPECT_EQ(this->Ids(RowState::kPublished), (std::vector<std::int64_t>{p3}));
  this->Finish({held});
  const auto later = TestFixture::After(TestFixture::Clock::now());
  EXPECT_EQ(this->DeleteAllPublished(later), 2);
  EXPECT_TRUE(this->Ids(RowState::kPublished).empty());
}

TYPED_TEST_P(OutboxAdminContract, BadArgumentsAreRefusedNamingTheArgumentAndChangeNothing) {
  const auto a = this->Append("A");
  this->Finish({a});
  const auto future = TestFixture::Clock::now() + std::chrono::hours(1);
  const auto expect_named = [](auto call, const std::string& argument) {
    try {
      call();
      ADD_FAILURE() << "no AdminArgumentError for " << argument;
    } catch (const AdminArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(argument), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("allowed"), std::string::npos) << e.what();
    }
  };
  expect_named([&] { (void)this->admin().DeletePublished(future); }, "published_before");
  expect_named([&] { (void)this->admin().DeletePublished(TestFixture::Clock::now(), 0); }, "batch");
  expect_named([&] { (void)this->admin().PurgeParked(future); }, "parked_before");
  expect_named([&] { (void)this->admin().Parked(0); }, "limit");
  expect_named([&] { (void)this->admin().Parked(10, "", -5); }, "after_id");
  EXPECT_EQ(this->Ids(RowState::kPublished), (std::vector<std::int64_t>{a}));
}

REGISTER_TYPED_TEST_SUITE_P(OutboxAdminContract, StatusCountsRowsPerStateAndTheOldestPendingRow,
                            ParkedListsWhatFinishParkedWithItsErrorAttemptsAndTime,
                            RequeueMakesAParkedRowPendingWithNoAttemptsAndItIsClaimedAgain,
                            RequeueOfATopicTakesEveryParkedRowOfThatTopicOnly,
                            RequeueOfARowThatIsNotParkedThrowsAndChangesNothing,
                            RequeueOfAnEmptyOrAmbiguousRequestThrowsAndChangesNothing,
                            RequeueReportsALaterPublishedRowOfItsKeyAndWaitsForConsent,
                            PurgeParkedDeletesOnlyRowsParkedBeforeTheCut,
                            DeletePublishedDeletesOnlyOldPublishedRowsNeverPendingOrParked,
                            DeletePublishedDeletesAtMostBatchAndTheRestOnLaterCalls,
                            DeletePublishedTakesRowsPublishedAfterAnEarlierPassStopped,
                            BadArgumentsAreRefusedNamingTheArgumentAndChangeNothing);
/// @endcond

}  // namespace dispatch::testing
