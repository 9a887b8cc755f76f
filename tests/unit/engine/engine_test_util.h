// Helpers for engine tests: build an Engine around a runner, and drain a request's stream.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/engine_impl.h"
#include "kite/engine.h"

namespace kite::testing {

struct Collected {
  std::vector<std::vector<int32_t>> tokens;  // per choice
  std::vector<std::string> text;             // per choice
  std::vector<FinishReason> finish;          // per choice
  std::vector<std::vector<LogprobEntry>> logprobs;
  std::vector<LogprobEntry> prompt_logprobs;
  std::vector<int32_t> prompt_token_ids;
  int num_outputs = 0;
  int num_finished_outputs = 0;
  Status error;
  RequestMetrics metrics;
};

// Reads the stream to its end, checking that exactly one output is finished and it is last.
inline Collected collect(RequestStream& stream, int n = 1) {
  Collected c;
  c.tokens.resize(static_cast<size_t>(n));
  c.text.resize(static_cast<size_t>(n));
  c.finish.assign(static_cast<size_t>(n), FinishReason::kNone);
  c.logprobs.resize(static_cast<size_t>(n));
  while (auto out = stream.next()) {
    EXPECT_EQ(c.num_finished_outputs, 0) << "output after the finished one";
    if (c.num_outputs == 0) {
      c.prompt_token_ids = out->prompt_token_ids;
      c.prompt_logprobs = out->prompt_logprobs;
    }
    ++c.num_outputs;
    for (const ChoiceDelta& d : out->choices) {
      const auto i = static_cast<size_t>(d.index);
      EXPECT_EQ(c.finish.at(i), FinishReason::kNone)
          << "choice " << i << " had news after finishing";
      c.tokens[i].insert(c.tokens[i].end(), d.token_ids.begin(), d.token_ids.end());
      c.text[i] += d.text;
      c.logprobs[i].insert(c.logprobs[i].end(), d.logprobs.begin(), d.logprobs.end());
      if (d.finish_reason != FinishReason::kNone) c.finish[i] = d.finish_reason;
    }
    if (out->finished) {
      ++c.num_finished_outputs;
      c.error = out->error;
      c.metrics = out->metrics;
    }
  }
  EXPECT_EQ(c.num_finished_outputs, 1);
  for (size_t i = 0; i < c.finish.size(); ++i) {
    EXPECT_NE(c.finish[i], FinishReason::kNone) << "choice " << i << " never finished";
  }
  return c;
}

}  // namespace kite::testing
