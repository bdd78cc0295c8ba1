/// @file
/// dispatch::testing::MockPublisher: a GoogleMock Publisher, so a dispatcher
/// can be unit-tested without Kafka.
///
/// @code
///   dispatch::testing::MockPublisher publisher;
///   EXPECT_CALL(publisher, Publish(_, Field(&dispatch::Message::key, "order-7")))
///       .WillOnce(Return(dispatch::Result::Delivered()));
/// @endcode
///
/// PublishBatch is mocked too. By default it forwards to the base class, which
/// calls the mocked Publish once per message, so expectations on Publish also
/// cover batches; override it with EXPECT_CALL(publisher, PublishBatch(...)).
#pragma once

#include <gmock/gmock.h>

#include <span>
#include <vector>

#include "dispatch/publisher.h"

namespace dispatch::testing {

/// A GoogleMock dispatch::Publisher; see mock_publisher.h for how batches reach
/// the mocked Publish.
class MockPublisher : public Publisher {
 public:
  /// Makes PublishBatch forward to Publisher::PublishBatch until a test sets
  /// an expectation on it.
  MockPublisher() {
    ON_CALL(*this, PublishBatch)
        .WillByDefault([this](const Context& ctx, std::span<const Message> messages) {
          return Publisher::PublishBatch(ctx, messages);
        });
  }

  /// Mocked dispatch::Publisher::Publish; returns a default Result (ok) when
  /// a test sets no action.
  MOCK_METHOD(Result, Publish, (const Context& ctx, const Message& message), (override));
  /// Mocked dispatch::Publisher::PublishBatch; calls the mocked Publish once
  /// per message unless a test sets an expectation on it.
  MOCK_METHOD(std::vector<Result>, PublishBatch,
              (const Context& ctx, std::span<const Message> messages), (override));

  /// What OrdersKeysInBatch answers: false unless a test sets it (the
  /// forwarding PublishBatch does not keep a key's order through failures;
  /// a test that sets true scripts PublishBatch to keep the promise).
  void SetOrdersKeysInBatch(bool orders) { orders_keys_ = orders; }
  /// Not mocked, so that a dispatcher's per-round question is no
  /// uninteresting call: see SetOrdersKeysInBatch.
  bool OrdersKeysInBatch() const override { return orders_keys_; }

 private:
  bool orders_keys_ = false;
};

}  // namespace dispatch::testing
