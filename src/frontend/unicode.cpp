#include "frontend/unicode.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/uscript.h>

#include <array>

#include "frontend/utf8.h"

namespace kite::unicode {

namespace {

enum AsciiBits : uint8_t {
  kSpace = 1,
  kAlpha = 2,
  kDigit = 4,
  kPunct = 8,
  kOther = 16,
  kWord = 32,
};

constexpr std::array<uint8_t, 128> make_ascii_table() {
  std::array<uint8_t, 128> t{};
  for (int c = 0; c < 128; ++c) {
    uint8_t bits = 0;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) bits |= kSpace;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) bits |= kAlpha | kWord;
    if (c >= '0' && c <= '9') bits |= kDigit | kWord;
    if (c == '_') bits |= kWord;
    if ((c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
        (c >= 0x7B && c <= 0x7E)) {
      bits |= kPunct;
    }
    if (c < 0x20 || c == 0x7F) bits |= kOther;
    t[c] = bits;
  }
  return t;
}

constexpr std::array<uint8_t, 128> kAscii = make_ascii_table();

uint32_t gc_mask(char32_t c) { return U_GET_GC_MASK(static_cast<UChar32>(c)); }

const icu::Normalizer2* normalizer_for(NormalForm form) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::kNFC:
      n = icu::Normalizer2::getNFCInstance(err);
      break;
    case NormalForm::kNFD:
      n = icu::Normalizer2::getNFDInstance(err);
      break;
    case NormalForm::kNFKC:
      n = icu::Normalizer2::getNFKCInstance(err);
      break;
    case NormalForm::kNFKD:
      n = icu::Normalizer2::getNFKDInstance(err);
      break;
  }
  return U_SUCCESS(err) ? n : nullptr;
}

}  // namespace

bool is_whitespace(char32_t c) {
  if (c < 128) return kAscii[c] & kSpace;
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

bool is_alphabetic(char32_t c) {
  if (c < 128) return kAscii[c] & kAlpha;
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC);
}

bool is_numeric(char32_t c) {
  if (c < 128) return kAscii[c] & kDigit;
  return gc_mask(c) & U_GC_N_MASK;
}

bool in_category_tables(char32_t c) {
  if (c < 0x80) return true;
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] != 0 && age[0] <= kCategoryUnicodeMajor;
}

bool is_punctuation(char32_t c) {
  if (c < 128) return kAscii[c] & kPunct;
  return (gc_mask(c) & U_GC_P_MASK) && in_category_tables(c);
}

bool is_other(char32_t c) {
  if (c < 128) return kAscii[c] & kOther;
  return (gc_mask(c) & U_GC_C_MASK) && in_category_tables(c);
}

bool is_mark(char32_t c) {
  if (c < 128) return false;
  return gc_mask(c) & U_GC_M_MASK;
}

bool is_combining_mark(char32_t c) { return is_mark(c) && in_normalization_tables(c); }

bool is_mark_nonspacing(char32_t c) {
  if (c < 128) return false;
  // Category changes since Unicode 8: U+1885/U+1886 became Mn in Unicode 9 (Lo before);
  // U+1734 became Mc in Unicode 14 (Mn before).
  if (c == 0x1885 || c == 0x1886) return false;
  if (c == 0x1734) return true;
  return (gc_mask(c) & U_GC_MN_MASK) && in_category_tables(c);
}

bool is_word_char(char32_t c) {
  if (c < 128) return kAscii[c] & kWord;
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC)) return true;
  if (gc_mask(c) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) return true;
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_JOIN_CONTROL);
}

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_lowercase(std::string& out, char32_t c) {
  if (c < 128) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  // U+0130 is the only code point whose unconditional full lowercase mapping is longer than one
  // code point (SpecialCasing.txt); every other one follows the simple mapping.
  if (c == 0x130) {
    out.append("i\xCC\x87");
    return;
  }
  utf8::append(out, static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
}

bool in_script_tables(char32_t c) {
  if (c < 0x80) return true;
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] != 0 && age[0] <= kScriptUnicodeMajor;
}

int script_of(char32_t c) {
  UErrorCode err = U_ZERO_ERROR;
  UScriptCode code = uscript_getScript(static_cast<UChar32>(c), &err);
  return U_SUCCESS(err) ? static_cast<int>(code) : static_cast<int>(USCRIPT_UNKNOWN);
}

bool in_normalization_tables(char32_t c) {
  if (c < 0x80) return true;
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] != 0 && age[0] <= kNormalizationUnicodeMajor;
}

namespace {

std::string normalize_icu(const icu::Normalizer2* n, std::string_view text) {
  UErrorCode err = U_ZERO_ERROR;
  icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  if (n->isNormalizedUTF8(piece, err) && U_SUCCESS(err)) return std::string(text);
  err = U_ZERO_ERROR;
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  icu::StringByteSink<std::string> sink(&out);
  n->normalizeUTF8(0, piece, sink, nullptr, err);
  if (U_FAILURE(err)) return std::string(text);
  return out;
}

}  // namespace

std::string normalize(std::string_view text, NormalForm form) {
  const icu::Normalizer2* n = normalizer_for(form);
  if (n == nullptr) return std::string(text);
  // Characters newer than the tables tokenizers normalizes with are inert starters there: they
  // neither decompose nor reorder nor compose, so normalize the runs between them separately.
  std::string out;
  size_t run_start = 0;
  size_t i = 0;
  bool split = false;
  while (i < text.size()) {
    size_t at = i;
    char32_t c = utf8::decode(text, i);
    if (in_normalization_tables(c)) continue;
    split = true;
    out += normalize_icu(n, text.substr(run_start, at - run_start));
    out.append(text.substr(at, i - at));
    run_start = i;
  }
  if (!split) return normalize_icu(n, text);
  out += normalize_icu(n, text.substr(run_start));
  return out;
}

}  // namespace kite::unicode
