#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string_view>
#include <stop_token>

#include "dispatch/publisher.h"

namespace dispatch {
namespace {

using namespace std::chrono_literals;

TEST(Context, BackgroundHasNoDeadlineAndIsNeverCancelled) {
  const Context ctx = Context::Background();
  EXPECT_FALSE(ctx.deadline().has_value());
  EXPECT_FALSE(ctx.Cancelled());
  EXPECT_FALSE(ctx.Expired());
  EXPECT_FALSE(ContextError(ctx).has_value());
}

TEST(Context, WithTimeoutSetsADeadlineThatExpires) {
  const auto before = Context::Clock::now();
  const Context ctx = Context::WithTimeout(1h);
  ASSERT_TRUE(ctx.deadline().has_value());
  EXPECT_GE(*ctx.deadline(), before + 1h);
  EXPECT_FALSE(ctx.Expired());
  EXPECT_TRUE(Context::WithTimeout(0ms).Expired());
  EXPECT_TRUE(Context::WithTimeout(-5ms).Expired());
}

TEST(Context, TheEarlierDeadlineWins) {
  const auto now = Context::Clock::now();
  const Context parent = Context::WithDeadline(now + 1s);
  EXPECT_EQ(*Context::WithDeadline(now + 5s, parent).deadline(), now + 1s);
  EXPECT_EQ(*Context::WithDeadline(now + 100ms, parent).deadline(), now + 100ms);
}

TEST(Context, StopTokenCancelsAndIsKeptByChildren) {
  std::stop_source source;
  const Context parent = Context::WithStopToken(source.get_token());
  const Context child = Context::WithTimeout(1h, parent);
  EXPECT_FALSE(child.Cancelled());
  source.request_stop();
  EXPECT_TRUE(parent.Cancelled());
  EXPECT_TRUE(child.Cancelled());
}

TEST(Context, ContextErrorNamesCancelBeforeDeadline) {
  std::stop_source source;
  source.request_stop();
  const auto cancelled = ContextError(Context::WithStopToken(source.get_token()));
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->code, ErrorCode::kCancelled);
  EXPECT_EQ(cancelled->delivery, Delivery::kNotDelivered);
  EXPECT_TRUE(cancelled->retriable);

  const auto expired = ContextError(Context::WithTimeout(-1s));
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(expired->delivery, Delivery::kNotDelivered);
}

TEST(Result, DeliveredIsOkAndErrorsAreNot) {
  const Result ok = Result::Delivered(3, 42);
  EXPECT_TRUE(ok.ok());
  EXPECT_FALSE(ok.permanent());
  EXPECT_EQ(ok.delivery, Delivery::kDelivered);
  EXPECT_EQ(ok.partition, 3);
  EXPECT_EQ(ok.offset, 42);

  const Result poison =
      Result::Error(ErrorCode::kMessageTooLarge, Delivery::kNotDelivered, false, "too big");
  EXPECT_FALSE(poison.ok());
  EXPECT_TRUE(poison.permanent());
  EXPECT_EQ(ToString(poison.code), "message_too_large");
  EXPECT_EQ(ToString(poison.delivery), "not_delivered");
}

// One spelling for every name, so that each serves as a log field or a metric
// label as it is: lower case and '_', and no two alike.
TEST(Result, EveryCodeAndOutcomeHasItsOwnSnakeCaseName) {
  std::set<std::string_view> names;
  const auto check = [&names](std::string_view name) {
    EXPECT_FALSE(name.empty());
    EXPECT_NE(name, "unknown_error_code");  // the name of no value
    EXPECT_NE(name, "unknown_delivery");
    for (const char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
    EXPECT_TRUE(names.insert(name).second) << name << " is used twice";
  };
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) check(ToString(static_cast<ErrorCode>(i)));
  for (std::size_t i = 0; i < kDeliveryCount; ++i) check(ToString(static_cast<Delivery>(i)));
  EXPECT_EQ(names.size(), kErrorCodeCount + kDeliveryCount);
}

}  // namespace
}  // namespace dispatch
