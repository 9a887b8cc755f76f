// llama.cpp's tokenizer test vectors (tests/data/vocab-tests: X.gguf.inp inputs separated by
// "\n__ggml_vocab_test__\n", X.gguf.out expected ids, generated from the Hugging Face tokenizer
// of each model with add_special_tokens=False). The GGUF vocabularies are read with kite's GGUF
// parser; llama-bpe and qwen2 use the Llama-3.1 and Qwen2.5 tokenizer.json instead.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/tokenizer.h"
#include "parity_io.h"

namespace kite {
namespace {

const std::string kVectors = std::string(KITE_SOURCE_DIR) + "/tests/data/vocab-tests";
const std::string kGgufDir = KITE_VOCAB_TESTS_DIR;
const std::string kOracleDir = KITE_TOKENIZER_ORACLE_DIR;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Vectors {
  std::vector<std::string> inputs;
  std::vector<std::vector<int32_t>> outputs;
};

Vectors read_vectors(const std::string& name) {
  Vectors v;
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::string inp = slurp(kVectors + "/ggml-vocab-" + name + ".gguf.inp");
  size_t pos = 0;
  while (pos < inp.size()) {
    size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) {
      v.inputs.push_back(inp.substr(pos));
      break;
    }
    v.inputs.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  std::istringstream out(slurp(kVectors + "/ggml-vocab-" + name + ".gguf.out"));
  std::string line;
  while (std::getline(out, line)) {
    std::vector<int32_t> ids;
    std::istringstream ls(line);
    int64_t id;
    while (ls >> id) ids.push_back(static_cast<int32_t>(id));
    v.outputs.push_back(std::move(ids));
  }
  return v;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::ostringstream os;
  for (int32_t id : ids) os << " " << id;
  return os.str();
}

void check_vectors(const Tokenizer& tok, const std::string& name) {
  Vectors v = read_vectors(name);
  ASSERT_GT(v.inputs.size(), 10u);
  ASSERT_EQ(v.inputs.size(), v.outputs.size()) << name << ": .inp and .out disagree in length";
  for (size_t i = 0; i < v.inputs.size(); ++i) {
    std::vector<int32_t> got = tok.encode(v.inputs[i], /*add_special_tokens=*/false);
    EXPECT_EQ(got, v.outputs[i]) << name << " input " << i << " '" << v.inputs[i]
                                 << "'\n  kite:" << ids_str(got)
                                 << "\n  want:" << ids_str(v.outputs[i]);
  }
}

class GgufVocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufVocabVectors, EncodeMatchesPublishedIds) {
  auto tok = Tokenizer::from_gguf_file(kGgufDir + "/ggml-vocab-" + GetParam() + ".gguf");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  check_vectors(**tok, GetParam());
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (c == '-') c = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(Gguf, GgufVocabVectors,
                         ::testing::Values("bert-bge", "deepseek-coder", "deepseek-llm", "falcon",
                                           "gpt-2", "llama-spm", "mpt", "phi-3", "refact",
                                           "starcoder"),
                         param_name);

// The same vectors through tokenizer.json (llama-bpe = Llama-3, qwen2 = Qwen2.5).
TEST(TokenizerJsonVocabVectors, LlamaBpeWithLlama31TokenizerJson) {
  auto tok = Tokenizer::from_pretrained(kOracleDir + "/llama3.1");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  check_vectors(**tok, "llama-bpe");
}

TEST(TokenizerJsonVocabVectors, Qwen2WithQwen25TokenizerJson) {
  auto tok = Tokenizer::from_pretrained(kOracleDir + "/qwen2.5");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  check_vectors(**tok, "qwen2");
}

// SentencePiece's normalizer (remove_extra_whitespaces, the default the stories260K model was
// trained with): drop leading and trailing spaces, collapse runs of spaces. GGUF "llama"
// vocabularies, like llama.cpp and Hugging Face's converted tokenizer.json, keep every space.
std::string collapse_spaces(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// stories260K.gguf against the SentencePiece model published with it (tok512.model), run by the
// sentencepiece library over the whole corpus (oracle fixture). Two SentencePiece normalizer rules
// that GGUF "llama" vocabularies (and llama.cpp, and converted tokenizer.json files) do not have
// are accounted for: extra spaces are removed (collapse_spaces), and a literal "▁" in the input
// counts as whitespace (those strings are skipped).
TEST(Stories260kGguf, MatchesPublishedSentencePieceModel) {
  auto tok = Tokenizer::from_gguf_file(std::string(KITE_SOURCE_DIR) +
                                       "/tests/data/models/stories260k/stories260K.gguf");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  std::vector<std::string> corpus = parity::read_corpus(kOracleDir + "/corpus.jsonl");
  std::vector<std::string> lines = parity::read_lines(kOracleDir + "/stories260k/oracle.jsonl");
  ASSERT_EQ(corpus.size(), lines.size());
  ASSERT_GE(corpus.size(), 20000u);
  size_t mismatches = 0;
  size_t skipped = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (corpus[i].find("\xE2\x96\x81") != std::string::npos) {
      ++skipped;
      continue;
    }
    boost::json::object rec = boost::json::parse(lines[i]).as_object();
    std::vector<int32_t> want = parity::ids_of(rec.at("enc_ns"));
    // Invalid UTF-8 reaches SentencePiece repaired by Python; kite repairs it the same way.
    std::vector<int32_t> got = (*tok)->encode(collapse_spaces(corpus[i]), false, false);
    std::string dec = (*tok)->decode(want);
    std::string want_dec(rec.at("dec").as_string());
    if ((got != want || dec != want_dec) && ++mismatches <= 10) {
      ADD_FAILURE() << "string " << i << " '" << parity::escaped(corpus[i])
                    << "'\n  kite: " << parity::ids_str(got) << " '" << parity::escaped(dec)
                    << "'\n  sp:   " << parity::ids_str(want) << " '" << parity::escaped(want_dec)
                    << "'";
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_LT(skipped, 1000u);
}

// tinystories-656k-q8_0.gguf embeds the tokenizer of tests/data/models/tinystories-656k: its
// GGUF vocabulary must tokenize like that tokenizer.json (oracle: tokenizers). Special tokens
// are left unparsed on both sides: the tokenizer.json marks them `normalized`, which GGUF cannot
// express.
TEST(TinyStoriesGguf, MatchesItsTokenizerJson) {
  auto tok = Tokenizer::from_gguf_file(std::string(KITE_SOURCE_DIR) +
                                       "/tests/data/models/tinystories-656k-q8_0.gguf");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->bos_token(), "<|start_story|>");
  EXPECT_EQ((*tok)->eos_token_id(), std::optional<int32_t>(2));
  std::vector<std::string> corpus = parity::read_corpus(kOracleDir + "/corpus.jsonl");
  std::vector<std::string> lines = parity::read_lines(kOracleDir + "/tinystories/oracle.jsonl");
  ASSERT_GE(lines.size(), corpus.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    boost::json::object rec = boost::json::parse(lines[i]).as_object();
    std::vector<int32_t> want = parity::ids_of(rec.at("enc_np"));  // BOS + ids, unparsed
    std::vector<int32_t> got = (*tok)->encode(corpus[i], /*add_special_tokens=*/true,
                                              /*parse_special=*/false);
    if (got != want && ++mismatches <= 10) {
      ADD_FAILURE() << "string " << i << " '" << parity::escaped(corpus[i])
                    << "'\n  kite: " << parity::ids_str(got)
                    << "\n  hf:   " << parity::ids_str(want);
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

}  // namespace
}  // namespace kite
