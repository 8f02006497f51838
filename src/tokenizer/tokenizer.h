// tokenizer/tokenizer.h — text <-> token ids, configured entirely from GGUF metadata.
//
// Two algorithms cover the seed families: BPE by merge rank — byte-level (`tokenizer.ggml.model =
// gpt2`: Llama 3, Qwen, Llama 4, with the pre-tokenizer `tokenizer.ggml.pre` names) or on raw
// characters with byte fallback (`gemma4`) — and SentencePiece-style BPE (`llama`: Gemma 1-3,
// Llama 2, Mistral) merging by score with byte fallback. BERT's WordPiece (`bert`: all-minilm,
// mxbai-embed-large, nomic-embed-text) is a third, in tokenizer/wordpiece.h, and SentencePiece's
// Unigram (`t5`: T5, the XLM-RoBERTa vocabulary of bge-m3 and snowflake-arctic-embed2) a fourth,
// in tokenizer/unigram.h. Special tokens are
// matched in the text (leftmost, longest) before either runs: control tokens only when asked
// (parse_special), user-defined tokens always — as Hugging Face and llama.cpp do.
//
// Where llama.cpp and the Hugging Face tokenizer differ, hearth follows Hugging Face: it is what
// the models saw in training (e.g. Qwen's NFC normalization).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"

namespace hearth::tokenizer {

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SpecialIds {
  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1, sep = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
};

class PreTokenizer;  // tokenizer/pretokenizer.h
namespace unigram {
class CharsMap;
class Model;
}  // namespace unigram

class Tokenizer {
 public:
  enum class Kind { kBpe, kSpm, kWordPiece, kUnigram };

  // Reads tokenizer.ggml.* from the file. Errors name the key or the unsupported model/pre.
  static Result<std::shared_ptr<const Tokenizer>> from_gguf(const gguf::GgufFile& f);
  ~Tokenizer();

  // add_special: BOS/EOS as the metadata says (WordPiece: [CLS] ... [SEP]; XLM-R's Unigram:
  // <s> ... </s>). parse_special:
  // control-token text becomes the token (otherwise it is tokenized as text). Ill-formed UTF-8 is
  // read as U+FFFD.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Bytes of one token. Control tokens give their text only if `special`.
  std::string piece(int32_t id, bool special = true) const;
  // Concatenated pieces (SPM: the space the tokenizer prefixed is removed again). WordPiece
  // decodes as Hugging Face does: words joined by spaces, "##" pieces glued on, " ." -> ".";
  // without `special` the control and unknown tokens are left out. Unigram decodes as Hugging
  // Face's Metaspace decoder: U+2581 is a space, the first token (after special tokens are left
  // out, without `special`) loses its leading one.
  std::string decode(std::span<const int32_t> ids, bool special = true) const;

  int32_t n_vocab() const { return int32_t(types_.size()); }
  Kind kind() const { return kind_; }
  const std::string& model_name() const { return model_; }
  const std::string& pre_name() const { return pre_; }
  const SpecialIds& special() const { return sp_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // WordPiece: [SEP] is appended (tokenizer.ggml.add_sep_token) and the text is lowercased
  // with accents stripped (an uncased vocabulary).
  bool add_sep() const { return add_sep_; }
  bool lowercase() const { return wp_lowercase_; }
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_; }
  std::string_view token_text(int32_t id) const;
  TokenType token_type(int32_t id) const;
  // Id of a token by its exact text, -1 if none.
  int32_t find(std::string_view text) const;

 private:
  Tokenizer() = default;
  struct Trie;
  void encode_fragment(std::string_view text, bool first, std::vector<int32_t>& out,
                       std::unordered_map<std::string, std::vector<int32_t>>& cache) const;
  void bpe_word(std::string_view mapped, std::vector<int32_t>& out) const;
  void spm_text(std::string_view text, std::vector<int32_t>& out) const;
  void byte_fallback(std::string_view bytes, std::vector<int32_t>& out) const;
  void wordpiece_text(std::string_view text, std::vector<int32_t>& out) const;
  std::string wordpiece_decode(std::span<const int32_t> ids, bool special) const;
  std::string unigram_decode(std::span<const int32_t> ids, bool special) const;

  Kind kind_ = Kind::kBpe;
  std::string model_, pre_;
  std::string text_arena_;          // all token texts back to back
  std::vector<uint32_t> text_off_;  // n_vocab + 1 offsets into text_arena_
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string_view, int32_t> by_text_;
  // BPE: (left id << 32 | right id) -> (rank << 32 | merged id)
  std::unordered_map<uint64_t, uint64_t> merges_;
  std::unique_ptr<PreTokenizer> pre_tok_;
  bool nfc_ = false, ignore_merges_ = false;
  // Gemma 4's BPE: merges over raw UTF-8 characters (no GPT-2 byte alphabet), spaces escaped to
  // U+2581 first, unknown characters as <0xXX> byte tokens.
  bool byte_encode_ = true, escape_spaces_ = false;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  // WordPiece: append [SEP]; BertNormalizer lowercase + strip_accents (uncased vocabulary).
  bool add_sep_ = false, wp_lowercase_ = true;
  // Unigram: tokenizer.ggml.precompiled_charsmap, remove_extra_whitespaces, the model.
  bool remove_extra_ws_ = false;
  std::unique_ptr<unigram::CharsMap> charsmap_;
  std::unique_ptr<unigram::Model> unigram_;
  SpecialIds sp_;
  std::vector<int32_t> eog_;
  std::vector<uint8_t> eog_mask_;
  int32_t byte_ids_[256];  // SPM <0xXX> tokens, -1 if absent
  std::unique_ptr<Trie> all_special_, user_defined_;
};

}  // namespace hearth::tokenizer
