#include "server/beam_search.h"

#include <algorithm>
#include <cmath>

namespace kite::server {

std::vector<BeamHypothesis> beam_step(const std::vector<BeamHypothesis>& beams,
                                      const std::vector<std::vector<TokenLogprob>>& candidates,
                                      size_t width, std::span<const int32_t> eos_token_ids,
                                      bool ignore_eos, std::vector<BeamHypothesis>& finished) {
  std::vector<BeamHypothesis> extended;
  for (size_t i = 0; i < beams.size() && i < candidates.size(); ++i) {
    for (const TokenLogprob& c : candidates[i]) {
      BeamHypothesis b = beams[i];
      b.tokens.push_back(c.token_id);
      b.cum_logprob += c.logprob;
      const bool eos =
          std::find(eos_token_ids.begin(), eos_token_ids.end(), c.token_id) != eos_token_ids.end();
      if (eos && !ignore_eos) {
        b.ended_with_eos = true;
        finished.push_back(std::move(b));
      } else {
        extended.push_back(std::move(b));
      }
    }
  }
  std::stable_sort(extended.begin(), extended.end(),
                   [](const BeamHypothesis& a, const BeamHypothesis& b) {
                     return a.cum_logprob > b.cum_logprob;
                   });
  if (extended.size() > width) extended.resize(width);
  return extended;
}

double beam_score(const BeamHypothesis& b, double length_penalty) {
  double len = static_cast<double>(b.tokens.size()) - (b.ended_with_eos ? 1.0 : 0.0);
  return b.cum_logprob / std::pow(std::max(len, 1.0), length_penalty);
}

std::vector<BeamHypothesis> best_beams(std::vector<BeamHypothesis> finished,
                                       const std::vector<BeamHypothesis>& live, size_t width,
                                       double length_penalty) {
  finished.insert(finished.end(), live.begin(), live.end());
  std::stable_sort(finished.begin(), finished.end(),
                   [length_penalty](const BeamHypothesis& a, const BeamHypothesis& b) {
                     return beam_score(a, length_penalty) > beam_score(b, length_penalty);
                   });
  if (finished.size() > width) finished.resize(width);
  return finished;
}

}  // namespace kite::server
