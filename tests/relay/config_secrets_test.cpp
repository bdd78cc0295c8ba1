// Secrets: from the environment or from files, refused inline in the file,
// and never in an error or in the effective configuration.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "relay/config.h"

namespace dispatch::relay {
namespace {

constexpr const char* kSecret = "s3cr3t-Value-42";

const std::string kBase =
    "[store]\nconninfo = \"host=127.0.0.1 dbname=app\"\n"
    "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n";

// A file holding `content`, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    path_ = testing::TempDir() + "relay_secret_" + std::to_string(getpid()) + "_" +
            std::to_string(counter_++);
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

// What LoadConfig says about `toml`: every problem, or the effective
// configuration when it accepts it.
std::string Outcome(const std::string& toml, std::map<std::string, std::string> env) {
  try {
    return Describe(ParseConfig(toml, "relay.toml", MapEnvironment(std::move(env))));
  } catch (const RelayConfigError& e) {
    return e.what();
  }
}

TEST(RelaySecrets, StorePasswordFromTheEnvironment) {
  const RelayConfig c = ParseConfig(kBase, "relay.toml",
                                    MapEnvironment({{"DISPATCH_RELAY_STORE_PASSWORD", kSecret}}));
  EXPECT_EQ(c.store.password, kSecret);
}

TEST(RelaySecrets, SecretsFromFilesLoseTheirTrailingNewline) {
  const TempFile store(std::string(kSecret) + "\n");
  const TempFile sasl(std::string(kSecret) + "-sasl\r\n");
  const TempFile key(std::string(kSecret) + "-key");
  const RelayConfig c = ParseConfig(
      "[store]\nconninfo = \"host=h\"\npassword_file = \"" + store.path() +
          "\"\n[kafka]\nbrokers = [\"h:1\"]\nsasl_mechanism = \"PLAIN\"\nsasl_username = "
          "\"u\"\nsasl_password_file = \"" +
          sasl.path() + "\"\ntls_key_password_file = \"" + key.path() + "\"\n",
      "relay.toml", MapEnvironment({}));
  EXPECT_EQ(c.store.password, kSecret);
  EXPECT_EQ(c.kafka.sasl_password, std::string(kSecret) + "-sasl");
  EXPECT_EQ(c.Kafka().properties.at("ssl.key.password"), std::string(kSecret) + "-key");
}

TEST(RelaySecrets, InlineSecretsAreRefusedWithoutShowingThem) {
  const std::string toml = "[store]\nconninfo = \"host=h\"\npassword = \"" + std::string(kSecret) +
                           "\"\n[kafka]\nbrokers = [\"h:1\"]\nsasl_password = \"" + kSecret +
                           "\"\ntls_key_password = \"" + kSecret +
                           "\"\n[kafka.properties]\n\"sasl.password\" = \"" + kSecret + "\"\n";
  const std::string out = Outcome(toml, {});
  EXPECT_NE(out.find("store.password = <redacted>: expected no secret in the configuration file: "
                     "set DISPATCH_RELAY_STORE_PASSWORD or password_file"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("kafka.sasl_password"), std::string::npos) << out;
  EXPECT_NE(out.find("kafka.tls_key_password"), std::string::npos) << out;
  EXPECT_NE(out.find("kafka.properties[sasl.password]"), std::string::npos) << out;
  EXPECT_EQ(out.find(kSecret), std::string::npos) << out;
}

TEST(RelaySecrets, APasswordInTheConnectionStringIsRefusedWithoutShowingIt) {
  const std::string out = Outcome("[store]\nconninfo = \"host=h password=" + std::string(kSecret) +
                                      "\"\n" + "[kafka]\nbrokers = [\"h:1\"]\n",
                                  {});
  EXPECT_NE(out.find("store.conninfo = <redacted>"), std::string::npos) << out;
  EXPECT_EQ(out.find(kSecret), std::string::npos) << out;
}

TEST(RelaySecrets, BothSourcesOrAnUnreadableFileAreRefused) {
  const TempFile file(kSecret);
  std::string out = Outcome("[store]\nconninfo = \"host=h\"\npassword_file = \"" + file.path() +
                                "\"\n[kafka]\nbrokers = [\"h:1\"]\n",
                            {{"DISPATCH_RELAY_STORE_PASSWORD", kSecret}});
  EXPECT_NE(out.find("one source"), std::string::npos) << out;
  EXPECT_EQ(out.find(kSecret), std::string::npos) << out;

  out = Outcome(
      "[store]\nconninfo = \"host=h\"\npassword_file = \"/nonexistent/pw\"\n"
      "[kafka]\nbrokers = [\"h:1\"]\n",
      {});
  EXPECT_NE(out.find("store.password_file = \"/nonexistent/pw\": expected a readable file"),
            std::string::npos)
      << out;
}

TEST(RelaySecrets, TheEffectiveConfigurationRedactsEverySecret) {
  const std::string out = Outcome(
      "[store]\nconninfo = \"host=h\"\n[kafka]\nbrokers = [\"h:1\"]\n"
      "sasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n",
      {{"DISPATCH_RELAY_STORE_PASSWORD", kSecret},
       {"DISPATCH_RELAY_KAFKA_SASL_PASSWORD", kSecret},
       {"DISPATCH_RELAY_KAFKA_TLS_KEY_PASSWORD", kSecret},
       {"DISPATCH_RELAY_KAFKA_PROPERTIES",
        std::string("sasl.oauthbearer.client.secret=") + kSecret}});
  EXPECT_NE(out.find("[store]"), std::string::npos) << out;
  EXPECT_NE(out.find("password = \"<redacted>\""), std::string::npos) << out;
  EXPECT_NE(out.find("sasl.password = <redacted>"), std::string::npos) << out;
  EXPECT_EQ(out.find(kSecret), std::string::npos) << out;
}

TEST(RelaySecrets, ABadSecretFromTheEnvironmentIsNotShown) {
  // A malformed properties entry whose name says it is a secret.
  const std::string out = Outcome(
      kBase, {{"DISPATCH_RELAY_KAFKA_PROPERTIES", std::string("ssl.key.password") + kSecret}});
  EXPECT_NE(out.find("kafka.properties"), std::string::npos) << out;
  EXPECT_EQ(out.find(kSecret), std::string::npos) << out;
}

}  // namespace
}  // namespace dispatch::relay
