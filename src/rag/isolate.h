// rag/isolate.h — text extraction in a child process, so that a document which trips a parser
// bug (poppler and libxml2 parse untrusted bytes) costs that document, not the server. The child
// is this same binary run as `hearth extract-text --kind K` (cli/text_commands.cpp): it limits
// its own memory and CPU time (limit_extractor) before reading the bytes from stdin and writes
// the text to stdout.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "rag/extract.h"

namespace hearth::rag {

struct IsolateLimits {
  int timeout_seconds = 120;              // wall clock, then the child is killed
  size_t max_output = size_t(256) << 20;  // more text than this fails the document
  size_t memory_bytes = size_t(2) << 30;  // the child's address space
  int cpu_seconds = 120;
};

// Runs `exe extract-text --kind <kind>` with `bytes` on its stdin. InvalidArgument with the
// child's message when it rejects the document, Internal when it crashes or is killed.
Result<std::string> extract_in_child(const std::string& exe, DocKind kind, std::string_view bytes,
                                     std::string_view lang, const IsolateLimits& lim = {});

// In the child, before touching the input: caps its address space and CPU time.
void limit_extractor(const IsolateLimits& lim = {});

}  // namespace hearth::rag
