// A connection string may hold a password: no error text repeats it.
#include <gtest/gtest.h>

#include <string>

#include "dispatch/stores/postgres_store.h"
#include "postgres/postgres_test_support.h"

namespace dispatch::test {
namespace {

// The error of constructing a store on `conninfo`.
std::string ConstructionError(const std::string& conninfo) {
  try {
    PostgresStore store(conninfo);
  } catch (const StoreError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the store connected";
  return "";
}

constexpr const char* kSecret = "s3cret-Pa55word";

TEST(PostgresSecrets, AWrongPasswordIsReportedWithoutIt) {
  ScratchDatabase db;
  const std::string error = ConstructionError(db.Conninfo() + " password=" + kSecret);
  EXPECT_NE(error.find("connect failed"), std::string::npos) << error;
  EXPECT_NE(error.find("password authentication failed"), std::string::npos) << error;
  EXPECT_EQ(error.find(kSecret), std::string::npos) << error;
}

TEST(PostgresSecrets, AnUnreachableServerIsReportedOnOneLineWithoutThePassword) {
  // Nothing listens on port 1; libpq's reason spans two lines.
  const std::string error =
      ConstructionError(std::string("host=127.0.0.1 port=1 password=") + kSecret);
  EXPECT_NE(error.find("connect failed"), std::string::npos) << error;
  EXPECT_NE(error.find("Connection refused"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_EQ(error.find(kSecret), std::string::npos) << error;
}

TEST(PostgresSecrets, AConnectionStringThatDoesNotParseIsNotRepeated) {
  const std::string error =
      ConstructionError(std::string("host=127.0.0.1 password='") + kSecret + " dbname=x");
  EXPECT_NE(error.find("does not parse"), std::string::npos) << error;
  EXPECT_EQ(error.find(kSecret), std::string::npos) << error;
  EXPECT_EQ(error.find("127.0.0.1"), std::string::npos) << error;
}

// The error of a role with `password` that asks for a database of that
// name, which does not exist: the server's reason quotes the name.
std::string ErrorQuotingThePassword(const ScratchDatabase& db, const std::string& password) {
  const std::string role = db.name() + "_role";
  Query(ServerConninfo(), "CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'");
  const std::string error = ConstructionError(db.Conninfo() + " user=" + role + " password='" +
                                              password + "' dbname='" + password + "'");
  Query(ServerConninfo(), "DROP ROLE " + role);
  return error;
}

TEST(PostgresSecrets, ThePasswordIsMaskedWhereTheServerQuotesIt) {
  ScratchDatabase db;
  const std::string error = ErrorQuotingThePassword(db, kSecret);
  EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
  EXPECT_NE(error.find("********"), std::string::npos) << error;
  EXPECT_EQ(error.find(kSecret), std::string::npos) << error;
}

TEST(PostgresSecrets, APasswordThatIsPartOfTheMaskIsMaskedOnce) {
  ScratchDatabase db;
  const std::string error = ErrorQuotingThePassword(db, "*");
  EXPECT_NE(error.find("database \"********\" does not exist"), std::string::npos) << error;
}

TEST(PostgresSecrets, AnErrorAfterConnectingDoesNotNameThePassword) {
  ScratchDatabase db;
  const std::string role = db.name() + "_role";
  Query(ServerConninfo(), "CREATE ROLE " + role + " LOGIN PASSWORD '" + kSecret + "'");
  std::string error;
  try {
    // The role may not create the outbox table in the database.
    Query(db.Conninfo(), "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    PostgresStore store(db.Conninfo() + " user=" + role + " password=" + kSecret);
  } catch (const StoreError& e) {
    error = e.what();
  }
  Query(ServerConninfo(), "DROP ROLE " + role);
  EXPECT_NE(error.find("migrate"), std::string::npos) << error;
  EXPECT_NE(error.find("permission denied"), std::string::npos) << error;
  EXPECT_EQ(error.find(kSecret), std::string::npos) << error;
}

}  // namespace
}  // namespace dispatch::test
