#include <gtest/gtest.h>

#include "registry/client.h"

namespace hearth::registry {
namespace {

TEST(Registry, NamesBecomeRegistryUrls) {
  auto ep = Endpoint::parse("qwen3.5:9b", false);
  ASSERT_TRUE(ep.is_ok());
  EXPECT_EQ(ep->manifest_url(), "https://registry.ollama.ai/v2/library/qwen3.5/manifests/9b");
  EXPECT_EQ(ep->blob_url("sha256:ab"),
            "https://registry.ollama.ai/v2/library/qwen3.5/blobs/sha256:ab");
  ep = Endpoint::parse("otherhost:11434/library/m:tag", true);
  ASSERT_TRUE(ep.is_ok());
  EXPECT_EQ(ep->manifest_url(), "http://otherhost:11434/v2/library/m/manifests/tag");
  ep = Endpoint::parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", false);
  ASSERT_TRUE(ep.is_ok());
  EXPECT_EQ(ep->manifest_url(),
            "https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF/manifests/Q4_K_M");
  // Plain HTTP only when asked for, as Ollama: "insecure protocol http".
  EXPECT_FALSE(Endpoint::parse("http://host/ns/m:t", false).is_ok());
  ep = Endpoint::parse("http://host:5000/ns/m:t", true);
  ASSERT_TRUE(ep.is_ok());
  EXPECT_EQ(ep->base(), "http://host:5000");
  EXPECT_FALSE(Endpoint::parse("a/b/c/d", false).is_ok());
}

TEST(Registry, UrlsResolveAsBrowsersDo) {
  EXPECT_EQ(url_host("https://User@Example.COM:8443/x?y"), "example.com:8443");
  EXPECT_EQ(url_host("http://127.0.0.1:5000"), "127.0.0.1:5000");
  EXPECT_EQ(url_host("no-scheme"), "");
  const std::string base = "http://h:1/v2/ns/m/blobs/sha256:ab";
  EXPECT_EQ(resolve_url(base, "https://cdn/x"), "https://cdn/x");
  EXPECT_EQ(resolve_url(base, "/direct/sha256:ab"), "http://h:1/direct/sha256:ab");
  EXPECT_EQ(resolve_url(base, "other"), "http://h:1/v2/ns/m/blobs/other");
}

}  // namespace
}  // namespace hearth::registry
