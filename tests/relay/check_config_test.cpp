// dispatch-relay --check-config and the command line, through the built
// binary: exit codes 0 and 2, every bad field named, no secret printed.
#include <gtest/gtest.h>

#include <string>

#include "relay_process_support.h"

namespace dispatch::relay::test {
namespace {

constexpr const char* kSecret = "s3cr3t-Value-42";

TEST(CheckConfig, AcceptsTheExampleFileAndRedactsSecrets) {
  const Finished r = RunRelay(
      {"--check-config", DISPATCH_RELAY_EXAMPLE_TOML},
      {std::string("DISPATCH_RELAY_STORE_PASSWORD=") + kSecret,
       std::string("DISPATCH_RELAY_KAFKA_SASL_PASSWORD=") + kSecret,
       "DISPATCH_RELAY_KAFKA_SASL_MECHANISM=PLAIN", "DISPATCH_RELAY_KAFKA_SASL_USERNAME=relay"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[store]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("password = \"<redacted>\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sasl_password = \"<redacted>\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("security.protocol = sasl_plaintext"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kSecret), std::string::npos) << r.output;
}

TEST(CheckConfig, ShowsTheEnvironmentsOverrides) {
  const Finished r = RunRelay(
      {"--check-config", DISPATCH_RELAY_EXAMPLE_TOML},
      {"DISPATCH_RELAY_KAFKA_BROKERS=k1:9092,k2:9092", "DISPATCH_RELAY_DISPATCHER_BATCH_SIZE=77"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("brokers = [\"k1:9092\", \"k2:9092\"]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("batch_size = 77"), std::string::npos) << r.output;
}

TEST(CheckConfig, NamesEveryBadFieldAndExits2WithoutShowingSecrets) {
  const std::string path = WriteTempFile(
      "bad.toml", "[store]\nconninfo = \"host=h\"\npassword = \"" + std::string(kSecret) +
                      "\"\n[kafka]\nbrokers = [\"h:1\"]\nrequired_acks = \"most\"\n"
                      "[dispatcher]\npublish_timeout = \"soon\"\n");
  const Finished r = RunRelay({"--check-config", path},
                              {std::string("DISPATCH_RELAY_KAFKA_SASL_PASSWORD=") + kSecret});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("3 bad configuration value(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("store.password = <redacted>"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kafka.required_acks = \"most\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dispatcher.publish_timeout = \"soon\""), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kSecret), std::string::npos) << r.output;
}

TEST(CheckConfig, LibrdkafkasOwnRefusalIsABadField) {
  const std::string path =
      WriteTempFile("unknown_property.toml",
                    "[store]\nconninfo = \"host=h\"\n[kafka]\nbrokers = [\"h:1\"]\n"
                    "[kafka.properties]\n\"no.such.property\" = \"1\"\n");
  const Finished r = RunRelay({"--check-config", path});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("kafka.properties[no.such.property]"), std::string::npos) << r.output;
}

TEST(CheckConfig, BadCommandLinesExit2AndHelpExits0) {
  EXPECT_EQ(RunRelay({}).exit_code, 2);
  EXPECT_EQ(RunRelay({"--check-config"}).exit_code, 2);
  EXPECT_EQ(RunRelay({"--check-config", "/nonexistent/relay.toml"}).exit_code, 2);
  EXPECT_EQ(RunRelay({"--frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunRelay({"status"}).exit_code, 2);
  const Finished help = RunRelay({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("exit codes:"), std::string::npos) << help.output;
}

TEST(CheckConfig, ABadCommandArgumentExits2BeforeTheStoreIsAsked) {
  // The store is unreachable: exit 2 (not 1) shows it was never asked.
  const std::string path =
      WriteTempFile("unreachable.toml",
                    "[store]\nconninfo = \"host=127.0.0.1 port=1 dbname=x connect_timeout=1\"\n"
                    "[kafka]\nbrokers = [\"h:1\"]\n");
  EXPECT_EQ(RunRelay({"requeue", "--config", path}).exit_code, 2);
  EXPECT_EQ(RunRelay({"purge", "--config", path, "--older-than", "soon"}).exit_code, 2);
  EXPECT_EQ(RunRelay({"status", "--config", path}).exit_code, 1);
}

}  // namespace
}  // namespace dispatch::relay::test
