// The API key check (server/auth.h): header parsing, which requests are public, the 401 answer,
// and where the key comes from (environment, key file, generated file).
#include "server/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace hearth::server {
namespace {

namespace fs = std::filesystem;

TEST(ApiKey, AcceptsOnlyBearerWithTheKey) {
  const ApiKey k("s3cret-key");
  EXPECT_TRUE(k.matches("Bearer s3cret-key"));
  // The scheme is case-insensitive (RFC 9110); extra spaces and trailing blanks are tolerated.
  EXPECT_TRUE(k.matches("bearer s3cret-key"));
  EXPECT_TRUE(k.matches("BEARER s3cret-key"));
  EXPECT_TRUE(k.matches("BeArEr   s3cret-key  "));
  // The key itself is case-sensitive.
  EXPECT_FALSE(k.matches("Bearer S3CRET-KEY"));
  // Wrong lengths: a prefix, a longer key, one character off.
  EXPECT_FALSE(k.matches("Bearer s3cret"));
  EXPECT_FALSE(k.matches("Bearer s3cret-key2"));
  EXPECT_FALSE(k.matches("Bearer s3cret-kez"));
  EXPECT_FALSE(k.matches("Bearer x"));
  // No key, another scheme, no space after the scheme.
  EXPECT_FALSE(k.matches(""));
  EXPECT_FALSE(k.matches("Bearer"));
  EXPECT_FALSE(k.matches("Bearer "));
  EXPECT_FALSE(k.matches("Bearer     "));
  EXPECT_FALSE(k.matches("s3cret-key"));
  EXPECT_FALSE(k.matches("Basic s3cret-key"));
  EXPECT_FALSE(k.matches("Bearers3cret-key"));
  EXPECT_FALSE(k.matches("Bearer\ts3cret-key"));
  EXPECT_FALSE(k.matches("Token s3cret-key"));
}

TEST(ApiKey, AnEmptyTokenNeverMatches) {
  // Even a key that is a single character: "Bearer " with nothing after it is no key.
  const ApiKey k("a");
  EXPECT_TRUE(k.matches("Bearer a"));
  EXPECT_FALSE(k.matches("Bearer "));
  EXPECT_FALSE(k.matches("Bearer  "));
}

TEST(ApiKey, PublicRequests) {
  EXPECT_TRUE(is_public_request("GET", "/"));
  EXPECT_TRUE(is_public_request("HEAD", "/"));
  EXPECT_TRUE(is_public_request("GET", "/ui/assets/app-ABC.js"));
  EXPECT_TRUE(is_public_request("HEAD", "/ui/assets/app-ABC.css"));
  EXPECT_FALSE(is_public_request("POST", "/"));
  EXPECT_FALSE(is_public_request("DELETE", "/ui/assets/x"));
  for (const char* p : {"/api/tags", "/api/version", "/api/chat", "/v1/models", "/ui/api/chats",
                        "/ui/assets", "/ui/", "/v2/", "/favicon.ico", "//", "/ui/api/../assets/"})
    EXPECT_FALSE(is_public_request("GET", p)) << p;
}

TEST(ApiKey, UnauthorizedAnswers) {
  HttpResponse r = unauthorized_response("/api/tags", false);
  EXPECT_EQ(r.status, 401);
  auto j = nlohmann::json::parse(r.body);
  ASSERT_TRUE(j["error"].is_string());
  EXPECT_NE(j["error"].get<std::string>().find("requires an API key"), std::string::npos);
  EXPECT_NE(j["error"].get<std::string>().find("Authorization: Bearer"), std::string::npos);
  bool challenge = false;
  for (const auto& [k, v] : r.headers) challenge |= k == "WWW-Authenticate" && v == "Bearer";
  EXPECT_TRUE(challenge);

  r = unauthorized_response("/v1/chat/completions", true);
  EXPECT_EQ(r.status, 401);
  j = nlohmann::json::parse(r.body);
  ASSERT_TRUE(j["error"].is_object());
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["message"].get<std::string>().rfind("invalid API key", 0), 0u);
}

class ApiKeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hearth-auth-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    env_.home = dir_.string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  AuthEnv env_;
};

TEST_F(ApiKeyFile, LoopbackNeedsNoKeyUnlessOneIsSet) {
  auto a = resolve_api_key(env_, /*loopback_only=*/true);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->key, "");
  EXPECT_FALSE(fs::exists(dir_ / ".hearth" / "api_key"));
  env_.api_key = "  k1\n";
  a = resolve_api_key(env_, true);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->key, "k1");
  EXPECT_EQ(a->source, "HEARTH_API_KEY");
}

TEST_F(ApiKeyFile, GeneratedOnceWithMode0600) {
  auto a = resolve_api_key(env_, /*loopback_only=*/false);
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  const fs::path file = dir_ / ".hearth" / "api_key";
  EXPECT_EQ(a->source, file.string());
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->key.size(), 43u);  // 32 bytes, unpadded base64url
  EXPECT_EQ(
      a->key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The next start reads the same key.
  auto b = resolve_api_key(env_, false);
  ASSERT_TRUE(b.is_ok());
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->key, a->key);
  EXPECT_EQ(b->warning, "");
  // Two generated keys differ.
  EXPECT_NE(*generate_api_key(), *generate_api_key());
}

TEST_F(ApiKeyFile, ExplicitFileEnvAndOptOut) {
  const fs::path file = dir_ / "my.key";
  env_.key_file = file.string();
  { std::ofstream(file) << "from-file\n"; }
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto a = resolve_api_key(env_, false);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->key, "from-file");
  EXPECT_NE(a->warning.find("chmod 600"), std::string::npos);  // others can read it
  // HEARTH_API_KEY wins over the file.
  env_.api_key = "from-env";
  a = resolve_api_key(env_, false);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->key, "from-env");
  // HEARTH_NO_AUTH turns it off, with a warning.
  env_.no_auth = true;
  a = resolve_api_key(env_, false);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->key, "");
  EXPECT_NE(a->warning.find("HEARTH_NO_AUTH"), std::string::npos);
}

TEST_F(ApiKeyFile, AnEmptyKeyFileIsAnError) {
  const fs::path file = dir_ / "empty.key";
  { std::ofstream(file) << " \n"; }
  env_.key_file = file.string();
  auto a = resolve_api_key(env_, false);
  ASSERT_FALSE(a.is_ok());
  EXPECT_NE(a.status().message().find("is empty"), std::string::npos);
  // An empty HEARTH_API_KEY counts as unset: the file decides.
  env_.api_key = "   ";
  EXPECT_FALSE(resolve_api_key(env_, false).is_ok());
}

}  // namespace
}  // namespace hearth::server
