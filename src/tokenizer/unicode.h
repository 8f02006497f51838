// tokenizer/unicode.h — the UTF-8 and Unicode helpers tokenization needs.
//
// Normalization comes from utf8proc; the GPT-2 byte<->character map and UTF-8 scanning are small
// enough to own.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::tokenizer {

// Length of a UTF-8 sequence from its lead byte (1 for continuation/invalid bytes).
inline int utf8_seq_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Replaces every ill-formed subsequence with U+FFFD (one per maximal subpart, as the WHATWG
// decoder — and so JavaScript's TextDecoder — does). Returns the input unchanged if valid.
std::string sanitize_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);

// Canonical composition (NFC).
std::string nfc(std::string_view s);

// Bytes at the end of `s` that start a UTF-8 sequence not yet complete (0..3). A stream can emit
// everything before them.
size_t incomplete_utf8_tail(std::string_view s);

// GPT-2's reversible byte <-> printable character map used by byte-level BPE vocabularies.
struct ByteMap {
  std::array<std::string, 256> to_text;  // byte -> UTF-8 of its stand-in character
  std::array<int16_t, 324> from_cp;      // stand-in code point -> byte, -1 if none
  // Decodes stand-in characters back to bytes; characters outside the map are kept as UTF-8.
  std::string to_bytes(std::string_view text) const;
  static const ByteMap& get();
};

}  // namespace hearth::tokenizer
