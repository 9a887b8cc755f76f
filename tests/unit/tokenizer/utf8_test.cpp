#include "frontend/utf8.h"

#include <gtest/gtest.h>

namespace kite {
namespace {

TEST(Utf8, LossyMatchesPythonReplaceRule) {
  // Each maximal invalid subpart becomes one U+FFFD (Python / Rust / WHATWG agree).
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::lossy("a\xFF"
                        "b"),
            "a" + r + "b");
  EXPECT_EQ(utf8::lossy("\xE2\x82"), r);  // truncated 3-byte sequence
  EXPECT_EQ(utf8::lossy("\xE2\x82x"), r + "x");
  EXPECT_EQ(utf8::lossy("\xC0\xAF"), r + r);                  // overlong: two subparts
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), r + r + r);          // surrogate
  EXPECT_EQ(utf8::lossy("\xF4\x90\x80\x80"), r + r + r + r);  // past U+10FFFF
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98"), r);
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_TRUE(utf8::is_valid("plain ascii and \xE2\x82\xAC"));
  EXPECT_FALSE(utf8::is_valid("\x80"));
  EXPECT_EQ(utf8::valid_prefix_length("abc\xE2\x82"), 3u);
}

TEST(Utf8, EncodeDecode) {
  for (char32_t cp : {0x41u, 0xE9u, 0x20ACu, 0x1F600u, 0x10FFFFu}) {
    std::string s = utf8::encode(cp);
    size_t i = 0;
    EXPECT_EQ(utf8::decode(s, i), cp);
    EXPECT_EQ(i, s.size());
  }
  EXPECT_EQ(utf8::encode(0xD800), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8::count_chars("a\xE2\x82\xAC"
                              "b"),
            3u);
}

}  // namespace
}  // namespace kite
