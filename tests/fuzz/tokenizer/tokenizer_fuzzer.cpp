// Fuzzes tokenizer.json loading and every encode/decode path. An input is either
//   'J' + tokenizer.json bytes [+ "\0\0" + text]   — raw documents (malformed ones must fail
//                                                    cleanly), or
//   'S' + choice bytes + text                       — a structurally valid tokenizer assembled
//                                                    from the choices, so encode/decode, the
//                                                    streaming detokenizer and stop strings run
//                                                    on arbitrary text and ids.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/incremental_detokenizer.h"
#include "frontend/stop_strings.h"
#include "frontend/tokenizer.h"

namespace {

namespace bj = boost::json;

struct Reader {
  std::string_view data;
  size_t pos = 0;
  uint8_t byte() { return pos < data.size() ? static_cast<uint8_t>(data[pos++]) : 0; }
  std::string_view rest() { return pos < data.size() ? data.substr(pos) : std::string_view(); }
};

bj::value pick_normalizer(Reader& r) {
  switch (r.byte() % 9) {
    case 0:
      return nullptr;
    case 1:
      return bj::object{{"type", "NFC"}};
    case 2:
      return bj::object{{"type", "NFKD"}};
    case 3:
      return bj::object{{"type", "Lowercase"}};
    case 4:
      return bj::object{{"type", "BertNormalizer"}};
    case 5:
      return bj::object{{"type", "Strip"}};
    case 6:
      return bj::object{{"type", "StripAccents"}};
    case 7:
      return bj::object{
          {"type", "Sequence"},
          {"normalizers", bj::array{bj::object{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                    bj::object{{"type", "Replace"},
                                               {"pattern", bj::object{{"String", " "}}},
                                               {"content", "\xE2\x96\x81"}}}}};
    default:
      return bj::object{{"type", "Nmt"}};
  }
}

bj::value pick_pre_tokenizer(Reader& r) {
  const char* behaviors[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                             "Contiguous"};
  switch (r.byte() % 10) {
    case 0:
      return nullptr;
    case 1:
      return bj::object{{"type", "ByteLevel"}, {"add_prefix_space", (r.byte() & 1) != 0}};
    case 2:
      return bj::object{
          {"type", "Sequence"},
          {"pretokenizers",
           bj::array{
               bj::object{
                   {"type", "Split"},
                   {"pattern",
                    bj::object{
                        {"Regex",
                         R"((?i:'s|'t)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
                   {"behavior", behaviors[r.byte() % 5]},
                   {"invert", (r.byte() & 1) != 0}},
               bj::object{
                   {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    case 3:
      return bj::object{{"type", "Metaspace"},
                        {"prepend_scheme", (r.byte() & 1) ? "first" : "always"},
                        {"split", (r.byte() & 1) != 0}};
    case 4:
      return bj::object{{"type", "Whitespace"}};
    case 5:
      return bj::object{{"type", "BertPreTokenizer"}};
    case 6:
      return bj::object{{"type", "Digits"}, {"individual_digits", (r.byte() & 1) != 0}};
    case 7:
      return bj::object{{"type", "Punctuation"}, {"behavior", behaviors[r.byte() % 5]}};
    case 8:
      return bj::object{{"type", "UnicodeScripts"}};
    default:
      return bj::object{{"type", "FixedLength"}, {"length", r.byte() % 7}};
  }
}

bj::value pick_decoder(Reader& r) {
  switch (r.byte() % 7) {
    case 0:
      return nullptr;
    case 1:
      return bj::object{{"type", "ByteLevel"}};
    case 2:
      return bj::object{
          {"type", "Sequence"},
          {"decoders", bj::array{bj::object{{"type", "Replace"},
                                            {"pattern", bj::object{{"String", "\xE2\x96\x81"}}},
                                            {"content", " "}},
                                 bj::object{{"type", "ByteFallback"}}, bj::object{{"type", "Fuse"}},
                                 bj::object{{"type", "Strip"},
                                            {"content", " "},
                                            {"start", r.byte() % 3},
                                            {"stop", r.byte() % 3}}}}};
    case 3:
      return bj::object{{"type", "WordPiece"}};
    case 4:
      return bj::object{{"type", "Metaspace"}};
    case 5:
      return bj::object{{"type", "CTC"}};
    default:
      return bj::object{{"type", "BPEDecoder"}};
  }
}

// A byte-level or character BPE vocabulary over a few characters, with merges of neighbours.
std::string structured_tokenizer(Reader& r) {
  bj::object vocab;
  bj::array merges;
  int id = 0;
  vocab["<unk>"] = id++;
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    vocab[buf] = id++;
  }
  const char* base[] = {"a", "b", "\xC4\xA0", "\xE2\x96\x81", "1", "\xC3\xA9", "##a", " "};
  for (const char* c : base) vocab[c] = id++;
  for (int k = 0; k < 6; ++k) {
    std::string l = base[r.byte() % 6];
    std::string rr = base[r.byte() % 6];
    std::string m = l + rr;
    if (!vocab.contains(m)) vocab[m] = id++;
    merges.push_back(bj::array{bj::string(l), bj::string(rr)});
  }
  uint8_t model = r.byte() % 3;
  bj::object model_json;
  if (model == 0) {
    model_json = {{"type", "BPE"},
                  {"vocab", vocab},
                  {"merges", merges},
                  {"unk_token", "<unk>"},
                  {"byte_fallback", (r.byte() & 1) != 0},
                  {"fuse_unk", (r.byte() & 1) != 0},
                  {"ignore_merges", (r.byte() & 1) != 0}};
  } else if (model == 1) {
    model_json = {{"type", "WordPiece"},
                  {"vocab", vocab},
                  {"unk_token", "<unk>"},
                  {"max_input_chars_per_word", r.byte() % 20}};
  } else {
    model_json = {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "<unk>"}};
  }
  bj::array added;
  const char* contents[] = {"<s>", "</s>", "ab", "\xE2\x96\x81"};
  for (int k = 0; k < 4; ++k) {
    uint8_t f = r.byte();
    added.push_back(bj::object{{"id", 1000 + k},
                               {"content", contents[k]},
                               {"special", (f & 1) != 0},
                               {"lstrip", (f & 2) != 0},
                               {"rstrip", (f & 4) != 0},
                               {"single_word", (f & 8) != 0},
                               {"normalized", (f & 16) != 0}});
  }
  bj::object doc{{"version", "1.0"},
                 {"added_tokens", added},
                 {"normalizer", pick_normalizer(r)},
                 {"pre_tokenizer", pick_pre_tokenizer(r)},
                 {"post_processor", nullptr},
                 {"decoder", pick_decoder(r)},
                 {"model", model_json}};
  return bj::serialize(doc);
}

void exercise(const kite::Tokenizer& tok, std::string_view text) {
  for (bool add : {false, true}) {
    for (bool parse : {false, true}) {
      std::vector<int32_t> ids = tok.encode(text, add, parse);
      for (bool skip : {false, true}) {
        std::string full = tok.decode(ids, skip);
        kite::IncrementalDetokenizer detok(
            tok, skip, std::span<const int32_t>(ids).subspan(0, ids.size() / 2));
        for (int32_t id : ids) (void)detok.step(id);
        (void)detok.flush();
      }
    }
  }
  // Arbitrary ids (including out of range) decode without trouble.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < text.size() && i < 64; i += 2) {
    ids.push_back(static_cast<int32_t>(static_cast<uint8_t>(text[i]) << 2 |
                                       (static_cast<uint8_t>(text[i + 1]) & 3)) -
                  8);
  }
  (void)tok.decode(ids, false);
  kite::IncrementalDetokenizer detok(tok, true);
  for (int32_t id : ids) (void)detok.step(id);
  (void)detok.flush();
  kite::StopStringMatcher stop({"ab", "\xE2\x96\x81", std::string(text.substr(0, 3))},
                               text.size() & 1);
  for (size_t i = 0; i < text.size(); i += 5) (void)stop.push(text.substr(i, 5));
  (void)stop.flush();
  (void)tok.vocab_size();
  (void)tok.token_to_id(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input[0] == 'J') {
    std::string_view rest = input.substr(1);
    std::string_view json = rest;
    std::string_view text = "Hello world, <s> 123 \xE2\x82\xAC!";
    size_t sep = rest.find(std::string_view("\0\0", 2));
    if (sep != std::string_view::npos) {
      json = rest.substr(0, sep);
      text = rest.substr(sep + 2);
    }
    auto tok = kite::Tokenizer::from_json(json, "");
    if (tok.ok()) exercise(**tok, text);
    return 0;
  }
  Reader r{input.substr(1)};
  std::string json = structured_tokenizer(r);
  auto tok = kite::Tokenizer::from_json(json, "");
  if (tok.ok()) exercise(**tok, r.rest());
  return 0;
}
