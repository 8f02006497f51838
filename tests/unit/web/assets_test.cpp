// The embedded web UI (src/web/assets.h): the table the build generated, and the HTTP rules
// for serving it (browser detection, ETag revalidation, gzip negotiation).
#include "web/assets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace hearth::web {
namespace {

std::string header(const Reply& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

TEST(WebAssets, TableIsSortedAndHasThePage) {
  const auto all = files();
  ASSERT_GE(all.size(), 3u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(),
                             [](const auto& a, const auto& b) { return a.name < b.name; }));
  const EmbeddedFile& page = index_html();
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_FALSE(page.immutable);
  EXPECT_NE(page.body.find("/ui/assets/app-"), std::string_view::npos);
  for (const auto& f : all) {
    EXPECT_EQ(find(f.name), &f);
    EXPECT_FALSE(f.body.empty()) << f.name;
    EXPECT_EQ(f.etag.front(), '"');
    EXPECT_EQ(f.etag.back(), '"');
  }
  EXPECT_EQ(find("nope.js"), nullptr);
  EXPECT_EQ(find(""), nullptr);
}

TEST(WebAssets, PageScriptAndStylesheetAreEmbedded) {
  const std::string_view html = index_html().body;
  for (const char* ext : {".js", ".css"}) {
    const size_t at = html.find(ext);
    ASSERT_NE(at, std::string_view::npos) << ext;
    const size_t start = html.rfind("/ui/assets/", at);
    ASSERT_NE(start, std::string_view::npos);
    const std::string_view name =
        html.substr(start + 11, at + std::string(ext).size() - start - 11);
    const EmbeddedFile* f = find(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_TRUE(f->immutable) << name;
  }
}

TEST(WebAssets, WantsHtml) {
  EXPECT_TRUE(wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
  EXPECT_TRUE(wants_html("TEXT/HTML"));
  EXPECT_FALSE(wants_html(""));
  EXPECT_FALSE(wants_html("*/*"));
  EXPECT_FALSE(wants_html("application/json"));
}

TEST(WebAssets, EtagMatches) {
  EXPECT_TRUE(etag_matches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(etag_matches("\"x\", W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(etag_matches("*", "\"abc\""));
  EXPECT_FALSE(etag_matches("", "\"abc\""));
  EXPECT_FALSE(etag_matches("\"abcd\"", "\"abc\""));
  EXPECT_FALSE(etag_matches("abc", "\"abc\""));
}

TEST(WebAssets, AcceptsGzip) {
  EXPECT_TRUE(accepts_gzip("gzip, deflate, br, zstd"));
  EXPECT_TRUE(accepts_gzip("br;q=1.0, gzip;q=0.8"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("*, gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("deflate, br"));
}

TEST(WebAssets, AnswerRevalidatesAndCompresses) {
  const EmbeddedFile& page = index_html();
  Reply plain = answer(page, "", "");
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body, page.body);
  EXPECT_EQ(header(plain, "ETag"), page.etag);
  EXPECT_EQ(header(plain, "Cache-Control"), "no-cache");
  EXPECT_NE(header(plain, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(header(plain, "Content-Encoding"), "");

  Reply again = answer(page, std::string(page.etag), "");
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(header(again, "ETag"), page.etag);

  ASSERT_FALSE(page.gzip.empty());
  Reply gz = answer(page, "", "gzip, deflate");
  EXPECT_EQ(gz.status, 200);
  EXPECT_EQ(gz.body, page.gzip);
  EXPECT_EQ(header(gz, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(gz, "ETag"), page.gzip_etag);
  EXPECT_EQ(header(gz, "Vary"), "Accept-Encoding");
  // A validator of the other representation does not match this one.
  EXPECT_EQ(answer(page, std::string(page.etag), "gzip").status, 200);
  EXPECT_EQ(answer(page, std::string(page.gzip_etag), "gzip").status, 304);
}

TEST(WebAssets, HashedFilesAreImmutable) {
  for (const auto& f : files()) {
    if (!f.immutable) continue;
    Reply r = answer(f, "", "");
    EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable") << f.name;
    EXPECT_EQ(header(r, "Content-Security-Policy"), "") << f.name;
  }
}

}  // namespace
}  // namespace hearth::web
