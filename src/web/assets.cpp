#include "web/assets.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace hearth::web {

// Defined in the source web/gen_assets.py writes into the build tree.
namespace generated {
extern const EmbeddedFile kFiles[];
extern const size_t kFileCount;
}  // namespace generated

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(uint8_t(x)) == std::tolower(uint8_t(y));
         });
}

// Calls fn(item) for each comma-separated item, trimmed.
template <class F>
void each_item(std::string_view list, F fn) {
  while (!list.empty()) {
    const size_t c = list.find(',');
    fn(trim(list.substr(0, c)));
    if (c == std::string_view::npos) break;
    list.remove_prefix(c + 1);
  }
}

// The page runs only its own script and talks only to this server; model output it renders
// cannot add scripts, frames or requests elsewhere even if a sanitizer bug let markup through.
// (Inline styles stay allowed: KaTeX positions glyphs with them.)
constexpr const char* kPagePolicy =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

}  // namespace

std::span<const EmbeddedFile> files() {
  return {generated::kFiles, generated::kFileCount};
}

const EmbeddedFile* find(std::string_view name) {
  const auto all = files();
  auto it = std::lower_bound(all.begin(), all.end(), name,
                             [](const EmbeddedFile& f, std::string_view n) { return f.name < n; });
  return it != all.end() && it->name == name ? &*it : nullptr;
}

const EmbeddedFile& index_html() {
  static const EmbeddedFile* f = find("index.html");
  if (!f) std::abort();  // gen_assets.py refuses a UI without one
  return *f;
}

bool wants_html(std::string_view accept) {
  for (size_t i = 0; i + 9 <= accept.size(); ++i)
    if (iequals(accept.substr(i, 9), "text/html")) return true;
  return false;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  bool hit = false;
  each_item(if_none_match, [&](std::string_view tag) {
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) hit = true;
  });
  return hit;
}

bool accepts_gzip(std::string_view accept_encoding) {
  int gzip = -1, star = -1;  // -1: not named; else whether its q is above 0
  each_item(accept_encoding, [&](std::string_view item) {
    const size_t semi = item.find(';');
    const std::string_view coding = trim(item.substr(0, semi));
    bool allowed = true;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      while (!params.empty()) {
        const size_t s = params.find(';');
        const std::string_view p = trim(params.substr(0, s));
        if (p.size() > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
          allowed = std::strtod(std::string(p.substr(2)).c_str(), nullptr) > 0;
        if (s == std::string_view::npos) break;
        params.remove_prefix(s + 1);
      }
    }
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) gzip = allowed;
    if (coding == "*") star = allowed;
  });
  return gzip >= 0 ? gzip == 1 : star == 1;
}

Reply answer(const EmbeddedFile& f, std::string_view if_none_match,
             std::string_view accept_encoding) {
  const bool gz = !f.gzip.empty() && accepts_gzip(accept_encoding);
  const std::string_view etag = gz ? f.gzip_etag : f.etag;
  Reply r;
  r.content_type = f.content_type;
  r.headers.emplace_back("ETag", std::string(etag));
  r.headers.emplace_back("Cache-Control",
                         f.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (!f.gzip.empty()) r.headers.emplace_back("Vary", "Accept-Encoding");
  if (f.content_type.substr(0, 9) == "text/html") {
    r.headers.emplace_back("Content-Security-Policy", kPagePolicy);
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  if (etag_matches(if_none_match, etag)) {
    r.status = 304;
    return r;
  }
  if (gz) r.headers.emplace_back("Content-Encoding", "gzip");
  r.body = gz ? f.gzip : f.body;
  return r;
}

}  // namespace hearth::web
