// tokenizer/unigram.h — the pieces of SentencePiece's Unigram tokenizer (`tokenizer.ggml.model =
// t5`, llama.cpp's UGM: T5 and the XLM-RoBERTa vocabulary of bge-m3 and
// snowflake-arctic-embed2): the precompiled_charsmap normalizer, the whitespace handling
// (U+2581 "▁" for spaces, the dummy prefix, extra whitespace removed) and the Viterbi
// segmentation over piece scores. tokenizer.cpp drives them; they are separate so the unit tests
// can check each one.
//
// What hearth does, and where the others differ:
//   * the charsmap is applied as SentencePiece and llama.cpp apply it: at each position the
//     longest rule wins, a position without a rule keeps its character. Hugging Face's Rust
//     Precompiled normalizer works per grapheme and takes the shortest rule matching a prefix of
//     the grapheme for the whole grapheme (the same on real text; not on e.g. "ẛ" + U+0323,
//     where it drops the mark); its JavaScript port (the test reference) ignores the charsmap and
//     runs NFKC with SentencePiece's nmt rules, which composes sequences no rule covers;
//   * extra whitespace (remove_extra_whitespaces): trailing Unicode whitespace is dropped as
//     Hugging Face's Strip normalizer does (after the charsmap, which maps the usual whitespace to
//     ' ' anyway; llama.cpp keeps e.g. a trailing '\n' when a vocabulary has no charsmap), runs of
//     ' ' become one, leading ones go. The dummy prefix is added only when add_space_prefix is
//     set (llama.cpp adds it whenever extra whitespace is removed), and not before a text that
//     starts with U+2581 itself (Hugging Face's Metaspace; llama.cpp adds a second one). Without
//     remove_extra_whitespaces, spaces are kept as llama.cpp keeps them;
//   * pieces in the lattice: normal, user-defined (score 0) and unused tokens, as llama.cpp.
//     Hugging Face's Unigram model also holds the control tokens, so text that normalizes to
//     "<s>" (e.g. the fullwidth "＜s＞") becomes that token there; here control tokens come only
//     from special-token text in the input, as llama.cpp does;
//   * ties between equally scored segmentations: the first found wins (earlier piece start,
//     then the shorter piece), as in llama.cpp and Hugging Face's lattice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace hearth::tokenizer::unigram {

// SentencePiece's precompiled_charsmap: a little-endian u32 byte size of the trie, the trie (a
// darts-clone double array of u32 units: label in bits 0-7, has-leaf in bit 8, offset in bits
// 10-30, shifted left by 8 when bit 9 is set; value units carry bit 31), then the replacement
// strings, each NUL-terminated, indexed by the trie's values.
class CharsMap {
 public:
  // Copies and checks the blob (it comes from an untrusted file): header, sizes, terminated
  // strings. Errors say what is wrong. An empty blob is a map without rules. Lookups stay in
  // bounds whatever the trie holds: an index outside the array ends the match, a value outside the
  // strings is no rule.
  static Result<CharsMap> parse(std::span<const uint8_t> blob);

  bool empty() const { return units_.empty(); }
  size_t units() const { return units_.size(); }
  // The longest rule whose key starts text[pos]: (bytes of text it covers, its replacement), or
  // (0, {}) when none does. A NUL byte ends the key (as in SentencePiece).
  std::pair<size_t, std::string_view> longest(std::string_view text, size_t pos) const;

 private:
  std::vector<uint32_t> units_;
  std::string strings_;  // ends with '\0'
};

struct NormalizerOptions {
  bool add_space_prefix = true;             // a '▁' before the text (add_dummy_prefix)
  bool remove_extra_whitespaces = true;     // trim, and runs of ' ' become one
  bool treat_whitespace_as_suffix = false;  // the '▁' goes after the text instead (no GGUF key)
};

// The text the model segments: the charsmap applied (bytes that are not UTF-8 become U+FFFD),
// then whitespace as above, every ' ' written as U+2581.
std::string normalize(std::string_view text, const CharsMap& map, const NormalizerOptions& o);

// True for the code points Rust's char::is_whitespace accepts (Hugging Face's Strip).
bool is_whitespace(uint32_t cp);

// The Unigram model: Viterbi over the pieces that are prefixes of each position, maximizing the
// sum of their scores (in double precision, as llama.cpp and Hugging Face add them); a code point
// that no single-code-point piece covers can be the unknown token at min(score) - 10, and runs of
// unknown tokens are one.
class Model {
 public:
  // texts[id]: the piece, or empty for an id that is not a piece (control tokens, ...); the
  // views must outlive the model. unk: the unknown token's id, or -1 (unknown characters are
  // then dropped). unk_score: the score of an unknown code point.
  Model(std::vector<std::string_view> texts, std::vector<double> scores, int32_t unk,
        double unk_score);

  void encode(std::string_view normalized, std::vector<int32_t>& out) const;

 private:
  std::vector<std::string_view> texts_;
  std::vector<double> scores_;
  std::vector<int32_t> sorted_;  // piece ids by text (bytewise)
  int32_t unk_;
  double unk_score_;
};

}  // namespace hearth::tokenizer::unigram
