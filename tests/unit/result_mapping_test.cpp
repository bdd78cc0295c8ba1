#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <string>

#include "kafka/internal.h"

namespace dispatch::kafka::internal {
namespace {

using ::testing::HasSubstr;

struct Case {
  rd_kafka_resp_err_t err;
  Persisted persisted;
  ErrorCode code;
  Delivery delivery;
  bool retriable;
};

TEST(ResultMapping, LibrdkafkaErrorsMapToCodeOutcomeAndRetriability) {
  const Case cases[] = {
      {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, Persisted::kNot, ErrorCode::kMessageTooLarge,
       Delivery::kNotDelivered, false},
      {RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, Persisted::kNot, ErrorCode::kMessageTooLarge,
       Delivery::kNotDelivered, false},
      {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, Persisted::kNot, ErrorCode::kNotAuthorized,
       Delivery::kNotDelivered, false},
      {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, Persisted::kNot, ErrorCode::kUnknownTopic,
       Delivery::kNotDelivered, false},
      {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, Persisted::kNot, ErrorCode::kUnknownTopic,
       Delivery::kNotDelivered, false},
      {RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, Persisted::kNot, ErrorCode::kInvalidMessage,
       Delivery::kNotDelivered, false},
      {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, Persisted::kNot, ErrorCode::kBrokerUnavailable,
       Delivery::kNotDelivered, true},
      {RD_KAFKA_RESP_ERR__TRANSPORT, Persisted::kPossibly, ErrorCode::kBrokerUnavailable,
       Delivery::kUnknown, true},
      {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, Persisted::kNot, ErrorCode::kDeadlineExceeded,
       Delivery::kNotDelivered, true},
      {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, Persisted::kPossibly, ErrorCode::kDeadlineExceeded,
       Delivery::kUnknown, true},
      {RD_KAFKA_RESP_ERR__PURGE_QUEUE, Persisted::kNot, ErrorCode::kClosed,
       Delivery::kNotDelivered, true},
      {RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, Persisted::kPossibly, ErrorCode::kClosed,
       Delivery::kUnknown, true},
      {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, Persisted::kNot,
       ErrorCode::kAuthenticationFailed, Delivery::kNotDelivered, true},
      {RD_KAFKA_RESP_ERR__FATAL, Persisted::kNot, ErrorCode::kFatal, Delivery::kNotDelivered, true},
      {RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS, Persisted::kNot, ErrorCode::kBrokerRejected,
       Delivery::kNotDelivered, true},
      {RD_KAFKA_RESP_ERR__STATE, Persisted::kNot, ErrorCode::kInternal, Delivery::kNotDelivered,
       true},
  };
  for (const Case& c : cases) {
    const Result r = MapError(c.err, c.persisted, "orders", "");
    const std::string name = rd_kafka_err2name(c.err);
    EXPECT_EQ(r.code, c.code) << name;
    EXPECT_EQ(r.delivery, c.delivery) << name;
    EXPECT_EQ(r.retriable, c.retriable) << name;
    EXPECT_THAT(r.message, HasSubstr("\"orders\"")) << name;
    EXPECT_THAT(r.message, HasSubstr(name)) << name;
  }
}

TEST(ResultMapping, NoErrorIsDelivered) {
  const Result r = MapError(RD_KAFKA_RESP_ERR_NO_ERROR, Persisted::kYes, "t", "");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.delivery, Delivery::kDelivered);
}

TEST(ResultMapping, AFailedReportThatClaimsPersistedIsUnknownNotDelivered) {
  const Result r = MapError(RD_KAFKA_RESP_ERR__TRANSPORT, Persisted::kYes, "t", "");
  EXPECT_EQ(r.delivery, Delivery::kUnknown);
}

TEST(ResultMapping, DetailTextIsKept) {
  const Result r =
      MapError(RD_KAFKA_RESP_ERR__TRANSPORT, Persisted::kNot, "t", "Connection refused");
  EXPECT_THAT(r.message, HasSubstr("Connection refused"));
}

TEST(TopicName, KafkaRulesAreEnforcedWithAReason) {
  EXPECT_EQ(TopicNameProblem("orders.v1_created-2"), std::nullopt);
  EXPECT_EQ(TopicNameProblem(std::string(249, 'a')), std::nullopt);
  EXPECT_THAT(*TopicNameProblem(""), HasSubstr("empty"));
  EXPECT_THAT(*TopicNameProblem(std::string(250, 'a')), HasSubstr("250 characters; at most 249"));
  EXPECT_THAT(*TopicNameProblem("."), HasSubstr("not allowed"));
  EXPECT_THAT(*TopicNameProblem(".."), HasSubstr("not allowed"));
  EXPECT_THAT(*TopicNameProblem("my topic"), HasSubstr("\" \" at position 2"));
  EXPECT_THAT(*TopicNameProblem("a/b"), HasSubstr("\"/\" at position 1"));
  EXPECT_THAT(*TopicNameProblem(std::string("a\0b", 3)), HasSubstr("\\x00"));
  EXPECT_THAT(*TopicNameProblem("caf\xc3\xa9"), HasSubstr("\\xc3"));
}

}  // namespace
}  // namespace dispatch::kafka::internal
