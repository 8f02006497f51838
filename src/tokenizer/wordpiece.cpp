#include "tokenizer/wordpiece.h"

#include <utf8proc.h>

#include <cstdlib>

#include "base/utf8.h"

namespace hearth::tokenizer::wordpiece {

namespace {

// Code point at s[i] of valid UTF-8 (the tokenizer sanitizes its input first); *len its bytes.
uint32_t decode_at(std::string_view s, size_t i, size_t* len) {
  utf8proc_int32_t cp = 0;
  const utf8proc_ssize_t n = utf8proc_iterate(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i), utf8proc_ssize_t(s.size() - i), &cp);
  if (n <= 0) {  // not reached on sanitized text; step one byte as U+FFFD
    *len = 1;
    return 0xFFFD;
  }
  *len = size_t(n);
  return uint32_t(cp);
}

// Rust's char::is_whitespace (the White_Space property), plus \t \n \r as HF spells out.
bool is_whitespace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// HF's is_control: categories Cc, Cf, Cn, Co ("other"), except \t \n \r.
bool is_control(uint32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (utf8proc_category(utf8proc_int32_t(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS:
      return true;
    default:
      return false;
  }
}

std::string nfd(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()),
                   &out, utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  if (n < 0) return std::string(s);
  std::string r(reinterpret_cast<char*>(out), size_t(n));
  std::free(out);
  return r;
}

// transformers' clean_up_tokenization (the WordPiece decoder's cleanup is the same list; its
// extra " do not" rule never matches a single token).
std::string clean_up(std::string s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kRules) {
    if (s.find(from) == std::string::npos) continue;
    std::string r;
    r.reserve(s.size());
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
      r.append(s, pos, hit - pos);
      r.append(to);
    }
    r.append(s, pos, std::string::npos);
    s = std::move(r);
  }
  return s;
}

}  // namespace

bool is_chinese_char(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_punctuation(uint32_t c) {
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  switch (utf8proc_category(utf8proc_int32_t(c))) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

std::string normalize(std::string_view text, const NormalizerOptions& o) {
  std::string s;
  s.reserve(text.size() + 8);
  size_t len;
  for (size_t i = 0; i < text.size(); i += len) {
    const uint32_t c = decode_at(text, i, &len);
    if (o.clean_text) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      if (is_whitespace(c)) {
        s += ' ';
        continue;
      }
    }
    if (o.handle_chinese_chars && is_chinese_char(c)) {
      s += ' ';
      s.append(text.substr(i, len));
      s += ' ';
      continue;
    }
    s.append(text.substr(i, len));
  }
  if (o.strip_accents) {
    const std::string d = nfd(s);
    s.clear();
    for (size_t i = 0; i < d.size(); i += len) {
      const uint32_t c = decode_at(d, i, &len);
      if (utf8proc_category(utf8proc_int32_t(c)) != UTF8PROC_CATEGORY_MN) s.append(d, i, len);
    }
  }
  if (o.lowercase) {
    std::string r;
    r.reserve(s.size());
    for (size_t i = 0; i < s.size(); i += len) {
      const uint32_t c = decode_at(s, i, &len);
      if (c < 0x80) {
        r += char(c >= 'A' && c <= 'Z' ? c + 32 : c);
      } else if (c == 0x130) {  // the one unconditional multi-character lowercase mapping
        r += "i\xCC\x87";
      } else {
        append_utf8(r, uint32_t(utf8proc_tolower(utf8proc_int32_t(c))));
      }
    }
    s = std::move(r);
  }
  return s;
}

void pre_tokenize(std::string_view text, std::vector<std::pair<size_t, size_t>>& words) {
  size_t start = 0, len;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); i += len) {
    const uint32_t c = decode_at(text, i, &len);
    const bool ws = is_whitespace(c), punct = !ws && is_punctuation(c);
    if (ws || punct) {
      if (in_word) words.emplace_back(start, i - start);
      in_word = false;
      if (punct) words.emplace_back(i, len);
    } else if (!in_word) {
      in_word = true;
      start = i;
    }
  }
  if (in_word) words.emplace_back(start, text.size() - start);
}

bool tokenize_word(std::string_view word, size_t max_chars,
                   const std::function<int32_t(std::string_view, bool)>& find,
                   std::vector<int32_t>& out) {
  std::vector<size_t> bounds;  // byte offset of every character, then the end
  size_t len;
  for (size_t i = 0; i < word.size(); i += len) {
    decode_at(word, i, &len);
    bounds.push_back(i);
  }
  const size_t n = bounds.size();
  bounds.push_back(word.size());
  if (n == 0 || n > max_chars) return false;
  const size_t mark = out.size();
  for (size_t start = 0; start < n;) {
    int32_t id = -1;
    size_t end = n;
    for (; end > start; --end) {
      id = find(word.substr(bounds[start], bounds[end] - bounds[start]), start == 0);
      if (id >= 0) break;
    }
    if (id < 0) {
      out.resize(mark);
      return false;
    }
    out.push_back(id);
    start = end;
  }
  return true;
}

std::string decode(const std::vector<std::string>& tokens) {
  std::string r;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (i == 0)
      r += clean_up(t);
    else if (t.compare(0, 2, "##") == 0)
      r += clean_up(t.substr(2));
    else
      r += clean_up(" " + t);
  }
  return clean_up(std::move(r));
}

}  // namespace hearth::tokenizer::wordpiece
