#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <queue>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/unigram.h"
#include "tokenizer/wordpiece.h"

namespace hearth::tokenizer {

// Byte trie over special-token texts: leftmost-longest matching in one pass over the text.
struct Tokenizer::Trie {
  struct Node {
    int32_t id = -1;
    std::vector<std::pair<uint8_t, int32_t>> kids;  // sorted by byte
  };
  std::vector<Node> nodes{Node{}};
  bool first[256] = {};

  void add(std::string_view s, int32_t id) {
    if (s.empty()) return;
    first[uint8_t(s[0])] = true;
    int32_t n = 0;
    for (char ch : s) {
      const uint8_t c = uint8_t(ch);
      auto& k = nodes[size_t(n)].kids;
      auto it = std::lower_bound(k.begin(), k.end(), std::make_pair(c, int32_t(-1)),
                                 [](auto a, auto b) { return a.first < b.first; });
      if (it != k.end() && it->first == c) {
        n = it->second;
      } else {
        const int32_t m = int32_t(nodes.size());
        k.insert(it, {c, m});
        nodes.emplace_back();
        n = m;
      }
    }
    nodes[size_t(n)].id = id;
  }
  // Longest token starting at text[pos]: (id, length) or (-1, 0).
  std::pair<int32_t, size_t> longest(std::string_view text, size_t pos) const {
    if (!first[uint8_t(text[pos])]) return {-1, 0};
    int32_t n = 0, best = -1;
    size_t best_len = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const uint8_t c = uint8_t(text[i]);
      const auto& k = nodes[size_t(n)].kids;
      auto it = std::lower_bound(k.begin(), k.end(), std::make_pair(c, int32_t(-1)),
                                 [](auto a, auto b) { return a.first < b.first; });
      if (it == k.end() || it->first != c) break;
      n = it->second;
      if (nodes[size_t(n)].id >= 0) {
        best = nodes[size_t(n)].id;
        best_len = i - pos + 1;
      }
    }
    return {best, best_len};
  }
};

Tokenizer::~Tokenizer() = default;

namespace {

const char* const kEogTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
    "<turn|>",
};

// The byte of a "<0xXX>" token (two hex digits, either case), -1 for any other text.
int byte_token_value(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
  };
  const int hi = hex(text[3]), lo = hex(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

struct FimSpec {
  const char* key;
  int32_t SpecialIds::*field;
  std::initializer_list<const char*> texts;
};

}  // namespace

Result<std::shared_ptr<const Tokenizer>> Tokenizer::from_gguf(const gguf::GgufFile& f) {
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  HEARTH_ASSIGN_OR_RETURN(t->model_, f.get_string("tokenizer.ggml.model"));
  if (t->model_ == "gpt2") {
    t->kind_ = Kind::kBpe;
  } else if (t->model_ == "gemma4") {
    t->kind_ = Kind::kBpe;
    t->byte_encode_ = false;
    t->escape_spaces_ = true;
  } else if (t->model_ == "llama") {
    t->kind_ = Kind::kSpm;
  } else if (t->model_ == "bert") {
    t->kind_ = Kind::kWordPiece;
  } else if (t->model_ == "t5") {
    t->kind_ = Kind::kUnigram;
  } else {
    return unsupported(
        "[tokenizer] tokenizer model '" + t->model_ +
        "' is not supported (tokenizer.ggml.model; supported: gpt2, gemma4, llama, bert, t5)");
  }
  HEARTH_ASSIGN_OR_RETURN(auto tokens, f.get_string_array("tokenizer.ggml.tokens"));
  const size_t n = tokens.size();
  if (n == 0 || n > (size_t(1) << 31) - 1)
    return corrupt("[tokenizer] tokenizer.ggml.tokens has " + std::to_string(n) + " entries");
  size_t total = 0;
  for (auto s : tokens) total += s.size();
  if (total > std::numeric_limits<uint32_t>::max())
    return corrupt("[tokenizer] tokenizer.ggml.tokens holds more than 4 GiB of text");
  t->text_arena_.reserve(total);
  t->text_off_.reserve(n + 1);
  for (auto s : tokens) {
    t->text_off_.push_back(uint32_t(t->text_arena_.size()));
    t->text_arena_.append(s);
  }
  t->text_off_.push_back(uint32_t(t->text_arena_.size()));
  t->by_text_.reserve(n * 2);
  for (size_t i = n; i-- > 0;)
    t->by_text_[t->token_text(int32_t(i))] = int32_t(i);  // lowest id wins

  t->types_.assign(n, TokenType::kNormal);
  if (f.find("tokenizer.ggml.token_type")) {
    HEARTH_ASSIGN_OR_RETURN(auto ty, f.get_int_array("tokenizer.ggml.token_type"));
    if (ty.size() != n)
      return corrupt("[tokenizer] tokenizer.ggml.token_type has " + std::to_string(ty.size()) +
                     " entries for " + std::to_string(n) + " tokens");
    for (size_t i = 0; i < n; ++i)
      t->types_[i] = ty[i] >= 0 && ty[i] <= 6 ? TokenType(ty[i]) : TokenType::kNormal;
  }
  if (f.find("tokenizer.ggml.scores")) {
    HEARTH_ASSIGN_OR_RETURN(auto sc, f.get_float_array("tokenizer.ggml.scores"));
    if (sc.size() != n)
      return corrupt("[tokenizer] tokenizer.ggml.scores has " + std::to_string(sc.size()) +
                     " entries for " + std::to_string(n) + " tokens");
    t->scores_.assign(sc.begin(), sc.end());
    for (float& x : t->scores_)  // NaN would break the merge queue's ordering: merge it last
      if (std::isnan(x)) x = -std::numeric_limits<float>::infinity();
  }

  if (t->kind_ == Kind::kBpe) {
    HEARTH_ASSIGN_OR_RETURN(auto merges, f.get_string_array("tokenizer.ggml.merges"));
    t->merges_.reserve(merges.size() * 2);
    for (size_t r = 0; r < merges.size(); ++r) {
      const auto m = merges[r];
      const size_t sp = m.find(' ', 1);  // a part may itself start with a space in odd vocabs
      if (sp == std::string_view::npos) continue;
      const int32_t a = t->find(m.substr(0, sp)), b = t->find(m.substr(sp + 1));
      const int32_t ab = t->find(std::string(m.substr(0, sp)) + std::string(m.substr(sp + 1)));
      if (a < 0 || b < 0 || ab < 0) continue;  // merge of pieces outside the vocab: unusable
      const uint64_t key = uint64_t(uint32_t(a)) << 32 | uint32_t(b);
      t->merges_.emplace(key, uint64_t(r) << 32 | uint32_t(ab));  // first (lowest) rank wins
    }
    std::string pre;
    if (f.find("tokenizer.ggml.pre")) {
      HEARTH_ASSIGN_OR_RETURN(pre, f.get_string("tokenizer.ggml.pre"));
    }
    t->pre_ = pre;
    if (t->model_ == "gemma4") pre = "gemma4";  // the only split Gemma 4 files use
    HEARTH_ASSIGN_OR_RETURN(auto cfg, pre_tokenizer_config(pre));
    t->nfc_ = cfg.nfc;
    t->ignore_merges_ = cfg.ignore_merges;
    HEARTH_ASSIGN_OR_RETURN(t->pre_tok_, PreTokenizer::compile(cfg));
  } else if (t->kind_ == Kind::kSpm) {
    if (t->scores_.empty())
      return corrupt(
          "[tokenizer] a 'llama' (SentencePiece) vocabulary needs tokenizer.ggml.scores");
    HEARTH_ASSIGN_OR_RETURN(t->add_space_prefix_,
                            f.get_bool_or("tokenizer.ggml.add_space_prefix", true));
  } else if (t->kind_ == Kind::kUnigram) {
    if (t->scores_.empty())
      return corrupt("[tokenizer] a 't5' (Unigram) vocabulary needs tokenizer.ggml.scores");
    // llama.cpp's defaults when the keys are missing: neither (its converters write both).
    HEARTH_ASSIGN_OR_RETURN(t->add_space_prefix_,
                            f.get_bool_or("tokenizer.ggml.add_space_prefix", false));
    HEARTH_ASSIGN_OR_RETURN(t->remove_extra_ws_,
                            f.get_bool_or("tokenizer.ggml.remove_extra_whitespaces", false));
    std::span<const uint8_t> blob;
    if (const gguf::MetaValue* v = f.find("tokenizer.ggml.precompiled_charsmap")) {
      if (v->type != gguf::ValueType::ARRAY ||
          (v->elem_type != gguf::ValueType::U8 && v->elem_type != gguf::ValueType::I8))
        return corrupt(
            "[tokenizer] tokenizer.ggml.precompiled_charsmap must be an array of bytes (u8 or "
            "i8), not " +
            std::string(
                gguf::value_type_name(v->type == gguf::ValueType::ARRAY ? v->elem_type : v->type)) +
            (v->type == gguf::ValueType::ARRAY ? " elements" : ""));
      if (v->count > 0) blob = {v->raw, size_t(v->count)};
    }
    auto cm = unigram::CharsMap::parse(blob);
    if (!cm.is_ok())
      return corrupt("[tokenizer] tokenizer.ggml.precompiled_charsmap: " + cm.status().message());
    t->charsmap_ = std::make_unique<unigram::CharsMap>(std::move(*cm));
  } else {
    // WordPiece. Neither llama.cpp's converter nor Ollama's records whether the vocabulary is
    // cased (llama.cpp and Ollama always lowercase). Hugging Face lowercases and strips accents
    // only for uncased tokenizers, whose vocabularies hold no capital letters: a normal token
    // with an ASCII capital marks a cased vocabulary (bert-base-cased has "\u2581The").
    if (f.find("tokenizer.ggml.pre")) {
      HEARTH_ASSIGN_OR_RETURN(t->pre_, f.get_string("tokenizer.ggml.pre"));
    }
    for (size_t i = 0; i < n && t->wp_lowercase_; ++i) {
      if (t->types_[i] != TokenType::kNormal) continue;
      for (char c : t->token_text(int32_t(i)))
        if (c >= 'A' && c <= 'Z') {
          t->wp_lowercase_ = false;
          break;
        }
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    t->byte_ids_[b] = t->find(name);
  }

  // Special ids: metadata first, then well-known texts for the ones the file does not name.
  auto id_key = [&](const char* key, int32_t& dst) -> Status {
    HEARTH_ASSIGN_OR_RETURN(int64_t v, f.get_int_or(key, -1));
    if (v >= int64_t(n)) return corrupt(std::string("[tokenizer] ") + key + " is out of range");
    dst = v < 0 ? -1 : int32_t(v);  // any negative id means none (never wrapped into range)
    return Status::ok();
  };
  HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.bos_token_id", t->sp_.bos));
  HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.eos_token_id", t->sp_.eos));
  HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.eot_token_id", t->sp_.eot));
  HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.eom_token_id", t->sp_.eom));
  HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.unknown_token_id", t->sp_.unk));
  HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.padding_token_id", t->sp_.pad));
  HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.seperator_token_id", t->sp_.sep));
  const FimSpec fims[] = {
      {"tokenizer.ggml.fim_pre_token_id",
       &SpecialIds::fim_pre,
       {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "▁<PRE>", "<｜fim▁begin｜>"}},
      {"tokenizer.ggml.fim_suf_token_id",
       &SpecialIds::fim_suf,
       {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "▁<SUF>", "<｜fim▁hole｜>"}},
      {"tokenizer.ggml.fim_mid_token_id",
       &SpecialIds::fim_mid,
       {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "▁<MID>", "<｜fim▁end｜>"}},
      {"tokenizer.ggml.fim_pad_token_id",
       &SpecialIds::fim_pad,
       {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"}},
      {"tokenizer.ggml.fim_rep_token_id",
       &SpecialIds::fim_rep,
       {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
      {"tokenizer.ggml.fim_sep_token_id",
       &SpecialIds::fim_sep,
       {"<|file_sep|>", "<file_sep>", "<filename>"}},
  };
  for (const auto& fs : fims) {
    HEARTH_RETURN_IF_ERROR(id_key(fs.key, t->sp_.*fs.field));
    if (t->sp_.*fs.field < 0)
      for (const char* s : fs.texts)
        if (int32_t id = t->find(s); id >= 0) {
          t->sp_.*fs.field = id;
          break;
        }
  }
  if (t->sp_.eot < 0)
    for (const char* s : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<EOT>"})
      if (int32_t id = t->find(s); id >= 0 && t->token_type(id) == TokenType::kControl) {
        t->sp_.eot = id;
        break;
      }
  if (t->sp_.unk < 0 && t->kind_ == Kind::kSpm) t->sp_.unk = t->find("<unk>");
  if (t->kind_ == Kind::kUnigram) {
    // Without the keys: the unknown-type token (else "<unk>"), "</s>", "<pad>" — the texts of
    // llama.cpp's T5 defaults (ids 2, 1, 0), found by name so a short vocabulary stays in range.
    for (size_t i = 0; i < n && t->sp_.unk < 0; ++i)
      if (t->types_[i] == TokenType::kUnknown) t->sp_.unk = int32_t(i);
    if (t->sp_.unk < 0) t->sp_.unk = t->find("<unk>");
    if (t->sp_.eos < 0) t->sp_.eos = t->find("</s>");
    if (t->sp_.pad < 0) t->sp_.pad = t->find("<pad>");
    // The lattice: normal, user-defined (score 0) and unused tokens, as llama.cpp's UGM
    // tokenizer builds it. An unknown character scores 10 below the lowest normal piece.
    std::vector<std::string_view> texts(n);
    std::vector<double> scores(n, 0.0);
    double min_score = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < n; ++i) {
      const TokenType ty = t->types_[i];
      if (ty != TokenType::kNormal && ty != TokenType::kUserDefined && ty != TokenType::kUnused)
        continue;
      texts[i] = t->token_text(int32_t(i));
      scores[i] = ty == TokenType::kUserDefined ? 0.0 : double(t->scores_[i]);
      if (ty == TokenType::kNormal && std::isfinite(scores[i]))
        min_score = std::min(min_score, scores[i]);
    }
    const double unk_score = (std::isfinite(min_score) ? min_score : 0.0) - 10.0;
    t->unigram_ = std::make_unique<unigram::Model>(std::move(texts), std::move(scores), t->sp_.unk,
                                                   unk_score);
  }
  if (t->kind_ == Kind::kWordPiece) {
    // [CLS] is the BOS of a BERT vocabulary: cls_token_id (llama.cpp's converter), else
    // bos_token_id, else the token text; likewise [SEP], [UNK], [PAD].
    int32_t cls = -1;
    HEARTH_RETURN_IF_ERROR(id_key("tokenizer.ggml.cls_token_id", cls));
    if (cls >= 0) t->sp_.bos = cls;
    auto by_text = [&](int32_t& dst, const char* text) {
      if (dst < 0) dst = t->find(text);
    };
    by_text(t->sp_.bos, "[CLS]");
    by_text(t->sp_.sep, "[SEP]");
    by_text(t->sp_.unk, "[UNK]");
    by_text(t->sp_.pad, "[PAD]");
    HEARTH_ASSIGN_OR_RETURN(t->add_sep_, f.get_bool_or("tokenizer.ggml.add_sep_token", true));
  }

  HEARTH_ASSIGN_OR_RETURN(t->add_bos_,
                          f.get_bool_or("tokenizer.ggml.add_bos_token",
                                        t->kind_ == Kind::kSpm || t->kind_ == Kind::kWordPiece ||
                                            t->pre_ == "llama3" || t->pre_ == "llama-bpe"));
  HEARTH_ASSIGN_OR_RETURN(
      t->add_eos_, f.get_bool_or("tokenizer.ggml.add_eos_token", t->kind_ == Kind::kUnigram));

  // End of generation: EOS/EOT/EOM, FIM pad/rep/sep and the known end-of-turn texts.
  t->eog_mask_.assign(n, 0);
  auto add_eog = [&](int32_t id) {
    if (id >= 0 && !t->eog_mask_[size_t(id)]) {
      t->eog_mask_[size_t(id)] = 1;
      t->eog_.push_back(id);
    }
  };
  for (int32_t id :
       {t->sp_.eos, t->sp_.eot, t->sp_.eom, t->sp_.fim_pad, t->sp_.fim_rep, t->sp_.fim_sep})
    add_eog(id);
  for (const char* s : kEogTexts)
    if (int32_t id = t->find(s); id >= 0 && t->token_type(id) == TokenType::kControl) add_eog(id);
  // Ollama's key: generation_config.json's list of end ids (ids outside the vocabulary ignored).
  if (f.find("tokenizer.ggml.eos_token_ids")) {
    HEARTH_ASSIGN_OR_RETURN(auto ids, f.get_int_array("tokenizer.ggml.eos_token_ids"));
    for (int64_t id : ids)
      if (id >= 0 && id < int64_t(n)) add_eog(int32_t(id));
  }

  t->all_special_ = std::make_unique<Trie>();
  t->user_defined_ = std::make_unique<Trie>();
  for (size_t i = 0; i < n; ++i) {
    const TokenType ty = t->types_[i];
    const auto text = t->token_text(int32_t(i));
    if (ty == TokenType::kUserDefined) {
      t->user_defined_->add(text, int32_t(i));
      t->all_special_->add(text, int32_t(i));
    } else if (ty == TokenType::kControl || ty == TokenType::kUnknown) {
      t->all_special_->add(text, int32_t(i));
    }
  }
  return std::shared_ptr<const Tokenizer>(std::move(t));
}

std::string_view Tokenizer::token_text(int32_t id) const {
  if (id < 0 || size_t(id) + 1 >= text_off_.size()) return {};
  return std::string_view(text_arena_)
      .substr(text_off_[size_t(id)], text_off_[size_t(id) + 1] - text_off_[size_t(id)]);
}

TokenType Tokenizer::token_type(int32_t id) const {
  return id >= 0 && size_t(id) < types_.size() ? types_[size_t(id)] : TokenType::kUndefined;
}

int32_t Tokenizer::find(std::string_view text) const {
  auto it = by_text_.find(text);
  return it == by_text_.end() ? -1 : it->second;
}

bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && size_t(id) < eog_mask_.size() && eog_mask_[size_t(id)];
}

std::vector<int32_t> Tokenizer::encode(std::string_view raw, bool add_special,
                                       bool parse_special) const {
  const std::string text = sanitize_utf8(raw);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && add_bos_ && sp_.bos >= 0) out.push_back(sp_.bos);
  std::unordered_map<std::string, std::vector<int32_t>> cache;
  const Trie& trie = parse_special ? *all_special_ : *user_defined_;
  bool prev_special = true;
  size_t seg = 0, pos = 0;
  while (pos < text.size()) {
    auto [id, len] = trie.longest(text, pos);
    if (id < 0) {
      ++pos;
      continue;
    }
    if (pos > seg)
      encode_fragment(std::string_view(text).substr(seg, pos - seg), prev_special, out, cache);
    out.push_back(id);
    pos += len;
    seg = pos;
    prev_special = true;
  }
  if (seg < text.size())
    encode_fragment(std::string_view(text).substr(seg), prev_special, out, cache);
  if (add_special && add_sep_ && sp_.sep >= 0) out.push_back(sp_.sep);
  if (add_special && add_eos_ && sp_.eos >= 0) out.push_back(sp_.eos);
  return out;
}

void Tokenizer::encode_fragment(
    std::string_view frag, bool after_special, std::vector<int32_t>& out,
    std::unordered_map<std::string, std::vector<int32_t>>& cache) const {
  if (kind_ == Kind::kWordPiece) {
    wordpiece_text(frag, out);
    return;
  }
  if (kind_ == Kind::kUnigram) {
    // Each fragment between special tokens on its own, with its own dummy prefix (llama.cpp;
    // Hugging Face's Metaspace prepends to every section: prepend_scheme "always").
    unigram::NormalizerOptions o;
    o.add_space_prefix = add_space_prefix_;
    o.remove_extra_whitespaces = remove_extra_ws_;
    unigram_->encode(unigram::normalize(frag, *charsmap_, o), out);
    return;
  }
  if (kind_ == Kind::kSpm) {
    std::string s;
    s.reserve(frag.size() + 8);
    if (add_space_prefix_ && after_special) s += "\xE2\x96\x81";
    for (char c : frag) {
      if (c == ' ')
        s += "\xE2\x96\x81";  // U+2581
      else
        s += c;
    }
    spm_text(s, out);
    return;
  }
  std::string normalized;
  if (nfc_) {
    normalized = nfc(frag);
    frag = normalized;
  }
  if (escape_spaces_) {
    std::string esc;
    esc.reserve(frag.size() + 16);
    for (char c : frag) {
      if (c == ' ')
        esc += "\xE2\x96\x81";  // U+2581
      else
        esc += c;
    }
    normalized = std::move(esc);
    frag = normalized;
  }
  std::vector<std::pair<size_t, size_t>> words;
  pre_tok_->split(frag, words);
  const ByteMap& bm = ByteMap::get();
  std::string mapped;
  for (auto [b, len] : words) {
    mapped.clear();
    if (byte_encode_) {
      for (size_t i = b; i < b + len; ++i) mapped += bm.to_text[uint8_t(frag[i])];
    } else {
      mapped.assign(frag.substr(b, len));
    }
    auto hit = cache.find(mapped);
    if (hit != cache.end()) {
      out.insert(out.end(), hit->second.begin(), hit->second.end());
      continue;
    }
    std::vector<int32_t> ids;
    // A run of newlines that is itself a token stays whole (Gemma 4).
    const bool newline_run = !byte_encode_ && mapped.find_first_not_of('\n') == std::string::npos;
    if (int32_t id; (ignore_merges_ || newline_run) && (id = find(mapped)) >= 0)
      ids.push_back(id);
    else
      bpe_word(mapped, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cache.size() < 65536) cache.emplace(mapped, std::move(ids));
  }
}

void Tokenizer::bpe_word(std::string_view w, std::vector<int32_t>& out) const {
  struct Sym {
    int32_t id;
    int32_t prev, next;
    uint32_t off, len;  // bytes of `w` (for symbols outside the vocab)
  };
  std::vector<Sym> syms;
  for (size_t i = 0; i < w.size();) {
    size_t l = size_t(utf8_seq_len(uint8_t(w[i])));
    if (i + l > w.size()) l = w.size() - i;
    const int32_t k = int32_t(syms.size());
    syms.push_back({find(w.substr(i, l)), k - 1, k + 1, uint32_t(i), uint32_t(l)});
    i += l;
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  // (rank, position) min-heap; entries carry the ids they were made for and are skipped when
  // either symbol has changed since.
  struct Item {
    uint32_t rank;
    int32_t pos, left, right, merged;
    bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  auto push = [&](int32_t i) {
    if (i < 0) return;
    const int32_t j = syms[size_t(i)].next;
    if (j < 0 || syms[size_t(i)].id < 0 || syms[size_t(j)].id < 0) return;
    const uint64_t key =
        uint64_t(uint32_t(syms[size_t(i)].id)) << 32 | uint32_t(syms[size_t(j)].id);
    auto it = merges_.find(key);
    if (it == merges_.end()) return;
    heap.push({uint32_t(it->second >> 32), i, syms[size_t(i)].id, syms[size_t(j)].id,
               int32_t(uint32_t(it->second))});
  };
  for (int32_t i = 0; i + 1 < int32_t(syms.size()); ++i) push(i);
  while (!heap.empty()) {
    const Item it = heap.top();
    heap.pop();
    Sym& a = syms[size_t(it.pos)];
    if (a.len == 0 || a.id != it.left || a.next < 0) continue;
    Sym& b = syms[size_t(a.next)];
    if (b.id != it.right) continue;
    a.id = it.merged;
    a.len += b.len;
    b.len = 0;  // dead
    a.next = b.next;
    if (b.next >= 0) syms[size_t(b.next)].prev = it.pos;
    push(a.prev);
    push(it.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) {
    const Sym& s = syms[size_t(i)];
    if (s.id >= 0)
      out.push_back(s.id);
    else if (!byte_encode_)
      byte_fallback(w.substr(s.off, s.len), out);  // character vocabularies fall back to bytes
    else if (sp_.unk >= 0)
      out.push_back(sp_.unk);  // a character outside a byte-level vocab: nothing better exists
  }
}

void Tokenizer::byte_fallback(std::string_view bytes, std::vector<int32_t>& out) const {
  for (char c : bytes) {
    const int32_t id = byte_ids_[uint8_t(c)];
    if (id >= 0)
      out.push_back(id);
    else if (sp_.unk >= 0)
      out.push_back(sp_.unk);
  }
}

void Tokenizer::spm_text(std::string_view s, std::vector<int32_t>& out) const {
  struct Sym {
    int32_t prev, next;
    uint32_t off, len;
  };
  std::vector<Sym> syms;
  for (size_t i = 0; i < s.size();) {
    size_t l = size_t(utf8_seq_len(uint8_t(s[i])));
    if (i + l > s.size()) l = s.size() - i;
    const int32_t k = int32_t(syms.size());
    syms.push_back({k - 1, k + 1, uint32_t(i), uint32_t(l)});
    i += l;
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  // Highest score first, then leftmost. Merge results are ordinary or user-defined pieces (Gemma's
  // whitespace runs are user-defined), never control, unknown or byte tokens.
  struct Item {
    float score;
    int32_t left, right;
    uint32_t len;
    bool operator<(const Item& o) const {
      return score != o.score ? score < o.score : left > o.left;
    }
  };
  std::priority_queue<Item> heap;
  auto push = [&](int32_t i) {
    if (i < 0) return;
    const int32_t j = syms[size_t(i)].next;
    if (j < 0) return;
    const Sym &a = syms[size_t(i)], &b = syms[size_t(j)];
    const int32_t id = find(s.substr(a.off, a.len + b.len));
    if (id < 0) return;
    const TokenType ty = types_[size_t(id)];
    if (ty != TokenType::kNormal && ty != TokenType::kUndefined && ty != TokenType::kUserDefined)
      return;
    heap.push({scores_[size_t(id)], i, j, a.len + b.len});
  };
  for (int32_t i = 0; i + 1 < int32_t(syms.size()); ++i) push(i);
  while (!heap.empty()) {
    const Item it = heap.top();
    heap.pop();
    Sym& a = syms[size_t(it.left)];
    if (a.len == 0 || a.next != it.right) continue;
    Sym& b = syms[size_t(it.right)];
    if (a.len + b.len != it.len) continue;  // stale: one side grew since
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (b.next >= 0) syms[size_t(b.next)].prev = it.left;
    push(a.prev);
    push(it.left);
  }
  for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) {
    const auto piece = s.substr(syms[size_t(i)].off, syms[size_t(i)].len);
    const int32_t id = find(piece);
    if (id >= 0)
      out.push_back(id);
    else
      byte_fallback(piece, out);
  }
}

std::string Tokenizer::piece(int32_t id, bool special) const {
  const TokenType ty = token_type(id);
  const std::string_view text = token_text(id);
  switch (ty) {
    case TokenType::kControl:
      return special ? std::string(text) : std::string();
    case TokenType::kUnused:
      return {};
    case TokenType::kUnknown:
      return std::string(text);
    case TokenType::kUserDefined:
      if (kind_ == Kind::kBpe && byte_encode_) return std::string(text);
      break;  // SentencePiece: whitespace runs such as "▁▁▁" are user-defined in Gemma
    case TokenType::kByte:
      // <0xXX>: the byte. A malformed one (<0xZZ>, <0x>) is only text.
      if (int b; (kind_ == Kind::kSpm || kind_ == Kind::kUnigram || !byte_encode_) &&
                 (b = byte_token_value(text)) >= 0)
        return std::string(1, char(b));
      [[fallthrough]];
    default:
      break;
  }
  if (kind_ == Kind::kBpe && byte_encode_) return ByteMap::get().to_bytes(text);
  std::string r;
  r.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      r += ' ';
      i += 3;
    } else {
      r += text[i++];
    }
  }
  return r;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool special) const {
  if (kind_ == Kind::kWordPiece) return wordpiece_decode(ids, special);
  if (kind_ == Kind::kUnigram) return unigram_decode(ids, special);
  std::string r;
  bool strip = kind_ == Kind::kSpm && add_space_prefix_;
  for (int32_t id : ids) {
    std::string p = piece(id, special);
    if (strip && token_type(id) == TokenType::kNormal) {
      if (!p.empty() && p[0] == ' ') p.erase(0, 1);
      strip = false;
    }
    r += p;
  }
  return r;
}

// WordPiece over one fragment between special tokens: BertNormalizer, BertPreTokenizer, then
// each word by greedy longest match, [UNK] for a word that does not split into pieces. A
// word-initial piece "x" is stored as "\u2581x", a continuation "##x" as "x" (llama.cpp's
// converter); only normal tokens are pieces.
void Tokenizer::wordpiece_text(std::string_view text, std::vector<int32_t>& out) const {
  wordpiece::NormalizerOptions o;
  o.lowercase = o.strip_accents = wp_lowercase_;
  const std::string norm = wordpiece::normalize(text, o);
  std::vector<std::pair<size_t, size_t>> words;
  wordpiece::pre_tokenize(norm, words);
  std::string key;
  auto find_piece = [&](std::string_view piece, bool word_start) -> int32_t {
    key.assign(word_start ? "\xE2\x96\x81" : "");
    key.append(piece);
    const int32_t id = find(key);
    if (id < 0) return -1;
    const TokenType ty = types_[size_t(id)];
    return ty == TokenType::kNormal || ty == TokenType::kUndefined ? id : -1;
  };
  constexpr size_t kMaxCharsPerWord = 100;  // Hugging Face's max_input_chars_per_word
  for (auto [b, len] : words) {
    if (!wordpiece::tokenize_word(std::string_view(norm).substr(b, len), kMaxCharsPerWord,
                                  find_piece, out) &&
        sp_.unk >= 0)
      out.push_back(sp_.unk);
  }
}

std::string Tokenizer::wordpiece_decode(std::span<const int32_t> ids, bool special) const {
  std::vector<std::string> toks;  // in Hugging Face's form
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    const TokenType ty = token_type(id);
    const std::string_view text = token_text(id);
    if (ty == TokenType::kUndefined && text.empty()) continue;  // out of range
    if (ty == TokenType::kControl || ty == TokenType::kUnknown) {
      if (special) toks.emplace_back(text);
    } else if (ty == TokenType::kNormal || ty == TokenType::kUndefined) {
      if (text.compare(0, 3, "\xE2\x96\x81") == 0)
        toks.emplace_back(text.substr(3));
      else
        toks.push_back("##" + std::string(text));
    } else if (ty != TokenType::kUnused) {
      toks.emplace_back(text);  // user-defined tokens are stored as they are
    }
  }
  return wordpiece::decode(toks);
}

// Hugging Face's Metaspace decoder over the tokens (without `special`, the special ones — control
// and unknown — are left out first): U+2581 is a space, and the first token loses a leading one
// when the tokenizer adds the dummy prefix.
std::string Tokenizer::unigram_decode(std::span<const int32_t> ids, bool special) const {
  std::string r;
  bool first = true;
  for (int32_t id : ids) {
    const TokenType ty = token_type(id);
    if (ty == TokenType::kUndefined && token_text(id).empty()) continue;  // out of range
    std::string p;
    if (ty == TokenType::kControl || ty == TokenType::kUnknown) {
      if (!special) continue;
      p = std::string(token_text(id));
    } else {
      p = piece(id, special);
      if (p.empty()) continue;
    }
    if (first && add_space_prefix_ && !p.empty() && p[0] == ' ') p.erase(0, 1);
    first = false;
    r += p;
  }
  return r;
}

}  // namespace hearth::tokenizer
