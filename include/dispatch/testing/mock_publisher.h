// dispatch::testing::MockPublisher: a GoogleMock Publisher, so a dispatcher
// can be unit-tested without Kafka.
//
//   dispatch::testing::MockPublisher publisher;
//   EXPECT_CALL(publisher, Publish(_, Field(&dispatch::Message::key, "order-7")))
//       .WillOnce(Return(dispatch::Result::Delivered()));
//
// PublishBatch is mocked too. By default it forwards to the base class, which
// calls the mocked Publish once per message, so expectations on Publish also
// cover batches; override it with EXPECT_CALL(publisher, PublishBatch(...)).
#pragma once

#include <gmock/gmock.h>

#include <span>
#include <vector>

#include "dispatch/publisher.h"

namespace dispatch::testing {

class MockPublisher : public Publisher {
 public:
  MockPublisher() {
    ON_CALL(*this, PublishBatch)
        .WillByDefault([this](const Context& ctx, std::span<const Message> messages) {
          return Publisher::PublishBatch(ctx, messages);
        });
  }

  MOCK_METHOD(Result, Publish, (const Context& ctx, const Message& message), (override));
  MOCK_METHOD(std::vector<Result>, PublishBatch,
              (const Context& ctx, std::span<const Message> messages), (override));
};

}  // namespace dispatch::testing
