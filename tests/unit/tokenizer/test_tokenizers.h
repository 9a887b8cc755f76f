// Small synthetic tokenizer.json documents for the tokenizer unit tests.
#pragma once

#include <boost/json.hpp>
#include <cstdio>
#include <string>

namespace kite::testing {

// A SentencePiece-style BPE (Llama-2 layout): Prepend/Replace normalizer, byte fallback, a <s>
// template, Replace/ByteFallback/Fuse/Strip decoder. Vocabulary: <unk> <s> </s>, the 256 byte
// tokens (ids 3..258), then pieces spelling "Hello world".
inline boost::json::object spm_tokenizer_json() {
  namespace bj = boost::json;
  bj::object vocab;
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    vocab[buf] = 3 + b;
  }
  const char* pieces[] = {"\xE2\x96\x81",
                          "H",
                          "e",
                          "l",
                          "o",
                          "w",
                          "r",
                          "d",
                          "!",
                          "\xE2\x96\x81H",
                          "ll",
                          "\xE2\x96\x81He",
                          "llo",
                          "\xE2\x96\x81Hello",
                          "\xE2\x96\x81w",
                          "or",
                          "ld",
                          "\xE2\x96\x81wor",
                          "\xE2\x96\x81world"};
  int id = 259;
  for (const char* p : pieces) vocab[p] = id++;
  bj::array merges = {bj::array{"\xE2\x96\x81", "H"},
                      bj::array{"l", "l"},
                      bj::array{"\xE2\x96\x81H", "e"},
                      bj::array{"ll", "o"},
                      bj::array{"\xE2\x96\x81He", "llo"},
                      bj::array{"\xE2\x96\x81", "w"},
                      bj::array{"o", "r"},
                      bj::array{"l", "d"},
                      bj::array{"\xE2\x96\x81w", "or"},
                      bj::array{"\xE2\x96\x81wor", "ld"}};
  auto added = [](int i, const char* content) {
    return bj::object{{"id", i},         {"content", content}, {"single_word", false},
                      {"lstrip", false}, {"rstrip", false},    {"normalized", false},
                      {"special", true}};
  };
  return bj::object{
      {"version", "1.0"},
      {"added_tokens", bj::array{added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")}},
      {"normalizer",
       bj::object{
           {"type", "Sequence"},
           {"normalizers", bj::array{bj::object{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                     bj::object{{"type", "Replace"},
                                                {"pattern", bj::object{{"String", " "}}},
                                                {"content", "\xE2\x96\x81"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       bj::object{
           {"type", "TemplateProcessing"},
           {"single",
            bj::array{bj::object{{"SpecialToken", bj::object{{"id", "<s>"}, {"type_id", 0}}}},
                      bj::object{{"Sequence", bj::object{{"id", "A"}, {"type_id", 0}}}}}},
           {"special_tokens", bj::object{{"<s>", bj::object{{"id", "<s>"},
                                                            {"ids", bj::array{1}},
                                                            {"tokens", bj::array{"<s>"}}}}}}}},
      {"decoder",
       bj::object{
           {"type", "Sequence"},
           {"decoders",
            bj::array{
                bj::object{{"type", "Replace"},
                           {"pattern", bj::object{{"String", "\xE2\x96\x81"}}},
                           {"content", " "}},
                bj::object{{"type", "ByteFallback"}}, bj::object{{"type", "Fuse"}},
                bj::object{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model", bj::object{{"type", "BPE"},
                           {"unk_token", "<unk>"},
                           {"byte_fallback", true},
                           {"fuse_unk", true},
                           {"vocab", vocab},
                           {"merges", merges}}}};
}

inline std::string spm_tokenizer() { return boost::json::serialize(spm_tokenizer_json()); }

// A WordLevel tokenizer with BERT's WordPiece decoder (cleanup on), for streaming tests.
inline std::string wordpiece_decoder_tokenizer() {
  return R"({"version": "1.0", "added_tokens": [],
    "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
    "model": {"type": "WordLevel", "unk_token": "[UNK]",
              "vocab": {"[UNK]": 0, "it": 1, "'": 2, "s": 3, "good": 4, ".": 5, "do": 6,
                        "not": 7, "##ing": 8, "go": 9, "!": 10, "n't": 11}}})";
}

}  // namespace kite::testing
