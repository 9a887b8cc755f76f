// BitmaskFiller: a batch of jobs on worker threads (and inline with none) gives the same masks
// as filling them one by one, reports unconstrained (gated) matchers, and runs batch after batch.
#include "structured/bitmask_filler.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "structured/bitmask.h"

namespace kite::structured {
namespace {

std::shared_ptr<const CompiledGrammar> compile(GrammarCompiler& c, const std::string& regex) {
  GrammarSpec s;
  s.kind = GrammarSpec::Kind::kRegex;
  s.text = regex;
  auto g = c.compile(s);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return *g;
}

TEST(BitmaskFiller, MatchesSerialFills) {
  StructuredVocab v;
  v.encoded.push_back("");
  for (char c = 32; c < 127; ++c) v.encoded.emplace_back(1, c);
  v.model_vocab_size = static_cast<int64_t>(v.encoded.size());
  v.stop_token_ids = {0};
  auto compiler = GrammarCompiler::create(v, {});
  ASSERT_TRUE(compiler.ok());
  const std::vector<std::string> regexes = {"[a-f]+", "x[0-9]y", "(ab|cd)*", "[A-Z]{3}"};
  const int64_t words = bitmask_words(v.model_vocab_size);
  for (int threads : {0, 1, 3}) {
    BitmaskFiller filler(threads);
    for (int round = 0; round < 3; ++round) {
      std::vector<std::unique_ptr<GrammarMatcher>> matchers;
      for (size_t i = 0; i < regexes.size(); ++i) {
        matchers.push_back(std::make_unique<GrammarMatcher>(
            compile(**compiler, regexes[i]), std::vector<int32_t>{0},
            i == 3 ? std::optional<int32_t>(5) : std::nullopt));  // the last one is gated
      }
      std::vector<int32_t> masks(matchers.size() * static_cast<size_t>(words), 0);
      std::vector<uint8_t> constrained(matchers.size(), 9);
      std::vector<BitmaskFiller::Job> jobs;
      for (size_t i = 0; i < matchers.size(); ++i) {
        jobs.push_back({matchers[i].get(), masks.data() + i * words, &constrained[i]});
      }
      filler.start(jobs);
      EXPECT_GE(filler.wait(), 0.0);
      for (size_t i = 0; i < matchers.size(); ++i) {
        EXPECT_EQ(constrained[i], i == 3 ? 0 : 1);
        if (i == 3) continue;
        std::vector<int32_t> want(static_cast<size_t>(words));
        matchers[i]->fill_bitmask(want.data());
        EXPECT_TRUE(std::equal(want.begin(), want.end(), masks.begin() + i * words));
      }
    }
    filler.start({});
    EXPECT_GE(filler.wait(), 0.0);  // an empty batch ends at once
  }
}

}  // namespace
}  // namespace kite::structured
