#include "frontend/utf8.h"

namespace kite::utf8 {

namespace {

// Length of the valid sequence starting at s[i], or 0 when it is invalid; *bad_len receives the
// length of the maximal invalid subpart in that case (at least 1).
size_t valid_seq_at(std::string_view s, size_t i, size_t* bad_len) {
  auto b0 = static_cast<unsigned char>(s[i]);
  size_t n = s.size() - i;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (n >= 2 && (byte(1) & 0xC0) == 0x80) return 2;
    *bad_len = 1;
    return 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    // Second byte range depends on the lead byte (no overlongs, no surrogates).
    unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
    if (n < 2 || byte(1) < lo || byte(1) > hi) {
      *bad_len = 1;
      return 0;
    }
    if (n < 3 || (byte(2) & 0xC0) != 0x80) {
      *bad_len = 2;
      return 0;
    }
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (n < 2 || byte(1) < lo || byte(1) > hi) {
      *bad_len = 1;
      return 0;
    }
    if (n < 3 || (byte(2) & 0xC0) != 0x80) {
      *bad_len = 2;
      return 0;
    }
    if (n < 4 || (byte(3) & 0xC0) != 0x80) {
      *bad_len = 3;
      return 0;
    }
    return 4;
  }
  *bad_len = 1;
  return 0;
}

}  // namespace

size_t valid_prefix_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    size_t bad = 0;
    size_t n = valid_seq_at(s, i, &bad);
    if (n == 0) return i;
    i += n;
  }
  return s.size();
}

void append_lossy(std::string& out, std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = 0;
    size_t n = valid_seq_at(s, i, &bad);
    if (n == 0) {
      out.append(kReplacementUtf8);
      i += bad;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
}

char32_t decode_last(std::string_view s, size_t* len) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t i = start;
  char32_t cp = decode(s, i);
  *len = s.size() - start;
  return cp;
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace kite::utf8
