// kite_grammar_mask_bench TOKENIZER_DIR [CASES_JSON] [REPEAT]: for each case, compiles its JSON
// schema against the tokenizer's vocabulary, tokenizes its instance, and at every position times
// GrammarMatcher::fill_bitmask (one bitmask over the whole vocabulary) before accepting the
// instance's token; then checks that EOS is allowed at the end. Prints compile time and the
// mean / p50 / p99 mask time per token (microseconds), per case and over all.
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/tokenizer.h"
#include "structured/bitmask.h"
#include "structured/grammar_compiler.h"
#include "structured/grammar_matcher.h"

namespace {

using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}
double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  namespace st = kite::structured;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR [CASES_JSON] [REPEAT]\n", argv[0]);
    return 2;
  }
  const std::string cases_path =
      argc > 2 ? argv[2]
               : std::string(KITE_SOURCE_DIR) + "/scripts/benchmarks/grammar_mask_cases.json";
  const int repeat = argc > 3 ? std::atoi(argv[3]) : 5;
  auto tok = kite::Tokenizer::from_pretrained(argv[1]);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  const kite::Tokenizer& t = **tok;
  st::StructuredVocab v;
  v.encoded.resize(static_cast<size_t>(t.vocab_size()));
  for (int64_t id = 0; id < t.vocab_size(); ++id) {
    if (!t.is_special(static_cast<int32_t>(id)))
      v.encoded[id] = t.id_to_token(static_cast<int32_t>(id));
  }
  v.kind = st::detect_vocab_kind(v.encoded);
  v.model_vocab_size = t.vocab_size();
  const int32_t eos = t.eos_token_id().value_or(0);
  v.stop_token_ids = {eos};
  st::GrammarCompilerOptions o;
  o.num_threads = 1;
  auto t0 = Clock::now();
  auto compiler = st::GrammarCompiler::create(v, o);
  if (!compiler.ok()) {
    std::fprintf(stderr, "%s\n", compiler.status().to_string().c_str());
    return 1;
  }
  std::printf("xgrammar (kite_structured): vocabulary %lld tokens, set up in %.0f ms\n",
              static_cast<long long>(t.vocab_size()), us_since(t0) / 1e3);
  std::ifstream in(cases_path);
  std::stringstream ss;
  ss << in.rdbuf();
  boost::json::value doc = boost::json::parse(ss.str());
  std::vector<int32_t> mask(static_cast<size_t>(st::bitmask_words(t.vocab_size())));
  std::vector<double> all;
  std::printf("%-18s %10s %6s %8s %8s %8s\n", "case", "compile ms", "tokens", "mean us", "p50 us",
              "p99 us");
  for (const auto& c : doc.at("cases").as_array()) {
    const std::string name(c.at("name").as_string());
    st::GrammarSpec spec;
    spec.kind = st::GrammarSpec::Kind::kJsonSchema;
    spec.text = boost::json::serialize(c.at("schema"));
    t0 = Clock::now();
    auto grammar = (*compiler)->compile(spec);
    const double compile_ms = us_since(t0) / 1e3;
    if (!grammar.ok()) {
      std::printf("%s: %s\n", name.c_str(), grammar.status().to_string().c_str());
      continue;
    }
    const std::vector<int32_t> ids = t.encode(std::string(c.at("instance").as_string()), false);
    std::vector<double> times;
    for (int r = 0; r < repeat; ++r) {
      st::GrammarMatcher m(*grammar, {eos});
      for (int32_t id : ids) {
        auto s = Clock::now();
        m.fill_bitmask(mask.data());
        times.push_back(us_since(s));
        if (!st::bitmask_allows(mask.data(), id) || !m.accept(id)) {
          std::printf("%s: token %d (%s) refused\n", name.c_str(), id, t.id_to_token(id).c_str());
          return 1;
        }
      }
      auto s = Clock::now();
      m.fill_bitmask(mask.data());
      times.push_back(us_since(s));
      if (!st::bitmask_allows(mask.data(), eos)) {
        std::printf("%s: EOS not allowed at the end\n", name.c_str());
        return 1;
      }
    }
    all.insert(all.end(), times.begin(), times.end());
    const double mean = std::accumulate(times.begin(), times.end(), 0.0) / times.size();
    std::printf("%-18s %10.1f %6zu %8.1f %8.1f %8.1f\n", name.c_str(), compile_ms, ids.size(), mean,
                pct(times, 50), pct(times, 99));
  }
  const double mean = std::accumulate(all.begin(), all.end(), 0.0) / all.size();
  std::printf("%-18s %10s %6zu %8.1f %8.1f %8.1f\n", "all", "", all.size(), mean, pct(all, 50),
              pct(all, 99));
  return 0;
}
