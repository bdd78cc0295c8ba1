#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "dispatch/testing/mock_publisher.h"

namespace dispatch::testing {
namespace {

using ::testing::_;
using ::testing::Field;
using ::testing::Return;

TEST(MockPublisher, ReturnsWhatTheTestScripted) {
  MockPublisher publisher;
  EXPECT_CALL(publisher, Publish(_, Field(&Message::key, std::optional<std::string>("order-7"))))
      .WillOnce(Return(Result::Delivered(0, 11)));
  const Result r = publisher.Publish(Context::Background(), Message{"orders", "order-7", "{}", {}});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.offset, 11);
}

TEST(MockPublisher, DefaultBatchCallsPublishOncePerMessageInOrder) {
  MockPublisher publisher;
  ::testing::InSequence in_order;
  EXPECT_CALL(publisher, Publish(_, Field(&Message::value, "a"))).WillOnce(Return(Result::Delivered()));
  EXPECT_CALL(publisher, Publish(_, Field(&Message::value, "b")))
      .WillOnce(Return(Result::Error(ErrorCode::kBrokerUnavailable, Delivery::kNotDelivered, true,
                                     "down")));
  EXPECT_CALL(publisher, Publish(_, Field(&Message::value, "c"))).WillOnce(Return(Result::Delivered()));

  const std::vector<Message> batch = {{"t", "k", "a", {}}, {"t", "k", "b", {}}, {"t", "k", "c", {}}};
  const std::vector<Result> results = publisher.PublishBatch(Context::Background(), batch);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].code, ErrorCode::kBrokerUnavailable);
  EXPECT_TRUE(results[2].ok());
}

TEST(MockPublisher, BatchCanBeScriptedDirectly) {
  MockPublisher publisher;
  EXPECT_CALL(publisher, Publish).Times(0);
  EXPECT_CALL(publisher, PublishBatch)
      .WillOnce(Return(std::vector<Result>{Result::Delivered(), Result::Delivered()}));
  const std::vector<Message> batch(2, Message{"t", std::nullopt, "v", {}});
  EXPECT_EQ(publisher.PublishBatch(Context::Background(), batch).size(), 2u);
}

}  // namespace
}  // namespace dispatch::testing
