// RetentionJob over a fake OutboxAdmin: batches until one comes back short,
// counts, and stops at once while it waits.
#include "relay/retention.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "fake_admin.h"

namespace dispatch::relay {
namespace {

using test::FakeAdmin;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::hours(480000));

RetentionConfig Config(std::size_t batch, std::chrono::milliseconds interval) {
  RetentionConfig c;
  c.enabled = true;
  c.published_age = std::chrono::hours(24);
  c.batch = batch;
  c.interval = interval;
  return c;
}

TEST(RelayRetention, APassDeletesBatchesUntilOneComesBackShort) {
  auto admin = std::make_unique<FakeAdmin>();
  admin->delete_answers = {100, 100, 12, 100};
  FakeAdmin& fake = *admin;
  RetentionJob job(std::move(admin), Config(100, std::chrono::hours(1)), [] { return kNow; });
  job.RunPass();
  ASSERT_EQ(fake.delete_batches.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(fake.delete_batches[i], 100u);
    EXPECT_EQ(fake.delete_before[i], kNow - std::chrono::hours(24));
  }
  const RetentionMetrics m = job.Metrics();
  EXPECT_EQ(m.batches, 3u);
  EXPECT_EQ(m.deleted, 212u);
  EXPECT_EQ(m.errors, 0u);
}

TEST(RelayRetention, AStoreErrorIsCountedAndEndsThePass) {
  auto admin = std::make_unique<FakeAdmin>();
  admin->store_error = "DeletePublished: connection refused";
  FakeAdmin& fake = *admin;
  RetentionJob job(std::move(admin), Config(100, std::chrono::hours(1)), [] { return kNow; });
  job.RunPass();
  EXPECT_EQ(fake.delete_batches.size(), 1u);
  EXPECT_EQ(job.Metrics().errors, 1u);
  EXPECT_EQ(job.Metrics().batches, 0u);
}

TEST(RelayRetention, TheThreadRunsAPassEachIntervalAndStopsAtOnceWhileWaiting) {
  auto admin = std::make_unique<FakeAdmin>();
  FakeAdmin& fake = *admin;
  RetentionJob job(std::move(admin), Config(100, std::chrono::milliseconds(20)));
  job.Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (fake.DeleteCalls() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(fake.DeleteCalls(), 3u);
  job.Stop();

  // A long interval: Stop ends the wait rather than sitting it out.
  auto idle = std::make_unique<FakeAdmin>();
  FakeAdmin& idle_fake = *idle;
  RetentionJob waiting(std::move(idle), Config(100, std::chrono::hours(1)));
  waiting.Start();
  while (idle_fake.DeleteCalls() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto before = std::chrono::steady_clock::now();
  waiting.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(10));
  EXPECT_EQ(idle_fake.DeleteCalls(), 1u);
}

}  // namespace
}  // namespace dispatch::relay
