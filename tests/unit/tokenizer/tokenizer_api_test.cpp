#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "frontend/gguf_vocab.h"
#include "frontend/tokenizer.h"
#include "test_tokenizers.h"

namespace kite {
namespace {

std::unique_ptr<Tokenizer> spm(const std::string& config = "") {
  auto tok = Tokenizer::from_json(testing::spm_tokenizer(), config);
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

TEST(TokenizerApi, EncodeDecodeAndSpecialTokens) {
  auto tok = spm();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int32_t>{1, 272, 277}));
  EXPECT_EQ(tok->encode("Hello world", false), (std::vector<int32_t>{272, 277}));
  // With special-token parsing off, "</s>" is text: byte fallback spells it.
  EXPECT_EQ(tok->encode("</s>", false, true), std::vector<int32_t>{2});
  EXPECT_EQ(tok->encode("a</s>", false, true), (std::vector<int32_t>{259, 3 + 0x61, 2}));
  EXPECT_EQ(tok->encode("</s>", false, false).size(), 5u);
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 272, 277, 2}), "<s> Hello world</s>");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 272, 277, 2}, true), "Hello world");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{272, 999999, -5, 277}), "Hello world");
  EXPECT_EQ(tok->added_prefix_ids(), std::vector<int32_t>{1});
  EXPECT_TRUE(tok->added_suffix_ids().empty());
}

TEST(TokenizerApi, VocabularyQueries) {
  auto tok = spm();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->vocab_size(), 278);
  EXPECT_EQ(tok->token_to_id("<0x41>"), std::optional<int32_t>(3 + 0x41));
  EXPECT_EQ(tok->token_to_id("nope"), std::nullopt);
  EXPECT_EQ(tok->id_to_token(272), "\xE2\x96\x81Hello");
  EXPECT_EQ(tok->id_to_token(100000), "");
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_FALSE(tok->is_special(272));
  EXPECT_EQ(tok->special_ids(), (std::vector<int32_t>{0, 1, 2}));
}

TEST(TokenizerApi, ConfigSpecialTokensAndTemplates) {
  auto tok = spm(R"({"bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": false},
                     "unk_token": "<unk>", "pad_token": null, "add_bos_token": true,
                     "chat_template": [{"name": "default", "template": "{{ messages }}"},
                                       {"name": "tool_use", "template": "{{ tools }}"}]})");
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->bos_token(), "<s>");
  EXPECT_EQ(tok->bos_token_id(), std::optional<int32_t>(1));
  EXPECT_EQ(tok->eos_token(), "</s>");
  EXPECT_EQ(tok->eos_token_id(), std::optional<int32_t>(2));
  EXPECT_EQ(tok->unk_token_id(), std::optional<int32_t>(0));
  EXPECT_EQ(tok->pad_token(), "");
  EXPECT_EQ(tok->pad_token_id(), std::nullopt);
  EXPECT_EQ(tok->add_bos_token(), std::optional<bool>(true));
  EXPECT_EQ(tok->add_eos_token(), std::nullopt);
  ASSERT_TRUE(tok->chat_template().has_value());
  EXPECT_EQ(*tok->chat_template(), "{{ messages }}");
  EXPECT_EQ(tok->chat_templates().size(), 2u);
  EXPECT_EQ(tok->chat_templates().at("tool_use"), "{{ tools }}");

  auto plain = spm(R"({"chat_template": "{{ bos_token }}"})");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->chat_template().value_or(""), "{{ bos_token }}");
  EXPECT_EQ(plain->bos_token(), "");
}

TEST(TokenizerApi, InvalidUtf8InputIsRepairedLikePython) {
  auto tok = spm();
  ASSERT_TRUE(tok);
  // b"Hello\xff\xe2\x82" decodes in Python (errors="replace") to "Hello\ufffd\ufffd".
  std::vector<int32_t> raw = tok->encode("Hello\xff\xe2\x82", false);
  std::vector<int32_t> repaired = tok->encode("Hello\xEF\xBF\xBD\xEF\xBF\xBD", false);
  EXPECT_EQ(raw, repaired);
  // Any byte string: deterministic, never a crash.
  std::string junk;
  for (int i = 0; i < 512; ++i) junk.push_back(static_cast<char>((i * 167 + 13) & 0xFF));
  EXPECT_EQ(tok->encode(junk), tok->encode(junk));
  EXPECT_FALSE(tok->encode(junk).empty());
}

TEST(TokenizerApi, GgufVocabularyBuildsLlamaPipeline) {
  GgufVocab v;
  v.model = "llama";
  v.tokens = {"<unk>",
              "<s>",
              "</s>",
              "\xE2\x96\x81",
              "a",
              "b",
              "\xE2\x96\x81"
              "a",
              "ab",
              "\xE2\x96\x81"
              "ab"};
  v.scores = {0, 0, 0, -1, -2, -3, -4, -5, -6};
  v.token_types = {2, 3, 3, 1, 1, 1, 1, 1, 1};
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  auto tok = Tokenizer::from_gguf_vocab(v);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->encode("ab"), (std::vector<int32_t>{1, 8}));
  EXPECT_EQ((*tok)->encode("ab b", false), (std::vector<int32_t>{8, 3, 5}));
  EXPECT_EQ((*tok)->decode(std::vector<int32_t>{1, 8, 3, 5}, true), "ab b");
  EXPECT_EQ((*tok)->bos_token(), "<s>");
  EXPECT_EQ((*tok)->encode("<s>", false), std::vector<int32_t>{1});

  v.model = "t5";
  EXPECT_EQ(Tokenizer::from_gguf_vocab(v).status().code(), StatusCode::kUnimplemented);
  v.model = "llama";
  v.scores.pop_back();
  EXPECT_EQ(Tokenizer::from_gguf_vocab(v).status().code(), StatusCode::kInvalidArgument);
  v.model = "gpt2";
  v.scores.clear();
  v.pre = "no-such-pre";
  EXPECT_EQ(Tokenizer::from_gguf_vocab(v).status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace kite
