// Beam search as vLLM does it (vllm/beam_search.py and its LLM.beam_search): every step runs
// each live beam as a one-token request with 2 * width log-probabilities, extends it by each of
// those tokens, sets aside extensions ending in EOS and keeps the `width` most likely of the
// rest; the finished beams are ranked by cum_logprob / len(tokens) ** length_penalty (tokens
// include the prompt; a final EOS is not counted). Pure: the engine requests are the caller's
// (completion_handler.cpp; kite.LLM.beam_search does the same in Python).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kite/request.h"

namespace kite::server {

struct BeamHypothesis {
  std::vector<int32_t> tokens;  // prompt + generated
  size_t num_prompt_tokens = 0;
  double cum_logprob = 0.0;
  bool ended_with_eos = false;
};

// One step of one prompt's beams. `candidates[i]` are beam i's next tokens with their
// log-probabilities. Returns the new live beams (the `width` best by cum_logprob, ties in
// order); EOS-ended extensions go to `finished` unless `ignore_eos`.
std::vector<BeamHypothesis> beam_step(const std::vector<BeamHypothesis>& beams,
                                      const std::vector<std::vector<TokenLogprob>>& candidates,
                                      size_t width, std::span<const int32_t> eos_token_ids,
                                      bool ignore_eos, std::vector<BeamHypothesis>& finished);

// vLLM's score of a beam.
double beam_score(const BeamHypothesis& b, double length_penalty);

// The `width` best of `finished` and `live` by beam_score, best first.
std::vector<BeamHypothesis> best_beams(std::vector<BeamHypothesis> finished,
                                       const std::vector<BeamHypothesis>& live, size_t width,
                                       double length_penalty);

}  // namespace kite::server
