// The browser access rules (server/access.h) and the one Status -> HTTP mapping (errors.h).
#include "server/access.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/errors.h"

namespace hearth::server {
namespace {

TEST(Access, GlobMatch) {
  EXPECT_TRUE(glob_match("http://localhost:*", "http://localhost:3000"));
  EXPECT_TRUE(glob_match("http://localhost:*", "http://localhost:"));
  EXPECT_FALSE(glob_match("http://localhost:*", "http://localhost.evil.com"));
  EXPECT_FALSE(glob_match("http://localhost", "http://localhost:3000"));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("chrome-extension://*", "chrome-extension://abc"));
  EXPECT_TRUE(glob_match("https://*.example.com", "https://a.b.example.com"));
  EXPECT_FALSE(glob_match("https://*.example.com", "https://example.com.evil"));
  EXPECT_TRUE(glob_match("HTTP://LOCALHOST", "http://localhost"));
}

TEST(Access, OriginsAsOllamaAllowsThem) {
  AccessPolicy p({"https://my.app"}, /*loopback_only=*/true);
  for (const char* o : {"http://localhost", "http://localhost:8080", "https://127.0.0.1:3000",
                        "http://0.0.0.0:5173", "app://x", "file://", "tauri://localhost",
                        "vscode-webview://abc", "https://my.app", ""})
    EXPECT_TRUE(p.origin_allowed(o, "127.0.0.1:11434")) << o;
  for (const char* o : {"https://evil.example", "http://localhost.evil.com", "null",
                        "chrome-extension://abc", "http://127.0.0.2"})
    EXPECT_FALSE(p.origin_allowed(o, "127.0.0.1:11434")) << o;
  // The server's own pages (same origin as the Host).
  EXPECT_TRUE(p.origin_allowed("http://myhost.local:11434", "myhost.local:11434"));
  EXPECT_FALSE(p.origin_allowed("http://myhost.local:9999", "myhost.local:11434"));
}

TEST(Access, HostCheckOnlyOnLoopback) {
  AccessPolicy loop({}, true);
  for (const char* h :
       {"", "localhost", "localhost:11434", "127.0.0.1:11434", "[::1]:11434", "foo.localhost",
        "box.local:11434", "x.internal", "192.168.1.7", "10.0.0.1:11434", "0.0.0.0"})
    EXPECT_TRUE(loop.host_allowed(h)) << h;
  for (const char* h : {"evil.example", "evil.example:11434", "8.8.8.8", "localhost.evil.com"})
    EXPECT_FALSE(loop.host_allowed(h)) << h;
  AccessPolicy open({}, false);
  EXPECT_TRUE(open.host_allowed("evil.example:11434"));
  const Status r = loop.check("evil.example", "");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(http_status(r.code()), 403);
  EXPECT_TRUE(loop.check("localhost:11434", "http://localhost:3000").is_ok());
  EXPECT_FALSE(loop.check("localhost:11434", "https://evil.example").is_ok());
}

TEST(Access, CorsHeaders) {
  AccessPolicy p({}, true);
  EXPECT_TRUE(p.cors_headers("").empty());
  auto h = p.preflight_headers("http://localhost:3000");
  bool origin = false, methods = false, headers = false;
  for (auto& [k, v] : h) {
    origin |= k == "Access-Control-Allow-Origin" && v == "http://localhost:3000";
    methods |= k == "Access-Control-Allow-Methods" && v.find("POST") != std::string::npos;
    headers |= k == "Access-Control-Allow-Headers" && v.find("x-stainless-os") != std::string::npos;
  }
  EXPECT_TRUE(origin && methods && headers);
}

TEST(Errors, OneMappingFromStatusToHttp) {
  EXPECT_EQ(http_status(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status(StatusCode::kUnsupported), 400);
  EXPECT_EQ(http_status(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status(StatusCode::kNotFound), 404);
  EXPECT_EQ(http_status(StatusCode::kTimeout), 408);
  EXPECT_EQ(http_status(StatusCode::kTooLarge), 413);
  EXPECT_EQ(http_status(StatusCode::kCancelled), 499);
  EXPECT_EQ(http_status(StatusCode::kUnavailable), 503);
  EXPECT_EQ(http_status(StatusCode::kNoSpace), 507);
  EXPECT_EQ(http_status(StatusCode::kResourceExhausted), 500);
  EXPECT_EQ(http_status(StatusCode::kCorrupt), 500);
  EXPECT_EQ(http_status(StatusCode::kIo), 500);

  auto o = error_response(not_found("model 'x' not found"));
  EXPECT_EQ(o.status, 404);
  EXPECT_EQ(nlohmann::json::parse(o.body)["error"], "model 'x' not found");
  auto a = error_response(invalid_argument("bad"), ApiFlavor::kOpenAI);
  EXPECT_EQ(a.status, 400);
  auto j = nlohmann::json::parse(a.body);
  EXPECT_EQ(j["error"]["message"], "bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  // Invalid UTF-8 in a message (a file name, a model's text) is replaced, never thrown.
  auto u = error_response(invalid_argument("bad \xff name"));
  EXPECT_TRUE(nlohmann::json::accept(u.body));
}

}  // namespace
}  // namespace hearth::server
