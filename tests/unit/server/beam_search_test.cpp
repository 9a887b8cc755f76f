#include "server/beam_search.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kite::server {
namespace {

BeamHypothesis beam(std::vector<int32_t> tokens, double cum, size_t prompt = 1) {
  BeamHypothesis b;
  b.tokens = std::move(tokens);
  b.cum_logprob = cum;
  b.num_prompt_tokens = prompt;
  return b;
}

TEST(BeamSearchTest, StepKeepsTheBestExtensionsAndSetsEosAside) {
  std::vector<BeamHypothesis> beams = {beam({7, 1}, -1.0), beam({7, 2}, -2.0)};
  std::vector<std::vector<TokenLogprob>> cands = {{{3, -0.5f}, {0, -0.25f}, {4, -3.0f}},
                                                  {{5, -0.1f}, {6, -0.2f}}};
  std::vector<BeamHypothesis> finished;
  const std::vector<int32_t> eos = {0};
  std::vector<BeamHypothesis> live = beam_step(beams, cands, 2, eos, false, finished);
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].tokens, (std::vector<int32_t>{7, 1, 3}));  // -1.5
  EXPECT_EQ(live[1].tokens, (std::vector<int32_t>{7, 2, 5}));  // -2.1
  EXPECT_NEAR(live[1].cum_logprob, -2.1, 1e-6);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_TRUE(finished[0].ended_with_eos);
  EXPECT_EQ(finished[0].tokens.back(), 0);
  std::vector<BeamHypothesis> none;
  EXPECT_EQ(beam_step(beams, cands, 2, eos, /*ignore_eos=*/true, none)[0].tokens.back(), 0);
  EXPECT_TRUE(none.empty());
}

TEST(BeamSearchTest, RankingUsesVllmsLengthPenalisedScore) {
  BeamHypothesis short_eos = beam({1, 2, 0}, -1.0);
  short_eos.ended_with_eos = true;                      // length 2 (the EOS is not counted)
  BeamHypothesis long_live = beam({1, 2, 3, 4}, -1.6);  // length 4
  EXPECT_DOUBLE_EQ(beam_score(short_eos, 1.0), -0.5);
  EXPECT_DOUBLE_EQ(beam_score(long_live, 1.0), -0.4);
  std::vector<BeamHypothesis> best = best_beams({short_eos}, {long_live}, 2, 1.0);
  EXPECT_EQ(best[0].tokens.size(), 4u);
  best = best_beams({short_eos}, {long_live}, 1, 0.0);  // no penalty: the sums decide
  ASSERT_EQ(best.size(), 1u);
  EXPECT_TRUE(best[0].ended_with_eos);
}

}  // namespace
}  // namespace kite::server
