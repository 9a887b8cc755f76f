// kite's tokenizer against Hugging Face `tokenizers` on the committed corpus
// (tests/data/tokenizers/corpus.jsonl.gz). The expected values are produced at test time by
// hf_oracle.py (a CTest fixture running the real library); see docs/tokenizer.md.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/incremental_detokenizer.h"
#include "frontend/tokenizer.h"
#include "parity_io.h"

namespace kite {
namespace {

const std::string kOracleDir = KITE_TOKENIZER_ORACLE_DIR;

using parity::escaped;
using parity::ids_of;
using parity::ids_str;
using parity::read_lines;

// "[... a,b,c ...]" around the first index where a and b differ.
std::string diff_str(const std::vector<int32_t>& a, const std::vector<int32_t>& b,
                     const Tokenizer& tok) {
  size_t k = 0;
  while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
  std::ostringstream os;
  os << "first difference at " << k << " (sizes " << a.size() << " vs " << b.size() << ")";
  auto around = [&](const std::vector<int32_t>& v, const char* who) {
    os << "\n    " << who << ":";
    for (size_t i = k >= 3 ? k - 3 : 0; i < v.size() && i < k + 6; ++i) {
      os << " " << v[i] << "'" << escaped(tok.id_to_token(v[i]), 20) << "'";
    }
  };
  around(a, "kite");
  around(b, "hf  ");
  return os.str();
}

struct OracleRecord {
  std::vector<int32_t> enc, enc_ns, enc_np, rand;
  std::optional<std::string> dec, dec_skip;  // nullopt where tokenizers itself panicked
  bool is_random = false;
};

struct ParityData {
  std::unique_ptr<Tokenizer> tok;
  std::vector<std::string> corpus;  // raw bytes, possibly invalid UTF-8
  std::vector<OracleRecord> text_records;
  std::vector<OracleRecord> random_records;
};

std::optional<std::string> opt_string(const boost::json::value& v) {
  if (v.is_null()) return std::nullopt;
  return std::string(v.as_string());
}

// dir: tokenizer.json (+ tokenizer_config.json) and oracle.jsonl; corpus: the strings.
ParityData load_from(const std::string& dir, const std::string& corpus, size_t min_strings) {
  ParityData d;
  auto tok = Tokenizer::from_pretrained(dir);
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  if (!tok.ok()) return d;
  d.tok = std::move(tok).value();
  d.corpus = parity::read_corpus(corpus);
  for (const std::string& line : read_lines(dir + "/oracle.jsonl")) {
    boost::json::object rec = boost::json::parse(line).as_object();
    OracleRecord r;
    r.dec = opt_string(rec.at("dec"));
    r.dec_skip = opt_string(rec.at("dec_skip"));
    if (auto* rand = rec.if_contains("rand")) {
      r.is_random = true;
      r.rand = ids_of(*rand);
      d.random_records.push_back(std::move(r));
    } else {
      r.enc = ids_of(rec.at("enc"));
      r.enc_ns = ids_of(rec.at("enc_ns"));
      r.enc_np = ids_of(rec.at("enc_np"));
      d.text_records.push_back(std::move(r));
    }
  }
  EXPECT_EQ(d.corpus.size(), d.text_records.size()) << "oracle output does not match the corpus";
  EXPECT_GE(d.corpus.size(), min_strings);
  return d;
}

ParityData load(const std::string& name) {
  return load_from(kOracleDir + "/" + name, kOracleDir + "/corpus.jsonl", 20000);
}

void check_encode(const ParityData& d, const std::string& name) {
  ASSERT_TRUE(d.tok);
  size_t mismatches = 0;
  for (size_t i = 0; i < d.corpus.size() && i < d.text_records.size(); ++i) {
    const OracleRecord& r = d.text_records[i];
    struct Case {
      const char* what;
      bool add_special;
      bool parse_special;
      const std::vector<int32_t>* want;
    } cases[] = {{"add_special", true, true, &r.enc},
                 {"no_special", false, true, &r.enc_ns},
                 {"no_parse_special", true, false, &r.enc_np}};
    for (const Case& c : cases) {
      std::vector<int32_t> got = d.tok->encode(d.corpus[i], c.add_special, c.parse_special);
      if (got != *c.want) {
        if (++mismatches <= 10) {
          ADD_FAILURE() << name << " string " << i << " (" << c.what << ") '"
                        << escaped(d.corpus[i]) << "'\n  " << diff_str(got, *c.want, *d.tok);
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0u) << "encode mismatches over " << d.corpus.size() << " strings x 3 modes";
}

void check_decode(const ParityData& d, const std::string& name) {
  ASSERT_TRUE(d.tok);
  size_t mismatches = 0;
  auto check = [&](const std::vector<int32_t>& ids, bool skip,
                   const std::optional<std::string>& want, const std::string& what) {
    std::string got = d.tok->decode(ids, skip);  // must not crash even where tokenizers panics
    if (want && got != *want && ++mismatches <= 10) {
      ADD_FAILURE() << name << " " << what << " skip=" << skip << " ids " << ids_str(ids)
                    << "\n  kite: '" << escaped(got) << "'\n  hf:   '" << escaped(*want) << "'";
    }
  };
  for (size_t i = 0; i < d.text_records.size(); ++i) {
    check(d.text_records[i].enc, false, d.text_records[i].dec, "string " + std::to_string(i));
    check(d.text_records[i].enc, true, d.text_records[i].dec_skip, "string " + std::to_string(i));
  }
  for (size_t i = 0; i < d.random_records.size(); ++i) {
    check(d.random_records[i].rand, false, d.random_records[i].dec, "random " + std::to_string(i));
    check(d.random_records[i].rand, true, d.random_records[i].dec_skip,
          "random " + std::to_string(i));
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(d.random_records.size(), 0u);
}

// Streaming the ids of every corpus string one at a time gives exactly the full decode.
void check_streaming(const ParityData& d, const std::string& name) {
  ASSERT_TRUE(d.tok);
  size_t mismatches = 0;
  for (size_t i = 0; i < d.text_records.size(); ++i) {
    for (bool skip : {false, true}) {
      const OracleRecord& r = d.text_records[i];
      IncrementalDetokenizer detok(*d.tok, skip);
      std::string streamed;
      for (int32_t id : r.enc) streamed += detok.step(id);
      streamed += detok.flush();
      const std::optional<std::string>& want = skip ? r.dec_skip : r.dec;
      if (want && streamed != *want && ++mismatches <= 10) {
        ADD_FAILURE() << name << " string " << i << " skip=" << skip << " ids " << ids_str(r.enc)
                      << "\n  streamed: '" << escaped(streamed) << "'\n  hf:       '"
                      << escaped(*want) << "'";
      }
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

class TokenizerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerParity, EncodeMatchesHf) { check_encode(load(GetParam()), GetParam()); }
TEST_P(TokenizerParity, DecodeMatchesHf) { check_decode(load(GetParam()), GetParam()); }
TEST_P(TokenizerParity, StreamingDecodeConcatenatesToFullDecode) {
  check_streaming(load(GetParam()), GetParam());
}

// Synthetic tokenizers covering every component (component_oracle.py builds them with
// tokenizers, which also produces the expected values).
class ComponentParity : public ::testing::TestWithParam<std::string> {};

ParityData load_component(const std::string& name) {
  return load_from(kOracleDir + "/components/" + name, kOracleDir + "/components/corpus.jsonl",
                   3000);
}

TEST_P(ComponentParity, EncodeDecodeStreamMatchHf) {
  ParityData d = load_component(GetParam());
  check_encode(d, GetParam());
  check_decode(d, GetParam());
  check_streaming(d, GetParam());
}

const char* const kComponentTokenizers[] = {"lowercase_whitespace",
                                            "nfkd_strip_accents",
                                            "nfkc_punctuation",
                                            "nfd_lowercase_strip",
                                            "bert_uncased",
                                            "bert_cased",
                                            "punctuation_behaviors",
                                            "punctuation_removed_next",
                                            "metaspace_first_split",
                                            "metaspace_always_bpe",
                                            "metaspace_never",
                                            "digits_then_metaspace",
                                            "unicode_scripts",
                                            "char_delimiter",
                                            "fixed_length",
                                            "split_behaviors",
                                            "split_merged_previous",
                                            "replace_regex_prepend",
                                            "nmt_nfc",
                                            "bytelevel_prefix_space",
                                            "bytelevel_normalizer",
                                            "bpe_prefix_suffix",
                                            "ctc_chars",
                                            "replace_strip_decoders",
                                            "template_pair_tokens"};

// The oracle builds exactly the configurations this test runs.
TEST(ComponentParityIndex, OracleBuiltEveryComponentTokenizer) {
  std::vector<std::string> built = read_lines(kOracleDir + "/components/index.txt");
  std::vector<std::string> want(std::begin(kComponentTokenizers), std::end(kComponentTokenizers));
  EXPECT_EQ(built, want);
}

INSTANTIATE_TEST_SUITE_P(Components, ComponentParity,
                         ::testing::ValuesIn(std::vector<std::string>(
                             std::begin(kComponentTokenizers), std::end(kComponentTokenizers))),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (c == '.') c = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerParity,
                         ::testing::Values("llama3.1", "llama2", "gemma3", "qwen3", "qwen2.5",
                                           "tinystories"),
                         param_name);

}  // namespace
}  // namespace kite
