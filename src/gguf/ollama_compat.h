// gguf/ollama_compat.h — reading GGUF files written in Ollama's library layout.
//
// Ollama's own (legacy) converter wrote some families differently from llama.cpp's: vision,
// audio and projector tensors inside the main file (`v.`, `a.`, `mm.`), multi-token-prediction
// tensors under `mtp.`, keys of its own (`<arch>.vision.*`, per-layer head_count_kv arrays,
// three-entry rope sections, `tokenizer.ggml.eos_token_ids`), keys left out because its engine
// assumed their values, and tokenizer metadata of its own making. Library blobs of gemma3,
// gemma4, qwen35/qwen35moe and llama4 are still published that way (see docs/architecture.md),
// and so is EmbeddingGemma: a gemma3 file with pooling_type and Dense layers `dense.0/1`, which
// is presented as llama.cpp's gemma-embedding.
//
// normalize_ollama_layout() runs once when a file is opened (GgufFile::open/parse, unless
// Layout::kRaw is asked for). It looks only at markers in the file — never at its name or age —
// and, for an architecture hearth runs whose markers are present, edits the parsed metadata and
// tensor list so the models, the tokenizer and the memory estimate see the llama.cpp layout:
// keys injected, renamed or reshaped, tensors renamed, and tensors no text model reads hidden
// (counted in LayoutFixes::ignored_tensors / ignored_bytes). Tensor data is never copied or
// changed. A file without markers is left exactly as read.
#pragma once

#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace hearth::gguf {

// The markers of Ollama's layout found in `f` (one line each, naming the marker), for the
// architectures the normalisation knows; empty for a llama.cpp-layout file.
std::vector<std::string> detect_ollama_layout(const GgufFile& f);

// Applies the per-architecture fixes when markers are present (GgufFile::open does this).
// Records what it changed in f.layout_fixes().
Status normalize_ollama_layout(GgufFile& f);

}  // namespace hearth::gguf
