#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace hearth::tokenizer {

namespace {

// The regexes as the tokenizers' tokenizer.json files spell them (Hugging Face is the
// reference). `\s` is rewritten below to the whitespace set the reference tokenizer uses.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen35 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// o200k (GPT-4o, Llama 4): case-aware words, contractions attached, 1-3 digit groups.
constexpr const char* kO200k =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// The legacy split llama.cpp applies for "default" or a missing name.
constexpr const char* kDefault[] = {
    R"([\p{P}\$\+<=>\^~\|]+)",
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
    R"(\p{N}+)",
    R"([0-9][0-9][0-9])",
};

// JavaScript's (and so the reference tokenizer's) \s: Unicode Zs, the ASCII controls, U+2028/9
// and U+FEFF. PCRE2's Unicode \s differs on U+0085 and U+FEFF.
constexpr const char* kSpaceClass =
    R"(\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF})";

// Contractions are matched with explicit case classes, as the reference tokenizer and llama.cpp do
// (PCRE2's caseless mode would also fold U+017F and U+212A into s and k).
std::string expand_contractions(std::string p) {
  const std::string from = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
  const std::string to = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
  for (size_t at; (at = p.find(from)) != std::string::npos;) p.replace(at, from.size(), to);
  return p;
}

std::string rewrite_space_classes(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kSpaceClass) : "[" + std::string(kSpaceClass) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kSpaceClass) + "]";
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (c == '[' && !in_class)
      in_class = true;
    else if (c == ']' && in_class)
      in_class = false;
    out += c;
  }
  return out;
}

bool in(std::string_view s, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    if (s == n) return true;
  return false;
}

}  // namespace

Result<PreTokenizerConfig> pre_tokenizer_config(std::string_view pre) {
  PreTokenizerConfig c;
  if (in(pre, {"llama3", "llama-bpe", "llama-v3", "falcon3", "pixtral", "dbrx", "smaug-bpe",
               "chatglm-bpe", "glm4", "exaone", "minerva-7b"})) {
    c.patterns = {kLlama3};
    c.ignore_merges = true;
  } else if (in(pre, {"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "solar-open",
                      "grok-2"})) {
    c.patterns = {kQwen2};
    c.nfc = true;
  } else if (pre == "qwen35") {
    c.patterns = {kQwen35};
    c.nfc = true;
  } else if (in(pre, {"gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "trillion",
                      "granite-docling", "roberta-bpe", "jina-es", "jina-de", "jina-v2-es",
                      "jina-v2-de", "gigachat", "jina-v1-en", "jina-v2-code"})) {
    c.patterns = {kGpt2};
  } else if (in(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone4"})) {
    c.patterns = {R"(\p{N})", kGpt2};
  } else if (in(pre, {"gpt-4o", "llama4", "minimax-m2", "kimi-k2"})) {
    c.patterns = {kO200k};
    c.ignore_merges = pre == "llama4";
  } else if (pre == "gemma4") {
    c.patterns = {R"([^\n]+|[\n]+)"};
  } else if (pre.empty() || pre == "default") {
    c.patterns.assign(std::begin(kDefault), std::end(kDefault));
  } else {
    return unsupported("[tokenizer] unknown pre-tokenizer '" + std::string(pre) +
                       "' (tokenizer.ggml.pre)");
  }
  return c;
}

struct PreTokenizer::Impl {
  std::vector<pcre2_code*> codes;
  ~Impl() {
    for (auto* c : codes) pcre2_code_free(c);
  }
};

PreTokenizer::~PreTokenizer() = default;

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::compile(const PreTokenizerConfig& c) {
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  p->impl_ = std::make_unique<Impl>();
  for (const auto& pat : c.patterns) {
    const std::string rx = rewrite_space_classes(expand_contractions(pat));
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rx.data()), rx.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return Status(StatusCode::kInternal, "[tokenizer] pattern does not compile at " +
                                               std::to_string(off) + ": " +
                                               reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if unavailable
    p->impl_->codes.push_back(code);
  }
  return p;
}

void PreTokenizer::split(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  std::vector<std::pair<size_t, size_t>> cur{{0, text.size()}}, next;
  if (text.empty()) return;
  pcre2_match_data* md = nullptr;
  for (pcre2_code* code : impl_->codes) {
    if (!md) md = pcre2_match_data_create(4, nullptr);
    next.clear();
    for (auto [b, n] : cur) {
      const auto* subj = reinterpret_cast<PCRE2_SPTR>(text.data() + b);
      size_t pos = 0, gap = 0;
      while (pos < n) {
        const int rc = pcre2_match(code, subj, n, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) {  // empty match: step one character
          pos = s + 1;
          while (pos < n && (uint8_t(text[b + pos]) & 0xC0) == 0x80) ++pos;
          continue;
        }
        if (s > gap) next.emplace_back(b + gap, s - gap);
        next.emplace_back(b + s, e - s);
        gap = pos = e;
      }
      if (gap < n) next.emplace_back(b + gap, n - gap);
    }
    cur.swap(next);
  }
  if (md) pcre2_match_data_free(md);
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace hearth::tokenizer
