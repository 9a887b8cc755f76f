#include "kite/sampling_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace kite {
namespace {

TEST(SamplingParamsValidate, DefaultsAreValid) {
  EXPECT_TRUE(SamplingParams{}.validate().ok());
  EXPECT_TRUE(SamplingParams{}.validate(32000).ok());
  SamplingParams greedy;
  greedy.temperature = 0.0;
  EXPECT_TRUE(greedy.validate().ok());
  EXPECT_TRUE(greedy.greedy());
}

struct BadCase {
  std::string name;
  std::function<void(SamplingParams&)> mutate;
  std::string field;  // the message must name it
};

TEST(SamplingParamsValidate, RejectsEachBadFieldByName) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const BadCase cases[] = {
      {"n=0", [](SamplingParams& p) { p.n = 0; }, "n must be"},
      {"temperature<0", [](SamplingParams& p) { p.temperature = -1; },
       "temperature must be >= 0, got -1"},
      {"temperature nan", [&](SamplingParams& p) { p.temperature = nan; }, "temperature"},
      {"temperature inf",
       [](SamplingParams& p) { p.temperature = std::numeric_limits<double>::infinity(); },
       "temperature"},
      {"top_p=0", [](SamplingParams& p) { p.top_p = 0; }, "top_p must be in (0, 1]"},
      // Valid doubles that the float the samplers use cannot hold.
      {"temperature inf as float", [](SamplingParams& p) { p.temperature = 1e300; },
       "temperature 1e+300 is out of range as a 32-bit float"},
      {"top_p 0 as float", [](SamplingParams& p) { p.top_p = 1e-50; }, "top_p 1e-50"},
      {"repetition 0 as float", [](SamplingParams& p) { p.repetition_penalty = 1e-50; },
       "repetition_penalty 1e-50"},
      {"repetition inf as float", [](SamplingParams& p) { p.repetition_penalty = 1e39; },
       "repetition_penalty 1e+39"},
      {"top_p>1", [](SamplingParams& p) { p.top_p = 1.5; }, "top_p"},
      {"top_k=-2", [](SamplingParams& p) { p.top_k = -2; }, "top_k"},
      {"min_p>1", [](SamplingParams& p) { p.min_p = 1.01; }, "min_p"},
      {"min_p<0", [](SamplingParams& p) { p.min_p = -0.1; }, "min_p"},
      {"repetition=0", [](SamplingParams& p) { p.repetition_penalty = 0; },
       "repetition_penalty must be > 0"},
      {"presence>2", [](SamplingParams& p) { p.presence_penalty = 2.5; }, "presence_penalty"},
      {"frequency<-2", [](SamplingParams& p) { p.frequency_penalty = -3; }, "frequency_penalty"},
      {"bias value",
       [](SamplingParams& p) {
         p.logit_bias = {{5, 101.0f}};
       },
       "logit_bias"},
      {"bias token<0",
       [](SamplingParams& p) {
         p.logit_bias = {{-1, 1.0f}};
       },
       "logit_bias"},
      {"bias token>=vocab",
       [](SamplingParams& p) {
         p.logit_bias = {{100, 1.0f}};
       },
       "logit_bias has token id 100 outside the vocabulary [0, 100)"},
      {"bias duplicate",
       [](SamplingParams& p) {
         p.logit_bias = {{3, 1.0f}, {3, 2.0f}};
       },
       "more than once"},
      {"max_tokens=0", [](SamplingParams& p) { p.max_tokens = 0; }, "max_tokens"},
      {"min_tokens<0", [](SamplingParams& p) { p.min_tokens = -1; }, "min_tokens"},
      {"min>max", [](SamplingParams& p) { p.min_tokens = 20; }, "min_tokens (20)"},
      {"empty stop",
       [](SamplingParams& p) {
         p.stop = {"a", ""};
       },
       "stop[1]"},
      {"stop id",
       [](SamplingParams& p) {
         p.stop_token_ids = {7, 1000};
       },
       "stop_token_ids"},
      {"logprobs>20", [](SamplingParams& p) { p.logprobs = 21; }, "logprobs must be in [0, 20]"},
      {"logprobs<0", [](SamplingParams& p) { p.logprobs = -1; }, "logprobs"},
      {"prompt_logprobs", [](SamplingParams& p) { p.prompt_logprobs = 30; }, "prompt_logprobs"},
  };
  for (const BadCase& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const Status s = p.validate(100);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(s.message().find(c.field), std::string::npos)
        << c.name << ": message was '" << s.message() << "'";
  }
}

TEST(SamplingParamsValidate, VocabChecksOnlyWhenKnown) {
  SamplingParams p;
  p.logit_bias = {{50000, 1.0f}};
  p.stop_token_ids = {60000};
  EXPECT_TRUE(p.validate(0).ok());
  EXPECT_FALSE(p.validate(32000).ok());
}

TEST(SamplingParamsValidate, BoundaryValuesAreAccepted) {
  SamplingParams p;
  p.top_p = 1.0;
  p.top_k = -1;
  p.min_p = 1.0;
  p.presence_penalty = -2.0;
  p.frequency_penalty = 2.0;
  p.logit_bias = {{0, -100.0f}, {99, 100.0f}};
  p.max_tokens = 1;
  p.min_tokens = 1;
  p.logprobs = 20;
  p.prompt_logprobs = 0;
  EXPECT_TRUE(p.validate(100).ok()) << p.validate(100).to_string();
}

}  // namespace
}  // namespace kite
