// The registry signing key: OpenSSH private keys as ssh-keygen writes them (tests/data/ssh/,
// made with `ssh-keygen -t ed25519 -N "" -C hearth-test`, an encrypted one with -N secret and an
// ecdsa one), signatures that verify with the .pub file's key, and the token request Ollama
// signs.
#include "registry/key.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "registry/client.h"

namespace hearth::registry {
namespace {

std::string read(const std::string& name) {
  std::ifstream in(std::string(HEARTH_SOURCE_DIR) + "/tests/data/ssh/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The .pub file's base64 field, decoded: the SSH wire blob; its last 32 bytes are the key.
std::string pub_field(const std::string& pub_line) {
  std::istringstream is(pub_line);
  std::string type, b64;
  is >> type >> b64;
  return b64;
}

bool verifies(const std::string& raw_pub, const std::string& sig, const std::string& msg) {
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw_pub.data()), 32);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      k && ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  return ok;
}

TEST(RegistryKey, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(*base64_decode("Zm9v\nYmE="), "fooba");
  EXPECT_FALSE(base64_decode("Zm9v!").is_ok());
  EXPECT_FALSE(base64_decode("Z").is_ok());
  EXPECT_EQ(base64url_raw(std::string("\xfb\xff", 2)), "-_8");
}

TEST(RegistryKey, ReadsSshKeygenKey) {
  auto k = parse_openssh_private_key(read("id_ed25519"));
  ASSERT_TRUE(k.is_ok()) << k.status().message();
  const std::string pub_line = read("id_ed25519.pub");
  EXPECT_EQ(k->authorized_key() + " hearth-test\n", pub_line);
  EXPECT_EQ(k->comment, "hearth-test");
  auto blob = base64_decode(pub_field(pub_line));
  ASSERT_TRUE(blob.is_ok());
  EXPECT_EQ(k->public_blob(), *blob);
}

TEST(RegistryKey, SignaturesVerifyWithThePubFile) {
  auto k = parse_openssh_private_key(read("id_ed25519"));
  ASSERT_TRUE(k.is_ok());
  const std::string b64 = pub_field(read("id_ed25519.pub"));
  const std::string raw_pub = base64_decode(b64)->substr(19);
  const std::string msg = token_request_signed_string("https://ollama.com/token?a=b");
  auto header = k->authorization(msg);
  ASSERT_TRUE(header.is_ok());
  ASSERT_EQ(header->substr(0, b64.size() + 1), b64 + ":");
  auto sig = base64_decode(header->substr(b64.size() + 1));
  ASSERT_TRUE(sig.is_ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(verifies(raw_pub, *sig, msg));
  EXPECT_FALSE(verifies(raw_pub, *sig, msg + "x"));
}

TEST(RegistryKey, WritesWhatItReads) {
  auto k = parse_openssh_private_key(read("id_ed25519"));
  ASSERT_TRUE(k.is_ok());
  auto again = parse_openssh_private_key(format_openssh_private_key(*k));
  ASSERT_TRUE(again.is_ok()) << again.status().message();
  EXPECT_EQ(again->seed, k->seed);
  EXPECT_EQ(again->pub, k->pub);
  EXPECT_EQ(again->comment, "hearth-test");
  auto g = generate_key();
  ASSERT_TRUE(g.is_ok());
  EXPECT_NE(g->seed, k->seed);
  auto g2 = parse_openssh_private_key(format_openssh_private_key(*g));
  ASSERT_TRUE(g2.is_ok());
  EXPECT_EQ(g2->pub, g->pub);
}

TEST(RegistryKey, RefusesWhatItCannotUse) {
  auto enc = parse_openssh_private_key(read("id_ed25519_encrypted"));
  ASSERT_FALSE(enc.is_ok());
  EXPECT_NE(enc.status().message().find("passphrase"), std::string::npos) << enc.status().message();
  auto ec = parse_openssh_private_key(read("id_ecdsa"));
  ASSERT_FALSE(ec.is_ok());
  EXPECT_NE(ec.status().message().find("ecdsa"), std::string::npos) << ec.status().message();
  EXPECT_FALSE(parse_openssh_private_key("").is_ok());
  EXPECT_FALSE(parse_openssh_private_key("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n").is_ok());
  // A key whose public half is not its private key's.
  auto k = parse_openssh_private_key(read("id_ed25519"));
  ASSERT_TRUE(k.is_ok());
  SshKey bad = *k;
  bad.pub[0] ^= 1;
  EXPECT_FALSE(parse_openssh_private_key(format_openssh_private_key(bad)).is_ok());
  // Cut short.
  const std::string text = read("id_ed25519");
  const std::string body = text.substr(36, 200);
  EXPECT_FALSE(parse_openssh_private_key("-----BEGIN OPENSSH PRIVATE KEY-----\n" + body +
                                         "\n-----END OPENSSH PRIVATE KEY-----\n")
                   .is_ok());
}

TEST(RegistryKey, CreatesItsOwnKeyOnce) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hearth-key-test-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "sub" / "id_ed25519").string();
  const char* old = std::getenv("HEARTH_KEY");
  const std::string saved = old ? old : "";
  ::setenv("HEARTH_KEY", path.c_str(), 1);
  EXPECT_EQ(key_path(), path);
  auto a = load_or_create_key();
  auto b = load_or_create_key();
  if (old)
    ::setenv("HEARTH_KEY", saved.c_str(), 1);
  else
    ::unsetenv("HEARTH_KEY");
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  ASSERT_TRUE(b.is_ok());
  EXPECT_TRUE(a->generated);
  EXPECT_FALSE(b->generated);
  EXPECT_EQ(a->key.seed, b->key.seed);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream pub(path + ".pub");
  std::string line;
  std::getline(pub, line);
  EXPECT_EQ(line, a->key.authorized_key());
  fs::remove_all(dir);
}

TEST(RegistryKey, TokenRequestAsOllamaBuildsIt) {
  // Go's url.Values.Encode: keys sorted, values in order, QueryEscape ('+' for a space).
  auto u = token_request_url("http://h:1/token?b=x+y&a=1", "svc", "repository:a/b:pull,push x", 12,
                             "NONCE");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(*u,
            "http://h:1/token?a=1&b=x+y&nonce=NONCE&scope=repository%3Aa%2Fb%3Apull%2Cpush&"
            "scope=x&service=svc&ts=12");
  // An empty scope is still one (empty) scope parameter.
  u = token_request_url("https://registry.ollama.ai/v2/token", "ollama.com", "", 5, "n");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(*u, "https://registry.ollama.ai/v2/token?nonce=n&scope=&service=ollama.com&ts=5");
  EXPECT_FALSE(token_request_url("token", "s", "", 1, "n").is_ok());
  // base64 of the hex sha256 of the empty body.
  EXPECT_EQ(token_request_signed_string("U"),
            "GET,U,ZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYTQ5NTk5MWI3OD"
            "UyYjg1NQ==");
}

}  // namespace
}  // namespace hearth::registry
