// Unicode character properties and normalization used by the tokenizer pipeline, with the
// definitions Hugging Face `tokenizers` uses (Rust `char` methods and `regex` classes).
// Backed by ICU; ASCII is answered from tables.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite::unicode {

// White_Space property (Rust char::is_whitespace, regex \s).
bool is_whitespace(char32_t c);
// Alphabetic property (Rust char::is_alphabetic).
bool is_alphabetic(char32_t c);
// General category N* (Rust char::is_numeric).
bool is_numeric(char32_t c);
inline bool is_alphanumeric(char32_t c) { return is_alphabetic(c) || is_numeric(c); }
// The general categories BERT's normalizer and the Punctuation / BertPreTokenizer pre-tokenizers
// test come, in tokenizers, from the unicode_categories crate's Unicode 8 tables: characters
// assigned later belong to none of its categories there, and kite reproduces that.
inline constexpr int kCategoryUnicodeMajor = 8;
bool in_category_tables(char32_t c);
// ASCII punctuation or general category P* (BERT's punctuation test; Unicode 8 tables).
bool is_punctuation(char32_t c);
// General category C* (Cc, Cf, Cs, Co; Unicode 8 tables).
bool is_other(char32_t c);
// General category M* (Mn, Mc, Me).
bool is_mark(char32_t c);
// General category Mn (BertNormalizer's strip_accents; Unicode 8 tables).
bool is_mark_nonspacing(char32_t c);
// Unicode \w of Rust's regex crate (UTS #18): Alphabetic, M*, Nd, Pc, Join_Control.
bool is_word_char(char32_t c);
// The CJK blocks BERT pads with spaces.
bool is_chinese_char(char32_t c);

// Appends Rust's char::to_lowercase(c) (full mapping, no context).
void append_lowercase(std::string& out, char32_t c);

// ICU script code (UScriptCode) of c.
int script_of(char32_t c);
// tokenizers' UnicodeScripts pre-tokenizer has its own script table (Unicode 9):
// characters assigned later are not in it.
inline constexpr int kScriptUnicodeMajor = 9;
bool in_script_tables(char32_t c);

// tokenizers normalizes (NFC/NFD/NFKC/NFKD, StripAccents) with Unicode 9.0 tables (its
// unicode-normalization-alignments crate); kite reproduces that by treating characters assigned
// after Unicode 9 as inert.
inline constexpr int kNormalizationUnicodeMajor = 9;
// True when c was assigned in Unicode <= kNormalizationUnicodeMajor.
bool in_normalization_tables(char32_t c);
// A mark known to those tables (StripAccents removes these).
bool is_combining_mark(char32_t c);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Normalizes valid UTF-8 text. Returns the input unchanged when ICU is unavailable for the form
// (never in practice; ICU is linked).
std::string normalize(std::string_view text, NormalForm form);

}  // namespace kite::unicode
