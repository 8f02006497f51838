// tokenizer/pretokenizer.h — splits text into words before byte-level BPE, per
// `tokenizer.ggml.pre`. Each pattern of the sequence splits the pieces the previous one produced
// (matches and the gaps between them both become pieces: Hugging Face's "Isolated" split).
// PCRE2 (UTF + Unicode properties, JIT) does the matching.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace hearth::tokenizer {

struct PreTokenizerConfig {
  std::vector<std::string> patterns;
  bool nfc = false;            // normalize to NFC first (Qwen's tokenizer.json)
  bool ignore_merges = false;  // a word found whole in the vocab is one token (Llama 3)
};

// The configuration for a `tokenizer.ggml.pre` value; unsupported() for unknown names.
Result<PreTokenizerConfig> pre_tokenizer_config(std::string_view pre);

class PreTokenizer {
 public:
  static Result<std::unique_ptr<PreTokenizer>> compile(const PreTokenizerConfig& c);
  ~PreTokenizer();
  // Appends (offset, length) of each word of `text` (valid UTF-8) to `out`.
  void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  PreTokenizer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::tokenizer
