// web/assets.h — the browser UI's files (web/ built by esbuild), compiled into the binary.
//
// The build turns web/dist into a generated source (web/gen_assets.py): every file's bytes, its
// content type, a strong ETag and, for text, a gzip copy. Nothing is read from disk at run
// time. Hashed names (app-XXXXXXXX.js) never change content, so they are cached for a year;
// index.html is revalidated with its ETag.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::web {

struct EmbeddedFile {
  std::string_view name;  // as under /ui/assets/, e.g. "app-5XJ2KQ7B.js"
  std::string_view content_type;
  std::string_view etag;       // quoted strong validator of `body`
  std::string_view body;       // identity encoding
  std::string_view gzip;       // the same gzip-compressed; empty when not worth it
  std::string_view gzip_etag;  // validator of the gzip representation
  bool immutable;              // content-hashed name
};

// Every embedded file, sorted by name.
std::span<const EmbeddedFile> files();
// The file called `name`, or null.
const EmbeddedFile* find(std::string_view name);
// The UI's page.
const EmbeddedFile& index_html();

// Whether a request for "/" comes from a browser navigating there (its Accept names text/html),
// rather than an API client probing for "Ollama is running".
bool wants_html(std::string_view accept);

// An answer to GET or HEAD of one file (the HTTP layer drops the body of a HEAD answer).
struct Reply {
  int status = 200;  // 200, or 304 when If-None-Match names the current representation
  std::string_view content_type;
  std::string_view body;
  std::vector<std::pair<std::string, std::string>> headers;
};
Reply answer(const EmbeddedFile& f, std::string_view if_none_match,
             std::string_view accept_encoding);

// Whether an If-None-Match header value matches `etag` (weak comparison, as RFC 9110 asks).
bool etag_matches(std::string_view if_none_match, std::string_view etag);
// Whether an Accept-Encoding header value accepts gzip (q=0 refuses it).
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace hearth::web
