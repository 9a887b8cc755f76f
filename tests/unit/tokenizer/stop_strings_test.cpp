#include "frontend/stop_strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kite {
namespace {

// Pushes chunks, returns everything emitted (flushing at the end when no stop matched).
std::string run(StopStringMatcher& m, const std::vector<std::string>& chunks) {
  std::string out;
  for (const std::string& c : chunks) {
    out += m.push(c).text;
    if (m.stopped()) return out;
  }
  return out + m.flush();
}

TEST(StopStrings, NoStopsPassesTextThrough) {
  StopStringMatcher m({});
  EXPECT_EQ(m.push("hello").text, "hello");
  EXPECT_EQ(m.push(" world").text, " world");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, StopInsideOneChunk) {
  StopStringMatcher m({"STOP"});
  auto out = m.push("abcSTOPdef");
  EXPECT_EQ(out.text, "abc");
  ASSERT_TRUE(out.stop_index.has_value());
  EXPECT_EQ(*out.stop_index, 0u);
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched_stop(), "STOP");
  EXPECT_EQ(m.push("more").text, "");  // nothing after a stop
}

TEST(StopStrings, StopAcrossTokenBoundariesAndPartialHoldBack) {
  StopStringMatcher m({"</answer>"});
  EXPECT_EQ(m.push("42 <").text, "42 ");  // "<" may start the stop string: held back
  EXPECT_EQ(m.push("/ans").text, "");
  auto out = m.push("wer> trailing");
  EXPECT_EQ(out.text, "");
  EXPECT_TRUE(out.stop_index.has_value());
}

TEST(StopStrings, PartialThatDoesNotCompleteIsReleased) {
  StopStringMatcher m({"</answer>"});
  EXPECT_EQ(m.push("a </ans").text, "a ");
  EXPECT_EQ(m.push("x").text, "</ansx");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, HeldTailIsReleasedByFlush) {
  StopStringMatcher m({"###"});
  EXPECT_EQ(m.push("text ##").text, "text ");
  EXPECT_EQ(m.flush(), "##");
}

TEST(StopStrings, IncludeStopStringInOutput) {
  StopStringMatcher m({"\n\n"}, /*include_stop_str_in_output=*/true);
  EXPECT_EQ(run(m, {"line one\n", "\nline two"}), "line one\n\n");
  EXPECT_TRUE(m.stopped());
}

TEST(StopStrings, SeveralStopsEarliestCompletionWins) {
  // "xyz" starts earlier but "y" completes first: generation stops at "y".
  StopStringMatcher m({"xyz", "y"});
  auto out = m.push("axyz");
  EXPECT_EQ(out.text, "ax");
  EXPECT_EQ(m.matched_stop(), "y");
}

TEST(StopStrings, SameEndLongestWins) {
  StopStringMatcher m({"b", "ab"}, /*include=*/true);
  auto out = m.push("xab");
  EXPECT_EQ(out.text, "xab");
  EXPECT_EQ(m.matched_stop(), "ab");
}

TEST(StopStrings, ResultDoesNotDependOnChunking) {
  const std::vector<std::string> stops = {"END", "<|eot|>", "ENDING", "\xE2\x82\xAC!"};
  const std::string text = "some text with <|eo and <|eot|> ENDING after \xE2\x82\xAC! and END";
  for (bool include : {false, true}) {
    StopStringMatcher whole(stops, include);
    std::string expected = run(whole, {text});
    std::string expected_stop = whole.matched_stop();
    for (size_t chunk = 1; chunk <= 7; ++chunk) {
      std::vector<std::string> chunks;
      for (size_t i = 0; i < text.size(); i += chunk) chunks.push_back(text.substr(i, chunk));
      StopStringMatcher m(stops, include);
      EXPECT_EQ(run(m, chunks), expected) << "chunk " << chunk;
      EXPECT_EQ(m.matched_stop(), expected_stop);
    }
  }
}

TEST(StopStrings, EmptyStopStringsAreIgnored) {
  StopStringMatcher m({"", "zz"});
  EXPECT_EQ(m.push("abc").text, "abc");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, MultibyteStopHeldBackAtCharacterBoundary) {
  StopStringMatcher m({"\xE2\x82\xAC\xE2\x82\xAC"});  // "€€"
  EXPECT_EQ(m.push("a\xE2\x82\xAC").text, "a");
  EXPECT_EQ(m.push("b").text,
            "\xE2\x82\xAC"
            "b");
}

}  // namespace
}  // namespace kite
