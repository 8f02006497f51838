// Fuzz target: document text extraction (HTML through libxml2, PDF through poppler, text) and the
// chunker on whatever comes out. The first byte picks the kind; the rest is the file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rag/chunker.h"
#include "rag/extract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using hearth::rag::DocKind;
  const DocKind kinds[] = {DocKind::kHtml, DocKind::kPdf, DocKind::kText, DocKind::kMarkdown,
                           DocKind::kCode};
  const DocKind kind = kinds[data[0] % 5];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  auto text = hearth::rag::extract_text(kind, bytes, "c");
  if (!text.is_ok()) return 0;
  hearth::rag::ChunkOptions o;
  o.max_tokens = 16 + data[0] % 64;
  o.overlap_tokens = data[0] % 24;
  const auto chunks = hearth::rag::chunk_document(*text, o);
  for (const auto& c : chunks)
    if (c.begin > c.end || c.end > text->size()) __builtin_trap();
  return 0;
}
