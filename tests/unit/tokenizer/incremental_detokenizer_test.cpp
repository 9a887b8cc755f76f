#include "frontend/incremental_detokenizer.h"

#include <gtest/gtest.h>

#include "frontend/tokenizer.h"
#include "test_tokenizers.h"

namespace kite {
namespace {

std::unique_ptr<Tokenizer> load(const std::string& json) {
  auto tok = Tokenizer::from_json(json, "");
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

std::string stream_all(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip,
                       std::span<const int32_t> prompt = {}) {
  IncrementalDetokenizer d(tok, skip, prompt);
  std::string out;
  for (int32_t id : ids) out += d.step(id);
  return out + d.flush();
}

TEST(IncrementalDetokenizer, HoldsBackIncompleteUtf8) {
  auto tok = load(testing::spm_tokenizer());
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids = tok->encode("Hello \xE2\x82\xAC!", false);
  // ▁Hello, ▁ (space before the euro), <0xE2>, <0x82>, <0xAC>, !
  ASSERT_EQ(ids.size(), 6u);
  IncrementalDetokenizer d(*tok, false);
  EXPECT_EQ(d.step(ids[0]), "Hello");
  std::string space = d.step(ids[1]);
  EXPECT_EQ(d.step(ids[2]), "");  // lead byte of the euro sign alone: held back
  EXPECT_EQ(d.step(ids[3]), "");
  std::string euro = d.step(ids[4]);
  EXPECT_EQ(space + euro, " \xE2\x82\xAC");
  EXPECT_EQ(d.step(ids[5]), "!");
  EXPECT_EQ(d.flush(), "");
  EXPECT_EQ(d.num_ids(), 6u);
}

TEST(IncrementalDetokenizer, ConcatenationEqualsFullDecode) {
  auto tok = load(testing::spm_tokenizer());
  ASSERT_TRUE(tok);
  for (const char* text : {"Hello world", "Hello  world!", " Hello", "\xE2\x82\xAC\xE2\x82\xAC",
                           "Hello\nworld \xF0\x9F\x98\x80!", "<s>Hello</s>world"}) {
    std::vector<int32_t> ids = tok->encode(text, true);
    for (bool skip : {false, true}) {
      EXPECT_EQ(stream_all(*tok, ids, skip), tok->decode(ids, skip)) << text << " skip " << skip;
    }
  }
}

TEST(IncrementalDetokenizer, SkipsSpecialTokens) {
  auto tok = load(testing::spm_tokenizer());
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids = tok->encode("Hello</s>", true);
  ASSERT_EQ(ids.front(), 1);  // <s>
  ASSERT_EQ(ids.back(), 2);   // </s>
  EXPECT_EQ(stream_all(*tok, ids, /*skip=*/true), "Hello");
  EXPECT_EQ(stream_all(*tok, ids, /*skip=*/false), "<s> Hello</s>");
}

TEST(IncrementalDetokenizer, PromptContextGivesLeadingSpace) {
  auto tok = load(testing::spm_tokenizer());
  ASSERT_TRUE(tok);
  std::vector<int32_t> prompt = tok->encode("Hello", true);
  std::vector<int32_t> generated = tok->encode("world", false);  // ▁world
  ASSERT_EQ(generated.size(), 1u);
  // Alone, the first token loses its space (the decoder strips it); after the prompt it keeps it.
  EXPECT_EQ(stream_all(*tok, generated, true), "world");
  EXPECT_EQ(stream_all(*tok, generated, true, prompt), " world");
}

TEST(IncrementalDetokenizer, FlushEmitsIncompleteCharacterAsReplacement) {
  auto tok = load(testing::spm_tokenizer());
  ASSERT_TRUE(tok);
  IncrementalDetokenizer d(*tok, false);
  EXPECT_EQ(d.step(3 + 0xE2), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizer, InvalidByteRunIsEmittedWithBoundedDelay) {
  auto tok = load(testing::spm_tokenizer());
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids = tok->encode("Hello", false);
  for (int i = 0; i < 100; ++i) ids.push_back(3 + 0xFF);  // <0xFF>: never valid UTF-8
  ids.push_back(277);                                     // ▁world
  IncrementalDetokenizer d(*tok, false);
  std::string streamed;
  size_t max_silent = 0;
  size_t silent = 0;
  for (int32_t id : ids) {
    std::string piece = d.step(id);
    silent = piece.empty() ? silent + 1 : 0;
    max_silent = std::max(max_silent, silent);
    streamed += piece;
  }
  streamed += d.flush();
  EXPECT_EQ(streamed, tok->decode(ids));
  EXPECT_LE(max_silent, 16u);
}

TEST(IncrementalDetokenizer, SkippedSpecialRunsKeepContext) {
  auto tok = load(testing::spm_tokenizer());
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids = {272};  // ▁Hello
  ids.insert(ids.end(), 1000, 2);    // </s> x 1000
  ids.push_back(277);                // ▁world
  EXPECT_EQ(stream_all(*tok, ids, true), "Hello world");
  EXPECT_EQ(stream_all(*tok, ids, false), tok->decode(ids));
}

TEST(IncrementalDetokenizer, WordPieceCleanupStreamsToFullDecode) {
  auto tok = load(testing::wordpiece_decoder_tokenizer());
  ASSERT_TRUE(tok);
  // tokenizers cleans each token on its own (" ." -> "."), never text across tokens.
  std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 9, 8, 10, 6, 11};
  std::string full = tok->decode(ids);
  EXPECT_EQ(full, "it ' s good. do not going! don't");
  IncrementalDetokenizer d(*tok, false);
  std::string streamed;
  for (int32_t id : ids) {
    std::string piece = d.step(id);
    streamed += piece;
    // Whatever was emitted is final: it is a prefix of the full decode.
    EXPECT_EQ(full.compare(0, streamed.size(), streamed), 0) << streamed;
  }
  streamed += d.flush();
  EXPECT_EQ(streamed, full);
}

}  // namespace
}  // namespace kite
