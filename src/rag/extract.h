// rag/extract.h — the text of an uploaded document, with the structure the chunker splits on.
//
// Every kind comes out as Markdown-shaped UTF-8: headings as `#` lines, paragraphs separated by
// blank lines, code in ``` fences, so one chunker (rag/chunker.h) serves all of them. HTML is
// parsed by libxml2's HTML parser (recovering from any malformed markup, no network), PDF by
// poppler. Inputs are untrusted: both parsers get the bytes only, with size and depth limits, and
// every failure is a Status, never a crash (fuzzed: tests/fuzz/fuzz_extract.cpp).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace hearth::rag {

enum class DocKind { kText, kMarkdown, kCode, kHtml, kPdf };

// The kind from a file name's extension and a declared content type (either may be empty); text
// when nothing says otherwise. `lang` gets the code language for kCode (the extension's name).
DocKind kind_of(std::string_view filename, std::string_view content_type, std::string* lang);

// Largest document accepted, in bytes.
inline constexpr size_t kMaxDocumentBytes = 64u << 20;

// The document's text as described above. InvalidArgument for bytes that are not the kind
// (a PDF that does not parse, an encrypted one, text that is not UTF-8 after a BOM check).
Result<std::string> extract_text(DocKind kind, std::string_view bytes, std::string_view lang = {});

}  // namespace hearth::rag
