#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <cstdlib>

#include "base/utf8.h"

namespace hearth::tokenizer {

namespace {

// Length of the well-formed sequence at s[i], or 0 if ill-formed; `*subpart` receives the length
// of the maximal subpart to replace (>= 1) when ill-formed. Follows Unicode Table 3-7.
size_t well_formed(std::string_view s, size_t i, size_t* subpart) {
  const uint8_t b0 = uint8_t(s[i]);
  *subpart = 1;
  if (b0 < 0x80) return 1;
  int n;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k < n; ++k) {
    if (i + size_t(k) >= s.size()) {
      *subpart = size_t(k);
      return 0;
    }
    const uint8_t b = uint8_t(s[i + size_t(k)]);
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      *subpart = size_t(k);
      return 0;
    }
  }
  return size_t(n);
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  size_t sub;
  for (size_t i = 0; i < s.size();) {
    const size_t n = well_formed(s, i, &sub);
    if (!n) return false;
    i += n;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t sub;
  for (size_t i = 0; i < s.size();) {
    const size_t n = well_formed(s, i, &sub);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += sub;
    }
  }
  return out;
}

std::string nfc(std::string_view s) {
  // Fast path: ASCII is always NFC.
  bool ascii = true;
  for (char c : s) ascii &= uint8_t(c) < 0x80;
  if (ascii) return std::string(s);
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()),
                   &out, utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(s);  // ill-formed input is sanitized before; keep as is
  std::string r(reinterpret_cast<char*>(out), size_t(n));
  std::free(out);
  return r;
}

size_t incomplete_utf8_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t b = uint8_t(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    const int len = utf8_seq_len(b);
    return len > int(back) ? back : 0;
  }
  return 0;
}

const ByteMap& ByteMap::get() {
  static const ByteMap m = [] {
    ByteMap bm;
    bm.from_cp.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + extra++);
      bm.from_cp[cp] = int16_t(b);
      std::string t;
      append_utf8(t, cp);
      bm.to_text[size_t(b)] = t;
    }
    return bm;
  }();
  return m;
}

std::string ByteMap::to_bytes(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const uint8_t b0 = uint8_t(text[i]);
    int len = utf8_seq_len(b0);
    if (i + size_t(len) > text.size()) len = 1;
    uint32_t cp = b0;
    if (len == 2) cp = ((b0 & 0x1Fu) << 6) | (uint8_t(text[i + 1]) & 0x3Fu);
    if (len == 3)
      cp = ((b0 & 0x0Fu) << 12) | ((uint8_t(text[i + 1]) & 0x3Fu) << 6) |
           (uint8_t(text[i + 2]) & 0x3Fu);
    if (len == 4) cp = 0x110000;  // never a stand-in
    const int byte = len <= 2 && cp < from_cp.size() ? from_cp[cp] : -1;
    if (byte >= 0)
      out += char(byte);
    else
      out.append(text.substr(i, size_t(len)));
    i += size_t(len);
  }
  return out;
}

}  // namespace hearth::tokenizer
