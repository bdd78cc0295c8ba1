// RelayConfig: every bad field gets its message (field, value, what is
// allowed), all of them at once; the environment wins over the file.
#include "relay/config.h"

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace dispatch::relay {
namespace {

constexpr const char* kValid =
    "[store]\nconninfo = \"host=127.0.0.1 dbname=app\"\n"
    "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n";

// The problems LoadConfig finds in `toml` (empty when it accepts it).
std::vector<ConfigProblem> Problems(const std::string& toml,
                                    std::map<std::string, std::string> env = {}) {
  try {
    ParseConfig(toml, "relay.toml", MapEnvironment(std::move(env)));
  } catch (const RelayConfigError& e) {
    return e.problems();
  }
  return {};
}

std::string All(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const ConfigProblem& p : problems) out += ToString(p) + "\n";
  return out;
}

struct BadField {
  const char* name;
  std::string toml;  // appended after kValid's sections where it names its own
  std::map<std::string, std::string> env;
  std::string field;
  std::string expected;  // a fragment of the problem's text
};

std::string Store(const std::string& lines) {
  return "[store]\n" + lines + "\n[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n";
}
std::string Kafka(const std::string& lines) {
  return "[store]\nconninfo = \"host=127.0.0.1 dbname=app\"\n[kafka]\n" + lines + "\n";
}
std::string With(const std::string& section_and_lines) {
  return std::string(kValid) + section_and_lines + "\n";
}

// Names the case in test listings (ctest shows GetParam()).
void PrintTo(const BadField& c, std::ostream* os) { *os << c.name; }

class ConfigBadField : public testing::TestWithParam<BadField> {};

TEST_P(ConfigBadField, IsNamedWithItsValueAndWhatIsAllowed) {
  const BadField& c = GetParam();
  const std::vector<ConfigProblem> problems = Problems(c.toml, c.env);
  bool found = false;
  for (const ConfigProblem& p : problems) {
    if (p.field == c.field && ToString(p).find(c.expected) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << "wanted " << c.field << " with \"" << c.expected << "\"; got:\n"
                     << All(problems);
}

const BadField kBadFields[] = {
    {"StoreKind",
     Store("kind = \"mysql\"\nconninfo = \"x\""),
     {},
     "store.kind",
     "\"mysql\": expected one of \"postgres\" or \"sqlite\""},
    {"ConninfoMissing", Store(""), {}, "store.conninfo", "required when store.kind"},
    {"ConninfoWithPassword",
     Store("conninfo = \"host=h password=hunter2\""),
     {},
     "store.conninfo",
     "without a password"},
    {"ConninfoUriWithPassword",
     Store("conninfo = \"postgresql://u:hunter2@h/db\""),
     {},
     "store.conninfo",
     "without a password"},
    {"TableWithSchema",
     Store("conninfo = \"host=h\"\ntable = \"app.events\""),
     {},
     "store.table",
     "\"app.events\": expected an unquoted lower-case SQL identifier ([a-z_][a-z0-9_]*, at "
     "most 40 characters, not a reserved word) without a schema (the connection's search_path "
     "chooses it); here: a schema is not allowed"},
    {"TableUpperCase",
     Store("conninfo = \"host=h\"\ntable = \"Events\""),
     {},
     "store.table",
     "here: holds 'E'"},
    {"TableTooLong",
     Store("conninfo = \"host=h\"\ntable = \"" + std::string(41, 'a') + "\""),
     {},
     "store.table",
     "here: 41 characters"},
    {"TableReservedWord",
     Store("conninfo = \"host=h\"\ntable = \"order\""),
     {},
     "store.table",
     "a reserved word"},
    {"TableOfSqlite",
     Store("kind = \"sqlite\"\npath = \"/tmp/x.db\"\ntable = \"events\""),
     {},
     "store.table",
     "\"outbox\" when store.kind is \"sqlite\""},
    {"ClaimIdleTimeout",
     Store("conninfo = \"host=h\"\nclaim_idle_timeout = \"5 minutes\""),
     {},
     "store.claim_idle_timeout",
     "\"5 minutes\": expected a duration"},
    {"Listen",
     Store("conninfo = \"host=h\"\nlisten = \"yes\""),
     {},
     "store.listen",
     "true or false"},
    {"PublishedRows",
     Store("conninfo = \"host=h\"\npublished_rows = \"drop\""),
     {},
     "store.published_rows",
     "\"mark\" or \"delete\""},
    {"PrepareStatements",
     Store("conninfo = \"host=h\"\nprepare_statements = 1"),
     {},
     "store.prepare_statements",
     "true or false"},
    {"SqlitePath", Store("kind = \"sqlite\""), {}, "store.path", "required when store.kind"},
    {"BrokersEmpty", Kafka("brokers = []"), {}, "kafka.brokers", "at least one"},
    {"BrokersNotAList", Kafka("brokers = 9092"), {}, "kafka.brokers", "an array of strings"},
    {"BrokerSyntax", Kafka("brokers = [\"nohost\"]"), {}, "kafka.brokers[0]", "brokers[0]"},
    {"RequiredAcks",
     Kafka("brokers = [\"h:1\"]\nrequired_acks = \"most\""),
     {},
     "kafka.required_acks",
     "\"all\", \"leader\" or \"none\""},
    {"WriteTimeout",
     Kafka("brokers = [\"h:1\"]\nwrite_timeout = \"-1s\""),
     {},
     "kafka.write_timeout",
     "a duration"},
    {"CloseTimeout",
     Kafka("brokers = [\"h:1\"]\nclose_timeout = 5"),
     {},
     "kafka.close_timeout",
     "a duration"},
    {"Partitioner",
     Kafka("brokers = [\"h:1\"]\npartitioner = \"round_robin\""),
     {},
     "kafka.partitioner",
     "\"murmur2_random\""},
    {"SecurityProtocol",
     Kafka("brokers = [\"h:1\"]\nsecurity_protocol = \"tls\""),
     {},
     "kafka.security_protocol",
     "\"sasl_ssl\""},
    {"CertWithoutKey",
     Kafka("brokers = [\"h:1\"]\ntls_cert_file = \"" DISPATCH_RELAY_EXAMPLE_TOML "\""),
     {},
     "kafka.tls_key_file",
     "set together with kafka.tls_cert_file"},
    {"CaFileMissing",
     Kafka("brokers = [\"h:1\"]\ntls_ca_file = \"/nonexistent/ca.pem\""),
     {},
     "kafka.tls_ca_file",
     "a readable file"},
    {"SaslMechanism",
     Kafka("brokers = [\"h:1\"]\nsasl_mechanism = \"KERBEROS\""),
     {},
     "kafka.sasl_mechanism",
     "\"SCRAM-SHA-512\""},
    {"SaslUsername",
     Kafka("brokers = [\"h:1\"]\nsasl_mechanism = \"PLAIN\""),
     {{"DISPATCH_RELAY_KAFKA_SASL_PASSWORD", "pw"}},
     "kafka.sasl_username",
     "a user name"},
    {"SaslPasswordMissing",
     Kafka("brokers = [\"h:1\"]\nsasl_mechanism = \"SCRAM-SHA-256\"\nsasl_username = \"u\""),
     {},
     "kafka.sasl_password",
     "DISPATCH_RELAY_KAFKA_SASL_PASSWORD"},
    {"PropertyType",
     With("[kafka.properties]\n\"linger.ms\" = 1.5"),
     {},
     "kafka.properties[linger.ms]",
     "a string, an integer or a boolean"},
    {"PropertyOwnedByAField",
     With("[kafka.properties]\n\"acks\" = \"1\""),
     {},
     "kafka.properties[acks]",
     "required_acks"},
    {"PropertyTransactions",
     With("[kafka.properties]\n\"transactional.id\" = \"t\""),
     {},
     "kafka.properties[transactional.id]",
     "transactions are not supported"},
    {"PropertyOwnedByARelayKey",
     With("[kafka.properties]\n\"ssl.ca.location\" = \"/ca\""),
     {},
     "kafka.properties[ssl.ca.location]",
     "kafka.tls_ca_file"},
    {"PropertiesFromEnvironment",
     kValid,
     {{"DISPATCH_RELAY_KAFKA_PROPERTIES", "linger.ms"}},
     "kafka.properties",
     "\"name=value\" entries"},
    {"BatchSize",
     With("[dispatcher]\nbatch_size = 0"),
     {},
     "dispatcher.batch_size",
     "0: expected an integer from 1 to 1000000"},
    {"BatchSizeFromEnvironment",
     kValid,
     {{"DISPATCH_RELAY_DISPATCHER_BATCH_SIZE", "many"}},
     "dispatcher.batch_size",
     "(DISPATCH_RELAY_DISPATCHER_BATCH_SIZE)"},
    {"PublishTimeout",
     With("[dispatcher]\npublish_timeout = \"0\""),
     {},
     "dispatcher.publish_timeout",
     "a positive duration"},
    {"RetryCap",
     With("[dispatcher]\nretry_cap = \"0\""),
     {},
     "dispatcher.retry_cap",
     "a positive duration"},
    {"RetryBaseAboveCap",
     With("[dispatcher]\nretry_base = \"1m\"\nretry_cap = \"10s\""),
     {},
     "dispatcher.retry_base",
     "at most dispatcher.retry_cap (10s)"},
    {"PollMinAboveMax",
     With("[dispatcher]\npoll_min = \"2s\""),
     {},
     "dispatcher.poll_min",
     "at most dispatcher.poll_max (1s)"},
    {"PollMax", With("[dispatcher]\npoll_max = \"soon\""), {}, "dispatcher.poll_max", "a duration"},
    {"WakeCoalesce",
     With("[dispatcher]\nwake_coalesce = \"2s\""),
     {},
     "dispatcher.wake_coalesce",
     "at most dispatcher.poll_max"},
    {"IdHeader", With("[dispatcher]\nid_header = \"\""), {}, "dispatcher.id_header", "not empty"},
    {"RetentionEnabled",
     With("[retention]\nenabled = \"sometimes\""),
     {},
     "retention.enabled",
     "true or false"},
    {"RetentionAge",
     With("[retention]\npublished_age = \"0\""),
     {},
     "retention.published_age",
     "a positive duration"},
    {"RetentionBatch",
     With("[retention]\nbatch = 0"),
     {},
     "retention.batch",
     "an integer from 1 to 100000"},
    {"RetentionInterval",
     With("[retention]\ninterval = \"1 minute\""),
     {},
     "retention.interval",
     "a duration"},
    {"HttpListen", With("[http]\nlisten = \"localhost\""), {}, "http.listen", "\"host:port\""},
    {"HttpListenPort",
     With("[http]\nlisten = \"127.0.0.1:99999\""),
     {},
     "http.listen",
     "port 0 to 65535"},
    {"HttpMaxLag", With("[http]\nmax_lag = \"0\""), {}, "http.max_lag", "a positive duration"},
    {"UnknownKey", With("[retention]\nenable = true"), {}, "retention.enable", "a known key"},
    {"UnknownSection", With("[kafak]\nbrokers = []"), {}, "kafak", "a known section"},
    {"NotToml", "[store\nkind = ", {}, "(file)", "valid TOML"},
};

INSTANTIATE_TEST_SUITE_P(Relay, ConfigBadField, testing::ValuesIn(kBadFields),
                         [](const testing::TestParamInfo<BadField>& param) {
                           return std::string(param.param.name);
                         });

TEST(RelayConfig, NamesEveryBadFieldAtOnceWithWhereItCameFrom) {
  const auto problems = Problems(
      "[store]\nkind = \"mysql\"\nconninfo = \"host=h\"\n"
      "[kafka]\nbrokers = [\"h:1\"]\nrequired_acks = \"most\"\n"
      "[dispatcher]\nbatch_size = 0\n"
      "[retention]\ninterval = \"never\"\n",
      {{"DISPATCH_RELAY_HTTP_LISTEN", "nowhere"}});
  ASSERT_EQ(problems.size(), 5u) << All(problems);
  EXPECT_EQ(problems[0].field, "store.kind");
  EXPECT_EQ(problems[0].origin, "relay.toml:2:8");
  EXPECT_EQ(problems[4].field, "http.listen");
  EXPECT_EQ(problems[4].origin, "DISPATCH_RELAY_HTTP_LISTEN");
}

TEST(RelayConfig, TheEnvironmentWinsOverTheFile) {
  const RelayConfig c = ParseConfig(
      std::string(kValid) + "[dispatcher]\npublish_timeout = \"0\"\nbatch_size = 10\n",
      "relay.toml",
      MapEnvironment({{"DISPATCH_RELAY_KAFKA_BROKERS", "b:2, c:3"},
                      {"DISPATCH_RELAY_DISPATCHER_PUBLISH_TIMEOUT", "250ms"},
                      {"DISPATCH_RELAY_STORE_LISTEN", "false"},
                      {"DISPATCH_RELAY_STORE_CONNINFO", "host=db dbname=prod"},
                      {"DISPATCH_RELAY_KAFKA_PROPERTIES", "linger.ms=5,compression.type=zstd"},
                      {"DISPATCH_RELAY_RETENTION_ENABLED", "yes"},
                      {"DISPATCH_RELAY_RETENTION_PUBLISHED_AGE", "1h30m"}}));
  EXPECT_EQ(c.kafka.config.brokers, (std::vector<std::string>{"b:2", "c:3"}));
  EXPECT_EQ(c.dispatcher.publish_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c.dispatcher.batch_size, 10u);
  EXPECT_FALSE(c.store.postgres.listen);
  EXPECT_EQ(c.store.conninfo, "host=db dbname=prod");
  EXPECT_EQ(c.kafka.config.properties.at("linger.ms"), "5");
  EXPECT_EQ(c.kafka.config.properties.at("compression.type"), "zstd");
  EXPECT_TRUE(c.retention.enabled);
  EXPECT_EQ(c.retention.published_age, std::chrono::minutes(90));
}

TEST(RelayConfig, DefaultsAreTheLibrarysAndLoopback) {
  const RelayConfig c = ParseConfig(kValid, "relay.toml", MapEnvironment({}));
  EXPECT_EQ(c.http.listen, "127.0.0.1:9464");
  EXPECT_EQ(c.store.table, "outbox");
  EXPECT_FALSE(c.retention.enabled);
  EXPECT_EQ(c.dispatcher.batch_size, DispatcherOptions{}.batch_size);
  EXPECT_EQ(c.kafka.config.required_acks, kafka::RequiredAcks::All);
  EXPECT_EQ(c.kafka.config.close_timeout, kafka::KafkaConfig{}.close_timeout);
}

TEST(RelayConfig, AnotherTableNameReachesTheStoreOptions) {
  const RelayConfig c = ParseConfig(Store("conninfo = \"host=h\"\ntable = \"order_events_2\""),
                                    "relay.toml", MapEnvironment({}));
  EXPECT_EQ(c.store.table, "order_events_2");
  EXPECT_EQ(c.store.postgres.table, "order_events_2");
}

TEST(RelayConfig, TlsAndSaslKeysBecomeLibrdkafkaProperties) {
  const RelayConfig c =
      ParseConfig(Kafka("brokers = [\"h:1\"]\ntls_ca_file = \"" DISPATCH_RELAY_EXAMPLE_TOML
                        "\"\nsasl_mechanism = \"scram-sha-512\"\nsasl_username = \"relay\""),
                  "relay.toml", MapEnvironment({{"DISPATCH_RELAY_KAFKA_SASL_PASSWORD", "pw"}}));
  const auto props = c.Kafka().properties;
  EXPECT_EQ(props.at("security.protocol"), "sasl_ssl");
  EXPECT_EQ(props.at("ssl.ca.location"), DISPATCH_RELAY_EXAMPLE_TOML);
  EXPECT_EQ(props.at("sasl.mechanisms"), "SCRAM-SHA-512");
  EXPECT_EQ(props.at("sasl.username"), "relay");
  EXPECT_EQ(props.at("sasl.password"), "pw");
}

TEST(RelayConfig, TheExampleFileIsValid) {
  const RelayConfig c = LoadConfig(DISPATCH_RELAY_EXAMPLE_TOML, MapEnvironment({}));
  EXPECT_EQ(c.store.kind, StoreKind::kPostgres);
  EXPECT_TRUE(c.retention.enabled);
}

TEST(RelayConfig, AMissingFileIsNamed) {
  try {
    LoadConfig("/nonexistent/relay.toml", MapEnvironment({}));
    FAIL() << "accepted a missing file";
  } catch (const RelayConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/relay.toml"), std::string::npos);
  }
}

TEST(RelayConfig, DurationsParseAndPrint) {
  EXPECT_EQ(ParseDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(ParseDuration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(ParseDuration("7d"), std::chrono::hours(168));
  EXPECT_EQ(ParseDuration("0"), std::chrono::milliseconds(0));
  EXPECT_FALSE(ParseDuration("10"));
  EXPECT_FALSE(ParseDuration("1.5s"));
  EXPECT_FALSE(ParseDuration("-1s"));
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(90'250)), "1m30s250ms");
}

}  // namespace
}  // namespace dispatch::relay
