// GPT-2's byte-to-unicode table: every byte gets a printable character so that byte-level BPE
// vocabularies are strings ("Ġ" is the space byte 0x20).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kite::byte_level {

// The character standing for byte b.
char32_t byte_to_char(uint8_t b);
// UTF-8 of byte_to_char(b) (1 or 2 bytes).
std::string_view byte_to_utf8(uint8_t b);
// The byte a table character stands for, or -1 when c is not in the table.
int char_to_byte(char32_t c);

// Appends the table characters of every byte of raw.
void append_mapped(std::string& out, std::string_view raw);
// When every character of s (valid UTF-8) is in the table, appends the bytes they stand for to
// out and returns true; otherwise leaves out unchanged and returns false.
bool unmap(std::string_view s, std::string& out);

}  // namespace kite::byte_level
