// EncodeHeaders / DecodeHeaders: the headers column every store shares.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dispatch/outbox_store.h"

namespace dispatch {
namespace {

using ::testing::HasSubstr;

TEST(OutboxHeaders, RoundTripKeepsOrderRepeatsEmptyAndBinaryBytes) {
  const std::vector<Header> headers = {
      {"a", std::string("\0\xff\x00z", 4)}, {"a", ""}, {"", "x"}, {std::string("k\0", 2), "v"}};
  EXPECT_EQ(DecodeHeaders(EncodeHeaders(headers)), headers);
}

TEST(OutboxHeaders, NoHeadersIsAnEmptyColumn) {
  EXPECT_EQ(EncodeHeaders({}), "");
  EXPECT_TRUE(DecodeHeaders("").empty());
}

TEST(OutboxHeaders, LengthsAreFourBytesLittleEndian) {
  EXPECT_EQ(EncodeHeaders({{"k", "vv"}}), std::string("\x01\x00\x00\x00k\x02\x00\x00\x00vv", 11));
}

TEST(OutboxHeaders, TruncatedLengthIsAStoreErrorNamingTheColumn) {
  try {
    DecodeHeaders(std::string("\x01\x00", 2));
    FAIL() << "decoded a truncated length";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), HasSubstr("corrupt headers column"));
    EXPECT_THAT(e.what(), HasSubstr("key"));
  }
}

TEST(OutboxHeaders, TruncatedValueIsAStoreErrorSayingHowManyBytesWereExpected) {
  // Key "k", then a value announced as 5 bytes with 2 present.
  try {
    DecodeHeaders(
        std::string("\x01\x00\x00\x00k\x05\x00\x00\x00"
                    "ab",
                    11));
    FAIL() << "decoded a truncated value";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), HasSubstr("corrupt headers column: a header value of 5 bytes"));
  }
}

}  // namespace
}  // namespace dispatch
