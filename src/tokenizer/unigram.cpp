#include "tokenizer/unigram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth::tokenizer::unigram {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// A unit's offset field: bits 10-30, times 256 when bit 9 is set.
uint32_t unit_offset(uint32_t u) {
  return (u >> 10) << ((u & (1u << 9)) >> 6);
}

// Length of the well-formed UTF-8 sequence at s[pos] (its code point in cp), 0 if ill-formed.
size_t utf8_at(std::string_view s, size_t pos, uint32_t& cp) {
  const uint8_t b0 = uint8_t(s[pos]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t n;
  uint32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (pos + n > s.size()) return 0;
  for (size_t i = 1; i < n; ++i) {
    const uint8_t b = uint8_t(s[pos + i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

Result<CharsMap> CharsMap::parse(std::span<const uint8_t> blob) {
  CharsMap m;
  if (blob.empty()) return m;
  const auto bad = [&](const std::string& what) {
    return corrupt("precompiled charsmap of " + std::to_string(blob.size()) + " bytes: " + what);
  };
  if (blob.size() < 4) return bad("too short for its 4-byte header");
  const uint64_t trie_bytes = load_le32(blob.data());
  if (trie_bytes % 4 != 0)
    return bad("its trie size " + std::to_string(trie_bytes) + " is not a multiple of 4");
  // llama.cpp requires at least one byte of replacement strings after the trie.
  if (4 + trie_bytes >= blob.size())
    return bad("its trie of " + std::to_string(trie_bytes) +
               " bytes leaves no room for the replacement strings");
  if (blob.back() != 0) return bad("the replacement strings do not end with a NUL byte");
  m.units_.resize(size_t(trie_bytes / 4));
  for (size_t i = 0; i < m.units_.size(); ++i) m.units_[i] = load_le32(blob.data() + 4 + 4 * i);
  m.strings_.assign(reinterpret_cast<const char*>(blob.data()) + 4 + trie_bytes,
                    blob.size() - 4 - size_t(trie_bytes));
  return m;
}

std::pair<size_t, std::string_view> CharsMap::longest(std::string_view text, size_t pos) const {
  if (units_.empty()) return {0, {}};
  const size_t n = units_.size();
  uint32_t node = unit_offset(units_[0]);
  size_t best_len = 0, best_value = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint8_t c = uint8_t(text[i]);
    if (c == 0) break;
    node ^= c;
    if (node >= n) break;
    const uint32_t u = units_[node];
    if ((u & 0x800000FFu) != c) break;  // not a child with this label (value units have bit 31)
    node ^= unit_offset(u);
    if ((u >> 8) & 1) {
      if (node >= n) break;
      const uint32_t value = units_[node] & 0x7FFFFFFFu;
      if (value < strings_.size()) {
        best_len = i - pos + 1;
        best_value = value;
      }
    }
  }
  if (best_len == 0) return {0, {}};
  const std::string_view rest = std::string_view(strings_).substr(best_value);
  return {best_len, rest.substr(0, rest.find('\0'))};  // strings_ ends with NUL
}

bool is_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

std::string normalize(std::string_view text, const CharsMap& map, const NormalizerOptions& o) {
  // 1. The charsmap: the longest rule at each position; characters without one stay.
  std::string s;
  s.reserve(text.size() + text.size() / 4);
  for (size_t pos = 0; pos < text.size();) {
    if (auto [len, rep] = map.longest(text, pos); len > 0) {
      s += rep;
      pos += len;
      continue;
    }
    uint32_t cp;
    if (const size_t len = utf8_at(text, pos, cp); len > 0) {
      s.append(text.substr(pos, len));
      pos += len;
    } else {
      s += "\xEF\xBF\xBD";  // U+FFFD for one byte, as SentencePiece does
      ++pos;
    }
  }

  // 2. Whitespace: ' ' is the only space the model knows, written as U+2581.
  std::string out;
  out.reserve(s.size() + s.size() / 2 + 3);
  const bool suffix = o.treat_whitespace_as_suffix;
  if (!o.remove_extra_whitespaces) {
    // Every space kept; the prefix goes before the first non-space (llama.cpp), the suffix last.
    bool prefixed = !o.add_space_prefix || suffix;
    for (char c : s) {
      if (c == ' ') {
        out += kSpace;
        continue;
      }
      if (!prefixed) {
        out += kSpace;
        prefixed = true;
      }
      out += c;
    }
    if (o.add_space_prefix && suffix) out += kSpace;
    return out;
  }
  // Trailing whitespace of any kind goes (Hugging Face's Strip), then words are joined by one
  // U+2581, with the dummy prefix (or suffix) when asked for — no prefix before a text that
  // already starts with U+2581 (Hugging Face's Metaspace; only without a charsmap, which maps it
  // to ' ').
  size_t end = s.size();
  while (end > 0) {
    size_t b = end - 1;
    while (b > 0 && (uint8_t(s[b]) & 0xC0) == 0x80) --b;
    uint32_t cp;
    if (utf8_at(s, b, cp) != end - b || !is_whitespace(cp)) break;
    end = b;
  }
  const bool marked = s.compare(0, kSpace.size(), kSpace) == 0;
  bool any = false;
  for (size_t i = 0; i < end;) {
    if (s[i] == ' ') {
      ++i;
      continue;
    }
    const size_t j = std::min(s.find(' ', i), end);
    if (any || (o.add_space_prefix && !suffix && !marked)) out += kSpace;
    out.append(s, i, j - i);
    any = true;
    i = j;
  }
  if (any && o.add_space_prefix && suffix) out += kSpace;
  return out;
}

Model::Model(std::vector<std::string_view> texts, std::vector<double> scores, int32_t unk,
             double unk_score)
    : texts_(std::move(texts)), scores_(std::move(scores)), unk_(unk), unk_score_(unk_score) {
  for (size_t id = 0; id < texts_.size(); ++id)
    if (!texts_[id].empty() && id < scores_.size()) sorted_.push_back(int32_t(id));
  std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) {
    const int c = texts_[size_t(a)].compare(texts_[size_t(b)]);
    return c != 0 ? c < 0 : a < b;  // equal texts: the lowest id first (and the one found)
  });
  // One id per text: the lowest.
  sorted_.erase(
      std::unique(sorted_.begin(), sorted_.end(),
                  [&](int32_t a, int32_t b) { return texts_[size_t(a)] == texts_[size_t(b)]; }),
      sorted_.end());
}

void Model::encode(std::string_view s, std::vector<int32_t>& out) const {
  const size_t n = s.size();
  if (n == 0) return;
  // best[p]: the best segmentation of s[0:p] — its score, last piece and where that starts.
  struct Best {
    double score;
    int32_t id;
    uint32_t start;
  };
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  std::vector<Best> best(n + 1, Best{kNone, -1, 0});
  best[0].score = 0;
  auto offer = [&](size_t from, size_t to, int32_t id, double score) {
    const double total = best[from].score + score;
    if (total > best[to].score) best[to] = {total, id, uint32_t(from)};
  };
  const auto byte_at = [&](int32_t id, size_t k) { return uint8_t(texts_[size_t(id)][k]); };
  for (size_t pos = 0; pos < n;) {
    uint32_t cp;
    size_t cp_len = utf8_at(s, pos, cp);
    if (cp_len == 0) cp_len = 1;
    bool single = false;
    // The pieces that are prefixes of s[pos:], shortest first: narrow the sorted range one byte
    // at a time; a piece of exactly the bytes matched so far sorts first in the range.
    auto lo = sorted_.begin(), hi = sorted_.end();
    for (size_t k = 0; lo != hi; ++k) {
      if (texts_[size_t(*lo)].size() == k) {
        if (k > 0) {
          const double sc = scores_[size_t(*lo)];
          offer(pos, pos + k, *lo, sc);
          // A piece that can never win does not stand in for the unknown token.
          if (k == cp_len && sc > kNone) single = true;
        }
        ++lo;
      }
      if (pos + k >= n || lo == hi) break;
      const uint8_t c = uint8_t(s[pos + k]);
      lo = std::lower_bound(lo, hi, c, [&](int32_t id, uint8_t v) { return byte_at(id, k) < v; });
      hi = std::upper_bound(lo, hi, c, [&](uint8_t v, int32_t id) { return v < byte_at(id, k); });
    }
    if (!single) offer(pos, pos + cp_len, unk_, unk_score_);
    pos += cp_len;
  }
  // Back from the end; a run of unknown tokens is one.
  const size_t first = out.size();
  bool prev_unknown = false;
  for (size_t p = n; p > 0;) {
    const Best& b = best[p];
    const bool unknown = b.id == unk_;
    if (!(unknown && prev_unknown) && b.id >= 0) out.push_back(b.id);
    prev_unknown = unknown;
    p = b.start;
  }
  std::reverse(out.begin() + std::ptrdiff_t(first), out.end());
}

}  // namespace hearth::tokenizer::unigram
