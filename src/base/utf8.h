// base/utf8.h — UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), for
// text that must become JSON (Modelfiles, file names) before it reaches a serializer that throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth {

// Appends code point cp (<= U+10FFFF) as UTF-8.
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// True if `s` is well-formed UTF-8; otherwise the offset of the first bad byte in *bad.
inline bool utf8_well_formed(std::string_view s, size_t* bad = nullptr) {
  size_t i = 0;
  const size_t n = s.size();
  auto fail = [&] {
    if (bad) *bad = i;
    return false;
  };
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
    } else {
      return fail();
    }
    if (i + size_t(len) > n) return fail();
    const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return fail();
    for (int k = 2; k < len; ++k) {
      const unsigned char ck = static_cast<unsigned char>(s[i + size_t(k)]);
      if (ck < 0x80 || ck > 0xBF) return fail();
    }
    i += size_t(len);
  }
  return true;
}

}  // namespace hearth
