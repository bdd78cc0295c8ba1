#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "dispatch/kafka/kafka_publisher.h"
#include "kafka/internal.h"

namespace dispatch::kafka {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// An address nothing listens on: constructing a publisher needs no broker.
KafkaConfig Valid() { return DefaultKafkaConfig({"127.0.0.1:9"}); }

// Constructs a publisher from `config` and returns the ConfigError it throws.
ConfigError Rejected(const KafkaConfig& config) {
  try {
    KafkaPublisher publisher(config);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "the configuration was accepted";
  return ConfigError("", "");
}

std::string Property(const KafkaConfig& config, const std::string& name) {
  for (const auto& [k, v] : EffectiveProperties(config)) {
    if (k == name) return v;
  }
  return "(unset)";
}

// librdkafka before 2.6.1 cannot log in with SCRAM to Kafka 4; the
// authentication failure names the version needed, and only then.
TEST(Config, ScramOnALibrdkafkaOlderThan261NamesTheVersionNeeded) {
  KafkaConfig scram = DefaultKafkaConfig({"localhost:9092"});
  scram.properties["SASL.Mechanisms"] = "scram-sha-256";
  const std::string caveat = internal::ScramCaveat(scram, 0x020002ff, "2.0.2");
  EXPECT_THAT(caveat, HasSubstr("librdkafka 2.0.2 cannot log in with SCRAM to a Kafka 4 broker"));
  EXPECT_THAT(caveat, HasSubstr("librdkafka 2.6.1 or later"));

  EXPECT_EQ(internal::ScramCaveat(scram, 0x020601ff, "2.6.1"), "");
  EXPECT_EQ(internal::ScramCaveat(scram, 0x020e02ff, "2.14.2"), "");
  KafkaConfig plain = DefaultKafkaConfig({"localhost:9092"});
  plain.properties["sasl.mechanism"] = "PLAIN";
  EXPECT_EQ(internal::ScramCaveat(plain, 0x020002ff, "2.0.2"), "");
  EXPECT_EQ(internal::ScramCaveat(DefaultKafkaConfig({"localhost:9092"}), 0x020002ff, "2.0.2"), "");
}

TEST(Config, DefaultsAreTheDocumentedProductionDefaults) {
  const KafkaConfig config = DefaultKafkaConfig({"broker-1:9092", "broker-2:9092"});
  EXPECT_EQ(config.required_acks, RequiredAcks::All);
  EXPECT_EQ(config.write_timeout, 10s);
  EXPECT_EQ(config.partitioner, Partitioner::kMurmur2Random);
  EXPECT_EQ(Property(config, "bootstrap.servers"), "broker-1:9092,broker-2:9092");
  EXPECT_EQ(Property(config, "client.id"), "dispatch-kafka");
  EXPECT_EQ(Property(config, "acks"), "-1");
  // acks All: librdkafka times nothing out; write_timeout is the
  // publisher's own bound (docs/reliability.md, "A key's order through
  // failures").
  EXPECT_EQ(Property(config, "message.timeout.ms"), "0");
  EXPECT_EQ(Property(config, "partitioner"), "murmur2_random");
  EXPECT_EQ(Property(config, "enable.idempotence"), "true");
  EXPECT_EQ(Property(config, "linger.ms"), "0");
  EXPECT_EQ(Property(config, "allow.auto.create.topics"), "false");
}

TEST(Config, RequiredAcksMapsToKafkaValuesAndIdempotenceOnlyWithAll) {
  KafkaConfig config = Valid();
  config.required_acks = RequiredAcks::Leader;
  EXPECT_EQ(Property(config, "acks"), "1");
  EXPECT_EQ(Property(config, "enable.idempotence"), "(unset)");
  // Without idempotence the write timeout is librdkafka's own too.
  EXPECT_EQ(Property(config, "message.timeout.ms"), "10000");
  config.required_acks = RequiredAcks::None;
  EXPECT_EQ(Property(config, "acks"), "0");
  EXPECT_EQ(static_cast<int>(RequiredAcks::All), -1);
}

TEST(Config, UserPropertiesComeAfterDefaultsSoTheyOverride) {
  KafkaConfig config = Valid();
  config.properties["linger.ms"] = "5";
  const auto props = EffectiveProperties(config);
  std::string last;
  for (const auto& [k, v] : props) {
    if (k == "linger.ms") last = v;
  }
  EXPECT_EQ(last, "5");
}

TEST(Config, ZeroWriteTimeoutMeansNone) {
  KafkaConfig config = Valid();
  config.write_timeout = 0ms;
  EXPECT_EQ(Property(config, "message.timeout.ms"), "0");
  EXPECT_NO_THROW(KafkaPublisher{config});
}

TEST(Config, UnknownTopicVerdictFitsInsideTheWriteTimeout) {
  // librdkafka decides on a 1 s scan after the propagation window: the window
  // is half the write timeout, at most 5 s, and ends 1.5 s before it.
  KafkaConfig config = Valid();
  config.write_timeout = 10s;
  EXPECT_EQ(Property(config, "topic.metadata.propagation.max.ms"), "5000");
  config.write_timeout = 60s;
  EXPECT_EQ(Property(config, "topic.metadata.propagation.max.ms"), "5000");
  config.write_timeout = 4s;
  EXPECT_EQ(Property(config, "topic.metadata.propagation.max.ms"), "2000");
  config.write_timeout = 2s;
  EXPECT_EQ(Property(config, "topic.metadata.propagation.max.ms"), "500");
  config.write_timeout = 1s;
  EXPECT_EQ(Property(config, "topic.metadata.propagation.max.ms"), "0");
  EXPECT_NO_THROW(KafkaPublisher{config});
}

TEST(Config, EmptyBrokerListIsRejected) {
  const ConfigError e = Rejected(DefaultKafkaConfig());
  EXPECT_EQ(e.field(), "brokers");
  EXPECT_THAT(e.what(), HasSubstr("host:port"));
}

TEST(Config, BrokerEntriesAreCheckedOneByOne) {
  struct Case {
    std::string entry;
    std::string expected;
  };
  const Case cases[] = {
      {"", "empty entry"},
      {"localhost", "has no port"},
      {"localhost:", "not a number"},
      {"localhost:http", "not a number"},
      {"localhost:0", "out of range; allowed 1..65535"},
      {"localhost:65536", "out of range; allowed 1..65535"},
      {"localhost:99999999999", "out of range"},
      {":9092", "has no host"},
      {"a:1,b:2", "one \"host:port\" per entry"},
      {"::1:9092", "IPv6"},
      {"[::1", "unclosed"},
      {"[::1]", "has no port"},
  };
  for (const Case& c : cases) {
    KafkaConfig config = Valid();
    config.brokers = {"good:9092", c.entry};
    const ConfigError e = Rejected(config);
    EXPECT_EQ(e.field(), "brokers[1]") << c.entry;
    EXPECT_THAT(e.what(), HasSubstr(c.expected)) << c.entry;
  }
}

TEST(Config, ValidBrokerFormsAreAccepted) {
  KafkaConfig config = Valid();
  config.brokers = {"localhost:9092", "10.0.0.1:1", "[::1]:65535", "PLAINTEXT://kafka-0:9092"};
  EXPECT_NO_THROW(EffectiveProperties(config));
}

TEST(Config, NegativeTimeoutsAreRejected) {
  KafkaConfig config = Valid();
  config.write_timeout = -1ms;
  ConfigError e = Rejected(config);
  EXPECT_EQ(e.field(), "write_timeout");
  EXPECT_THAT(e.what(), HasSubstr("-1 ms is negative"));

  config = Valid();
  config.close_timeout = -5s;
  e = Rejected(config);
  EXPECT_EQ(e.field(), "close_timeout");
  EXPECT_THAT(e.what(), HasSubstr("negative"));
}

TEST(Config, OutOfRangeAcksIsRejected) {
  KafkaConfig config = Valid();
  config.required_acks = static_cast<RequiredAcks>(2);
  const ConfigError e = Rejected(config);
  EXPECT_EQ(e.field(), "required_acks");
  EXPECT_THAT(e.what(), HasSubstr("None (0), Leader (1) or All (-1)"));
}

TEST(Config, UnknownPropertyIsRejectedByName) {
  KafkaConfig config = Valid();
  config.properties["linger.msec"] = "5";
  const ConfigError e = Rejected(config);
  EXPECT_EQ(e.field(), "properties[linger.msec]");
  EXPECT_THAT(e.what(), HasSubstr("linger.msec"));
}

TEST(Config, InvalidPropertyValueIsRejectedByName) {
  KafkaConfig config = Valid();
  config.properties["compression.type"] = "zip";
  const ConfigError e = Rejected(config);
  EXPECT_EQ(e.field(), "properties[compression.type]");
  EXPECT_THAT(e.what(), HasSubstr("zip"));
}

TEST(Config, PropertiesOwnedByAFieldAreRejected) {
  for (const char* name :
       {"bootstrap.servers", "acks", "message.timeout.ms", "client.id", "partitioner", "ACKS"}) {
    KafkaConfig config = Valid();
    config.properties[name] = "1";
    const ConfigError e = Rejected(config);
    EXPECT_THAT(e.what(), HasSubstr("set that field instead")) << name;
  }
}

TEST(Config, ExplicitIdempotenceNeedsAcksAll) {
  KafkaConfig config = Valid();
  config.required_acks = RequiredAcks::Leader;
  config.properties["enable.idempotence"] = "true";
  const ConfigError e = Rejected(config);
  EXPECT_EQ(e.field(), "properties[enable.idempotence]");
  EXPECT_THAT(e.what(), HasSubstr("needs required_acks All (it is Leader)"));

  config.required_acks = RequiredAcks::All;
  EXPECT_NO_THROW(KafkaPublisher{config});
  config.properties["enable.idempotence"] = "false";  // an explicit opt-out is allowed
  EXPECT_NO_THROW(KafkaPublisher{config});
}

TEST(Config, SecretValuesNeverAppearInErrorsOrDumps) {
  const std::string secret = "hunter2-very-secret";
  KafkaConfig config = Valid();
  config.properties["security.protocol"] = "SASL_SSL";
  config.properties["sasl.mechanisms"] = "PLAIN";
  config.properties["sasl.username"] = "svc";
  config.properties["sasl.password"] = secret;
  config.properties["ssl.key.password"] = secret;
  for (const auto& [k, v] : EffectiveProperties(config)) {
    EXPECT_THAT(v, Not(HasSubstr(secret))) << k;
  }
  // Force a failure after the secrets were applied.
  config.properties["ssl.ca.location"] = "/nonexistent/ca.pem";
  const ConfigError e = Rejected(config);
  EXPECT_THAT(e.what(), Not(HasSubstr(secret)));

  // A failure at producer creation, with a secret in play.
  config = Valid();
  config.properties["ssl.key.password"] = secret;
  config.properties["ssl.key.location"] = "/nonexistent/" + secret + ".key";
  config.properties["security.protocol"] = "SSL";
  const ConfigError creation = Rejected(config);
  EXPECT_THAT(creation.what(), Not(HasSubstr(secret)));
}

TEST(Config, SettingsThatWouldLoseDeliveryReportsAreRejected) {
  KafkaConfig config = Valid();
  config.properties["delivery.report.only.error"] = "true";
  ConfigError e = Rejected(config);
  EXPECT_EQ(e.field(), "properties[delivery.report.only.error]");
  EXPECT_THAT(e.what(), HasSubstr("waits for its delivery report"));

  config = Valid();
  config.properties["transactional.id"] = "tx-1";
  e = Rejected(config);
  EXPECT_EQ(e.field(), "properties[transactional.id]");
  EXPECT_THAT(e.what(), HasSubstr("transactions are not supported"));
}

TEST(Config, StatisticsIntervalNeedsAHook) {
  KafkaConfig config = Valid();
  config.statistics_interval = 1s;
  ConfigError e = Rejected(config);
  EXPECT_EQ(e.field(), "statistics");
  config.statistics = [](std::string_view) {};
  EXPECT_EQ(Property(config, "statistics.interval.ms"), "1000");
  config.statistics_interval = -1s;
  EXPECT_EQ(Rejected(config).field(), "statistics_interval");
  config = Valid();
  config.properties["statistics.interval.ms"] = "100";
  EXPECT_THAT(Rejected(config).what(), HasSubstr("KafkaConfig::statistics_interval"));
}

TEST(Config, IdempotenceSpelledAnyWayNeedsAcksAll) {
  for (const char* value : {"true", "TRUE", "t", "1"}) {
    KafkaConfig config = Valid();
    config.required_acks = RequiredAcks::None;
    config.properties["enable.idempotence"] = value;
    const ConfigError e = Rejected(config);
    EXPECT_THAT(e.what(), HasSubstr("needs required_acks All (it is None)")) << value;
  }
}

TEST(Config, RedactReplacesEveryOccurrence) {
  EXPECT_EQ(internal::Redact("a pw b pw", "pw"), "a [redacted] b [redacted]");
  EXPECT_EQ(internal::Redact("nothing", ""), "nothing");
  EXPECT_TRUE(internal::IsSecretProperty("sasl.password"));
  EXPECT_TRUE(internal::IsSecretProperty("ssl.keystore.password"));
  EXPECT_TRUE(internal::IsSecretProperty("sasl.oauthbearer.client.secret"));
  EXPECT_FALSE(internal::IsSecretProperty("sasl.username"));
}

}  // namespace
}  // namespace dispatch::kafka
