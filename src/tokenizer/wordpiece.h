// tokenizer/wordpiece.h — the pieces of BERT's WordPiece tokenizer (`tokenizer.ggml.model =
// bert`: all-minilm, mxbai-embed-large, nomic-embed-text), as Hugging Face's `tokenizers` runs
// them: BertNormalizer -> BertPreTokenizer -> WordPiece (greedy longest match, "##" continuation)
// and the WordPiece decoder. tokenizer.cpp drives them; they are separate functions so the unit
// tests can check each one.
//
// llama.cpp's converter stores the vocabulary with its own convention: a word-initial piece "x"
// is stored as "\u2581x" (U+2581), a continuation "##x" as "x", control tokens ([CLS] ...)
// verbatim. The lookups here take the piece in Hugging Face's form (without "##") and whether it
// starts a word; the caller maps that onto the stored text.
//
// Where llama.cpp's WPM tokenizer (llm_tokenizer_wpm) differs from Hugging Face, this follows
// Hugging Face (the Rust `tokenizers` crate, which is what transformers and sentence-transformers
// run):
//   * accents: HF (uncased) removes nonspacing marks after NFD; llama.cpp keeps them, so "café"
//     becomes "cafe" + U+0301 there and usually [UNK];
//   * case: llama.cpp always lowercases; HF only for uncased vocabularies (see below);
//   * cased vocabularies: llama.cpp applies NFD anyway; HF leaves the text unnormalized;
//   * words over 100 characters: HF gives [UNK] (max_input_chars_per_word), llama.cpp splits them;
//   * U+0130 (İ) lowercases to "i" + U+0307 in HF (full case mapping), one code point in llama.cpp;
//   * spacing combining marks (Mc, e.g. Bengali/Devanagari vowel signs) stay in HF's words;
//     llama.cpp drops them;
//   * U+0085 (NEL) is a control character to HF (removed), whitespace to llama.cpp (splits).
// (Measured on tests/differential/test_wordpiece.py's corpus; llama.cpp's tokenize also never
// appends [SEP] by itself in the oracle's API, node-llama-cpp adds only BOS.)
// The JavaScript port of HF (transformers.js / @lenml/tokenizers, the test reference) differs
// from the Rust crate in three places, where this follows Rust: CJK ideographs outside the BMP
// get spaces around them (the port tests UTF-16 code units), unassigned code points (Cn) are
// removed as control characters (the port only removes Cc/Cf/Co/Cs), and Greek capital sigma
// lowercases to σ everywhere (the port's String.toLowerCase picks final ς at a word end).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::tokenizer::wordpiece {

struct NormalizerOptions {
  bool clean_text = true;            // drop NUL, U+FFFD and control chars; whitespace -> ' '
  bool handle_chinese_chars = true;  // spaces around CJK ideographs
  bool strip_accents = true;         // NFD, then drop nonspacing marks (Mn)
  bool lowercase = true;
};

// Hugging Face's BertNormalizer on valid UTF-8 (clean text, CJK, strip accents, lowercase — in
// that order, as the Rust crate applies them).
std::string normalize(std::string_view text, const NormalizerOptions& o);

// BertPreTokenizer: splits on whitespace (dropped) and isolates every punctuation character
// (Unicode P* and all ASCII punctuation/symbols). Appends (offset, length) of each word.
void pre_tokenize(std::string_view text, std::vector<std::pair<size_t, size_t>>& words);

// The ids of one word by greedy longest match from the left; `find(piece, word_start)` returns
// the id of a piece or -1. Returns false (nothing appended) when some position has no piece or
// the word has more than `max_chars` code points: the caller emits [UNK] for the whole word.
bool tokenize_word(std::string_view word, size_t max_chars,
                   const std::function<int32_t(std::string_view, bool)>& find,
                   std::vector<int32_t>& out);

// Hugging Face's WordPiece decoder (cleanup on) on tokens in Hugging Face's form ("##x" for a
// continuation), then transformers' clean_up_tokenization over the whole text (BERT tokenizers
// set clean_up_tokenization_spaces): every token but the first gets a space before it unless it
// starts with "##", which is removed (the first token keeps its "##"); " ." -> "." and the other
// English contractions.
std::string decode(const std::vector<std::string>& tokens);

// True for the CJK ideograph ranges of Hugging Face's BertNormalizer (its own table, including
// its 0x2B920 start of the Extension C/D range, which llama.cpp copies).
bool is_chinese_char(uint32_t cp);
// Hugging Face's is_bert_punc: ASCII punctuation/symbols or Unicode category P*.
bool is_punctuation(uint32_t cp);

}  // namespace hearth::tokenizer::wordpiece
