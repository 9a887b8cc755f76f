#include "frontend/byte_level.h"

#include <array>

#include "frontend/utf8.h"

namespace kite::byte_level {

namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 324> from_char{};  // table characters are all below U+0144

  Tables() {
    from_char.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_char[b] = c;
      to_utf8[b] = utf8::encode(c);
      from_char[c] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return tables().to_char[b]; }

std::string_view byte_to_utf8(uint8_t b) { return tables().to_utf8[b]; }

int char_to_byte(char32_t c) {
  const Tables& t = tables();
  return c < t.from_char.size() ? t.from_char[c] : -1;
}

void append_mapped(std::string& out, std::string_view raw) {
  const Tables& t = tables();
  for (char ch : raw) out.append(t.to_utf8[static_cast<unsigned char>(ch)]);
}

bool unmap(std::string_view s, std::string& out) {
  const Tables& t = tables();
  size_t start = out.size();
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = utf8::decode(s, i);
    int b = c < t.from_char.size() ? t.from_char[c] : -1;
    if (b < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace kite::byte_level
