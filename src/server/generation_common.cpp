#include "server/generation_common.h"

namespace kite::server {

bool PromptState::apply(const RequestOutput& out) {
  bool first = !started;
  if (first) {
    started = true;
    prompt_token_ids = out.prompt_token_ids;
    prompt_logprobs = out.prompt_logprobs;
  }
  for (const ChoiceDelta& d : out.choices) {
    if (d.index >= 0 && static_cast<size_t>(d.index) < choices.size()) choices[d.index].add(d);
  }
  if (!out.error.ok()) error = out.error;
  return first;
}

int64_t PromptState::completion_tokens() const {
  int64_t n = 0;
  for (const ChoiceAccum& c : choices) n += static_cast<int64_t>(c.token_ids.size());
  return n;
}

Usage total_usage(const std::vector<PromptState>& prompts) {
  Usage u;
  for (const PromptState& p : prompts) {
    u.prompt_tokens += static_cast<int64_t>(p.prompt_token_ids.size());
    u.completion_tokens += p.completion_tokens();
  }
  return u;
}

InFlightGuard::InFlightGuard(ServerState& state) : state_(state) {
  state_.generations_in_flight.fetch_add(1);
  state_.metrics().add_in_flight(1);
}

InFlightGuard::~InFlightGuard() {
  state_.metrics().add_in_flight(-1);
  state_.generations_in_flight.fetch_sub(1);
}

}  // namespace kite::server
