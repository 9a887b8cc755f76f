// Malformed tokenizer.json / tokenizer_config.json: a clear Status naming what is wrong, never a
// crash.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <functional>

#include "checkpoint/gguf.h"
#include "frontend/tokenizer.h"
#include "test_tokenizers.h"
#include "unit/checkpoint/gguf_builder.h"

namespace kite {
namespace {

namespace bj = boost::json;

// Loads `doc` and expects an error whose message contains every fragment.
void expect_error(const std::string& doc, std::initializer_list<std::string_view> fragments,
                  StatusCode code = StatusCode::kInvalidArgument, const std::string& config = "") {
  auto tok = Tokenizer::from_json(doc, config);
  ASSERT_FALSE(tok.ok()) << "loaded: " << doc.substr(0, 200);
  EXPECT_EQ(tok.status().code(), code) << tok.status().to_string();
  for (std::string_view f : fragments) {
    EXPECT_NE(tok.status().message().find(f), std::string::npos)
        << "message '" << tok.status().message() << "' lacks '" << f << "'";
  }
}

// The synthetic SentencePiece tokenizer with one field replaced.
std::string with(std::string_view key, bj::value v) {
  bj::object o = testing::spm_tokenizer_json();
  o[key] = std::move(v);
  return bj::serialize(o);
}

std::string with_model(std::string_view key, bj::value v) {
  bj::object o = testing::spm_tokenizer_json();
  o["model"].as_object()[key] = std::move(v);
  return bj::serialize(o);
}

TEST(TokenizerErrors, ValidBaselineLoads) {
  auto tok = Tokenizer::from_json(testing::spm_tokenizer(), "");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
}

TEST(TokenizerErrors, TruncatedJson) {
  std::string doc = testing::spm_tokenizer();
  for (size_t len : {size_t{0}, size_t{1}, doc.size() / 3, doc.size() / 2, doc.size() - 1}) {
    expect_error(doc.substr(0, len), {"tokenizer.json"});
  }
}

TEST(TokenizerErrors, NotAnObject) {
  expect_error("[1, 2, 3]", {"must be an object"});
  expect_error("\"tokenizer\"", {"must be an object"});
}

TEST(TokenizerErrors, MissingModel) {
  bj::object o = testing::spm_tokenizer_json();
  o.erase("model");
  expect_error(bj::serialize(o), {"'model' is missing"});
}

TEST(TokenizerErrors, WrongTypes) {
  expect_error(with_model("vocab", bj::array{"a", "b"}), {"model.vocab", "object"});
  expect_error(with_model("merges", bj::object{{"a", "b"}}), {"model.merges", "array"});
  expect_error(with_model("byte_fallback", "yes"), {"model.byte_fallback", "bool"});
  expect_error(with_model("unk_token", 5), {"model.unk_token", "string"});
  expect_error(with("added_tokens", bj::object{}), {"added_tokens", "array"});
  expect_error(with("normalizer", 3), {"normalizer", "object"});
  expect_error(with_model("vocab", bj::object{{"a", -1}}), {"model.vocab", "'a'"});
  expect_error(with_model("vocab", bj::object{{"a", "zero"}}), {"model.vocab", "'a'"});
  expect_error(with("added_tokens", bj::array{bj::object{{"id", 0}}}),
               {"added_tokens[0].content", "missing"});
}

TEST(TokenizerErrors, BadMerges) {
  expect_error(with_model("merges", bj::array{"\xE2\x96\x81 H", "nope H"}),
               {"merges[1]", "'nope'", "not in the vocabulary"});
  expect_error(with_model("merges", bj::array{"H e"}), {"merges[0]", "merged token 'He'"});
  expect_error(with_model("merges", bj::array{"a b c"}), {"merges[0]", "two tokens"});
  expect_error(with_model("merges", bj::array{bj::array{"H"}}), {"merges[0]", "pair"});
  expect_error(with_model("merges", bj::array{bj::array{"H", "e"}, "l l"}), {"merges[1]"});
}

TEST(TokenizerErrors, UnknownTypes) {
  expect_error(with_model("type", "Bigram"), {"unknown model type 'Bigram'"});
  expect_error(with("normalizer", bj::object{{"type", "Uppercase"}}),
               {"unknown normalizer type 'Uppercase'"});
  expect_error(with("pre_tokenizer", bj::object{{"type", "Magic"}}),
               {"unknown pre_tokenizer type 'Magic'"});
  expect_error(with("decoder", bj::object{{"type", "Reverse"}}),
               {"unknown decoder type 'Reverse'"});
  expect_error(with("post_processor", bj::object{{"type", "Nope"}}),
               {"unknown post_processor type 'Nope'"});
  expect_error(
      with("normalizer",
           bj::object{{"type", "Sequence"}, {"normalizers", bj::array{bj::object{{"type", "X"}}}}}),
      {"normalizer.normalizers[0]", "'X'"});
  expect_error(with("pre_tokenizer", bj::object{{"type", "Split"},
                                                {"pattern", bj::object{{"Regex", "a"}}},
                                                {"behavior", "Sideways"}}),
               {"unknown split behavior 'Sideways'"});
}

TEST(TokenizerErrors, UnsupportedComponentsAreUnimplemented) {
  expect_error(
      with("normalizer", bj::object{{"type", "Precompiled"}, {"precompiled_charsmap", ""}}),
      {"Precompiled"}, StatusCode::kUnimplemented);
  expect_error(with("model", bj::object{{"type", "Unigram"}, {"vocab", bj::array{}}}), {"Unigram"},
               StatusCode::kUnimplemented);
}

TEST(TokenizerErrors, BadRegex) {
  expect_error(with("pre_tokenizer", bj::object{{"type", "Split"},
                                                {"pattern", bj::object{{"Regex", "([a-"}}},
                                                {"behavior", "Isolated"}}),
               {"pre_tokenizer.pattern", "bad regex"});
  expect_error(with("pre_tokenizer", bj::object{{"type", "Split"},
                                                {"pattern", bj::object{{"Glob", "*"}}},
                                                {"behavior", "Isolated"}}),
               {"String", "Regex"});
}

TEST(TokenizerErrors, BadTemplate) {
  bj::object pp{{"type", "TemplateProcessing"},
                {"single", bj::array{bj::object{{"SpecialToken", bj::object{{"id", "<x>"}}}}}},
                {"special_tokens", bj::object{}}};
  expect_error(with("post_processor", pp), {"'<x>'", "special_tokens"});
}

TEST(TokenizerErrors, BadVersionAndConfig) {
  expect_error(with("version", "2.0"), {"unknown tokenizer.json version '2.0'"});
  expect_error(testing::spm_tokenizer(), {"tokenizer_config.json"}, StatusCode::kInvalidArgument,
               "{not json");
  expect_error(testing::spm_tokenizer(), {"chat_template"}, StatusCode::kInvalidArgument,
               R"({"chat_template": 5})");
  expect_error(testing::spm_tokenizer(), {"bos_token"}, StatusCode::kInvalidArgument,
               R"({"bos_token": [1]})");
}

TEST(TokenizerErrors, MissingFiles) {
  auto tok = Tokenizer::from_pretrained("/nonexistent/dir");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kNotFound);
  auto gguf = Tokenizer::from_gguf_file("/nonexistent/model.gguf");
  ASSERT_FALSE(gguf.ok());
}

// ---- hostile GGUF vocabularies: bounded before the vocabulary is copied ----------------------

// A GGUF file whose tokenizer is a small byte-level BPE vocabulary plus what `extra` adds.
std::vector<uint8_t> gguf_vocab_file(const std::function<void(testing::GgufBuilder&)>& extra) {
  testing::GgufBuilder g;
  g.add_string("tokenizer.ggml.model", "gpt2");
  extra(g);
  return g.build();
}

void expect_gguf_error(const std::vector<uint8_t>& bytes, std::string_view fragment) {
  auto f = GgufFile::parse_bytes(bytes.data(), bytes.size(), "hostile.gguf");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kInvalidArgument) << tok.status().to_string();
  EXPECT_NE(tok.status().message().find(fragment), std::string::npos) << tok.status().to_string();
  EXPECT_NE(tok.status().message().find("hostile.gguf"), std::string::npos);
}

TEST(TokenizerErrors, GgufTokenOverTheSizeLimit) {
  expect_gguf_error(gguf_vocab_file([](testing::GgufBuilder& g) {
                      g.add_array_strings("tokenizer.ggml.tokens",
                                          {"a", std::string((64 << 10) + 1, 'x')});
                    }),
                    "tokenizer.ggml.tokens[1] is 65537 bytes, over the limit of 65536 bytes");
  expect_gguf_error(gguf_vocab_file([](testing::GgufBuilder& g) {
                      g.add_array_strings("tokenizer.ggml.tokens", {"a", "b"});
                      g.add_array_strings("tokenizer.ggml.merges",
                                          {"a b", std::string((64 << 10) + 1, 'x')});
                    }),
                    "tokenizer.ggml.merges[1] is 65537 bytes");
}

// 2,049 tokens of 64 KiB: each within its limit, together one token over the 128 MiB that a
// tokenizer.json may have.
TEST(TokenizerErrors, GgufVocabularyOverTheTotalLimit) {
  const uint64_t count = 2049;
  const uint64_t len = 64 << 10;
  std::vector<uint8_t> arr = testing::GgufBuilder::pod(uint32_t{8});
  testing::GgufBuilder::append(&arr, testing::GgufBuilder::pod(count));
  arr.reserve(arr.size() + count * (8 + len));
  for (uint64_t i = 0; i < count; ++i) {
    testing::GgufBuilder::append(&arr, testing::GgufBuilder::pod(len));
    arr.resize(arr.size() + len, 'a');
  }
  expect_gguf_error(gguf_vocab_file([&](testing::GgufBuilder& g) {
                      g.add_raw("tokenizer.ggml.tokens", 9, std::move(arr));
                    }),
                    "the vocabulary's strings are over the limit of 134217728 bytes at "
                    "tokenizer.ggml.tokens[2048]");
}

// A scores array whose count disagrees with the tokens is refused from its count, before its
// floats are decoded.
TEST(TokenizerErrors, GgufPerTokenArrayCountMismatch) {
  expect_gguf_error(gguf_vocab_file([](testing::GgufBuilder& g) {
                      g.add_array_strings("tokenizer.ggml.tokens", {"a", "b"});
                      g.add_array_f32("tokenizer.ggml.scores", std::vector<float>(1000, 0.f));
                    }),
                    "tokenizer.ggml.scores has 1000 entries for 2 tokens");
  expect_gguf_error(gguf_vocab_file([](testing::GgufBuilder& g) {
                      g.add_array_strings("tokenizer.ggml.tokens", {"a", "b"});
                      g.add_array_i32("tokenizer.ggml.token_type", {1});
                    }),
                    "tokenizer.ggml.token_type has 1 entries for 2 tokens");
}

TEST(TokenizerErrors, GgufChatTemplateOverTheSizeLimit) {
  expect_gguf_error(gguf_vocab_file([](testing::GgufBuilder& g) {
                      g.add_array_strings("tokenizer.ggml.tokens", {"a", "b"});
                      g.add_string("tokenizer.chat_template", std::string((4 << 20) + 1, ' '));
                    }),
                    "tokenizer.chat_template is 4194305 bytes, over the limit of 4194304 bytes");
}

}  // namespace
}  // namespace kite
