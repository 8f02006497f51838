// rag/chunker.h — documents into retrieval chunks, split on their structure.
//
// The text (Markdown-shaped, as rag/extract.h makes every kind) is cut into blocks first —
// headings, paragraphs, list runs, fenced code blocks — and blocks are packed into chunks of at
// most `max_tokens`. A block larger than that is split on lines, then sentences, then words. Each
// chunk starts with the heading path it sits under (`# Guide > ## Install`), so a passage keeps its
// context, and the next chunk repeats the tail of the previous one (`overlap_tokens`, whole
// sentences or lines) so an answer spanning a boundary is found whole in one of them. A code
// block is never split mid-line.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::rag {

struct Chunk {
  std::string text;      // what is embedded and indexed: heading path, blank line, passage
  std::string headings;  // the heading path alone ("" at top level)
  size_t begin = 0;      // the passage's byte range in the document text (without the overlap)
  size_t end = 0;
  size_t tokens = 0;  // as counted by the chunker's counter
};

struct ChunkOptions {
  size_t max_tokens = 400;
  size_t overlap_tokens = 60;
  // Tokens in a piece of text: the embedding model's tokenizer in the server; by default an
  // estimate of one token per 4 bytes (used where no model is at hand).
  std::function<size_t(std::string_view)> count;
};

std::vector<Chunk> chunk_document(std::string_view text, const ChunkOptions& opt);

}  // namespace hearth::rag
