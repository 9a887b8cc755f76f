// The CPU sampler against the definition in sampling_batch.h: each processing step changes
// exactly the logits it should, logprobs are the log-softmax of the processed logits, and
// seeded sampling is a pure function of (seed, step, logits) whatever the batch.
#include "sampling/cpu_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "sampling/sampling_batch_builder.h"

namespace kite {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> random_logits(int64_t vocab, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(vocab));
  for (float& x : v) x = dist(rng);
  return v;
}

struct RowSpec {
  SamplingParams params;
  uint64_t seed = 0;
  uint32_t step = 0;
  std::vector<int32_t> prompt;
  std::vector<int32_t> output;
  std::vector<int32_t> eos;
};

SamplingBatch build(const std::vector<RowSpec>& rows) {
  SamplingBatchBuilder b;
  b.reset();
  for (const RowSpec& r : rows) {
    EXPECT_TRUE(b.add_row({&r.params, r.seed, r.step, r.prompt, r.output, r.eos}).ok());
  }
  return b.finish();
}

std::vector<float> processed(const std::vector<float>& logits, const RowSpec& row) {
  const SamplingBatch batch = build({row});
  EXPECT_TRUE(check_sampling_batch(batch, static_cast<int64_t>(logits.size())).ok());
  std::vector<float> x = logits;
  apply_logits_processing(x.data(), static_cast<int64_t>(x.size()), batch, 0);
  return x;
}

TEST(CpuSampler, GreedyTakesLowestIdAmongTies) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  RowSpec row;
  row.params.temperature = 0.0;
  const SamplingBatch batch = build({row});
  EXPECT_TRUE(batch.all_greedy);
  SamplerOutput out;
  ASSERT_TRUE(cpu_sample(logits.data(), 5, batch, &out).ok());
  EXPECT_EQ(out.token_ids, std::vector<int32_t>{1});
  EXPECT_TRUE(out.logprobs.empty());
}

TEST(CpuSampler, LogitBiasChangesExactlyTheBiasedTokens) {
  const std::vector<float> logits = random_logits(50, 1);
  RowSpec row;
  row.params.temperature = 0.0;
  row.params.logit_bias = {{3, 5.5f}, {17, -100.0f}};
  const std::vector<float> x = processed(logits, row);
  for (size_t t = 0; t < logits.size(); ++t) {
    const float want = t == 3 ? logits[t] + 5.5f : t == 17 ? logits[t] - 100.0f : logits[t];
    EXPECT_EQ(x[t], want) << "token " << t;
  }
  // A large bias makes the token the greedy choice.
  row.params.logit_bias = {{42, 100.0f}};
  SamplerOutput out;
  ASSERT_TRUE(cpu_sample(logits.data(), 50, build({row}), &out).ok());
  EXPECT_EQ(out.token_ids[0], 42);
}

TEST(CpuSampler, MinTokensBansEosAndStopIdsUntilReached) {
  std::vector<float> logits(10, 0.0f);
  logits[2] = 10.0f;  // EOS
  logits[5] = 9.0f;   // stop token id
  logits[7] = 8.0f;
  RowSpec row;
  row.params.temperature = 0.0;
  row.params.min_tokens = 3;
  row.params.stop_token_ids = {5};
  row.eos = {2};
  row.output = {1, 1};  // 2 < 3 outputs: banned
  std::vector<float> x = processed(logits, row);
  EXPECT_EQ(x[2], -kInf);
  EXPECT_EQ(x[5], -kInf);
  for (int t : {0, 1, 3, 4, 6, 7, 8, 9})
    EXPECT_EQ(x[static_cast<size_t>(t)], logits[static_cast<size_t>(t)]);
  SamplerOutput out;
  ASSERT_TRUE(cpu_sample(logits.data(), 10, build({row}), &out).ok());
  EXPECT_EQ(out.token_ids[0], 7);

  row.output = {1, 1, 1};  // reached: nothing banned
  EXPECT_EQ(processed(logits, row), logits);
  // ignore_eos: EOS is not banned (it does not stop the choice), stop ids still are.
  row.output = {1};
  row.params.ignore_eos = true;
  x = processed(logits, row);
  EXPECT_EQ(x[2], 10.0f);
  EXPECT_EQ(x[5], -kInf);
}

TEST(CpuSampler, RepetitionPenaltyOncePerDistinctPromptOrOutputToken) {
  std::vector<float> logits = {2.0f, -2.0f, 3.0f, -0.5f, 1.0f, 0.0f, 4.0f};
  RowSpec row;
  row.params.temperature = 0.0;
  row.params.repetition_penalty = 2.0;
  row.prompt = {0, 1, 1, 5};
  row.output = {3, 0, 3, 3};
  const std::vector<float> x = processed(logits, row);
  EXPECT_EQ(x[0], 1.0f);   // positive: divided (once, though seen three times)
  EXPECT_EQ(x[1], -4.0f);  // negative: multiplied
  EXPECT_EQ(x[2], 3.0f);   // unseen
  EXPECT_EQ(x[3], -1.0f);
  EXPECT_EQ(x[4], 1.0f);
  EXPECT_EQ(x[5], 0.0f);  // zero stays zero
  EXPECT_EQ(x[6], 4.0f);
}

TEST(CpuSampler, FrequencyAndPresencePenaltiesUseOutputCountsOnly) {
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  RowSpec row;
  row.params.temperature = 0.0;
  row.params.frequency_penalty = 0.5;
  row.params.presence_penalty = 0.25;
  row.prompt = {4, 4, 4};  // prompt tokens are not penalised by these two
  row.output = {1, 3, 1, 1};
  const std::vector<float> x = processed(logits, row);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 1.0f - (0.5f * 3.0f + 0.25f));
  EXPECT_EQ(x[2], 1.0f);
  EXPECT_EQ(x[3], 1.0f - (0.5f * 1.0f + 0.25f));
  EXPECT_EQ(x[4], 1.0f);
}

TEST(CpuSampler, ProcessingOrderBiasThenPenaltyThenTemperature) {
  std::vector<float> logits = {1.0f, -1.0f, 0.5f};
  RowSpec row;
  row.params.temperature = 0.5;
  row.params.logit_bias = {{1, 3.0f}};  // -1 + 3 = 2 > 0: the penalty then divides
  row.params.repetition_penalty = 4.0;
  row.params.presence_penalty = 1.0;
  row.output = {1};
  const std::vector<float> x = processed(logits, row);
  EXPECT_EQ(x[0], 1.0f / 0.5f);
  EXPECT_EQ(x[1], ((-1.0f + 3.0f) / 4.0f - (0.0f * 1.0f + 1.0f)) / 0.5f);
  EXPECT_EQ(x[2], 0.5f / 0.5f);
}

// logprobs = log_softmax(processed logits) in double, ranks, and the top list order.
TEST(CpuSampler, LogprobsAreLogSoftmaxOfProcessedLogits) {
  const int64_t vocab = 300;
  std::vector<float> logits = random_logits(vocab, 7);
  logits[10] = logits[11] = 20.0f;  // a tie at the top: lower id first
  std::vector<RowSpec> rows(3);
  rows[0].params.temperature = 0.0;
  rows[0].params.logprobs = 5;
  rows[0].params.logit_bias = {{20, 2.0f}};
  rows[1].params.temperature = 0.8;
  rows[1].params.top_k = 3;  // truncation does not change the logprobs
  rows[1].params.logprobs = 2;
  rows[1].params.repetition_penalty = 1.3;
  rows[1].prompt = {10, 30};
  rows[1].seed = 5;
  rows[2].params.temperature = 1.0;  // no logprobs asked in this row
  const SamplingBatch batch = build(rows);
  EXPECT_EQ(batch.max_num_logprobs, 5);
  std::vector<float> all;
  for (int i = 0; i < 3; ++i) all.insert(all.end(), logits.begin(), logits.end());
  SamplerOutput out;
  ASSERT_TRUE(cpu_sample(all.data(), vocab, batch, &out).ok());
  ASSERT_EQ(out.logprobs.size(), 3u);
  ASSERT_EQ(out.top_token_ids.size(), 15u);
  for (int r = 0; r < 2; ++r) {
    const std::vector<float> x = processed(logits, rows[static_cast<size_t>(r)]);
    double m = *std::max_element(x.begin(), x.end()), sum = 0.0;
    for (float v : x) sum += std::exp(static_cast<double>(v) - m);
    const double lse = m + std::log(sum);
    const int32_t tok = out.token_ids[static_cast<size_t>(r)];
    EXPECT_NEAR(out.logprobs[static_cast<size_t>(r)], x[static_cast<size_t>(tok)] - lse, 1e-5);
    int32_t rank = 1;
    for (float v : x) rank += v > x[static_cast<size_t>(tok)] ? 1 : 0;
    EXPECT_EQ(out.ranks[static_cast<size_t>(r)], rank);
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return x[static_cast<size_t>(a)] > x[static_cast<size_t>(b)];
    });
    const int k = *rows[static_cast<size_t>(r)].params.logprobs;
    for (int i = 0; i < 5; ++i) {
      const size_t at = static_cast<size_t>(r * 5 + i);
      if (i < k) {
        EXPECT_EQ(out.top_token_ids[at], order[static_cast<size_t>(i)]) << "row " << r << " #" << i;
        EXPECT_NEAR(out.top_logprobs[at],
                    x[static_cast<size_t>(order[static_cast<size_t>(i)])] - lse, 1e-5);
      } else {
        EXPECT_EQ(out.top_token_ids[at], -1);
        EXPECT_EQ(out.top_logprobs[at], -kInf);
      }
    }
  }
  EXPECT_EQ(out.token_ids[0], 10);  // greedy: the tie goes to the lower id
  EXPECT_EQ(out.top_token_ids[0], 10);
  EXPECT_EQ(out.top_token_ids[1], 11);
  EXPECT_EQ(out.ranks[0], 1);
  EXPECT_EQ(out.ranks[2], 0);  // row without logprobs
}

// A seeded row's token depends only on (seed, step, logits): not on its position in the
// batch, the other rows, or the thread pool.
TEST(CpuSampler, SeededSamplingIsIndependentOfBatchComposition) {
  const int64_t vocab = 1000;
  const std::vector<float> logits = random_logits(vocab, 3, 1.0f);
  RowSpec target;
  target.params.temperature = 1.3;
  target.params.top_p = 0.9;
  target.params.top_k = 200;
  target.params.min_p = 0.01;
  target.seed = 0xdeadbeefcafeull;
  std::vector<int32_t> alone_tokens;
  for (uint32_t step = 0; step < 50; ++step) {
    target.step = step;
    SamplerOutput out;
    ASSERT_TRUE(cpu_sample(logits.data(), vocab, build({target}), &out).ok());
    alone_tokens.push_back(out.token_ids[0]);
  }
  // The draws vary with the step (a constant token would mean the counter is ignored).
  std::vector<int32_t> distinct = alone_tokens;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  EXPECT_GT(distinct.size(), 10u);

  ThreadPool pool(4);
  std::mt19937 rng(11);
  for (uint32_t step = 0; step < 50; ++step) {
    target.step = step;
    std::vector<RowSpec> rows;
    std::vector<float> all;
    const int others = static_cast<int>(rng() % 7);
    const int pos = static_cast<int>(rng() % static_cast<uint32_t>(others + 1));
    for (int i = 0; i <= others; ++i) {
      if (i == pos) {
        rows.push_back(target);
        all.insert(all.end(), logits.begin(), logits.end());
        continue;
      }
      RowSpec other;
      other.params.temperature = 0.5 + 0.1 * i;
      other.params.logprobs = i % 3;
      other.params.frequency_penalty = 0.3;
      other.output = {1, 2, 3};
      other.seed = rng();
      other.step = rng() % 100;
      rows.push_back(other);
      const std::vector<float> l = random_logits(vocab, rng());
      all.insert(all.end(), l.begin(), l.end());
    }
    SamplerOutput out;
    ASSERT_TRUE(cpu_sample(all.data(), vocab, build(rows), &out, &pool).ok());
    EXPECT_EQ(out.token_ids[static_cast<size_t>(pos)], alone_tokens[step]) << "step " << step;
  }
}

TEST(CpuSampler, DifferentSeedsDiffer) {
  const int64_t vocab = 500;
  const std::vector<float> logits = random_logits(vocab, 5, 0.5f);
  int same = 0;
  for (uint32_t step = 0; step < 40; ++step) {
    RowSpec a, b;
    a.params.temperature = b.params.temperature = 1.0;
    a.seed = 1;
    b.seed = 2;
    a.step = b.step = step;
    std::vector<float> two = logits;
    two.insert(two.end(), logits.begin(), logits.end());
    SamplerOutput out;
    ASSERT_TRUE(cpu_sample(two.data(), vocab, build({a, b}), &out).ok());
    same += out.token_ids[0] == out.token_ids[1] ? 1 : 0;
  }
  EXPECT_LT(same, 10);
}

TEST(CpuSampler, BannedTokensAreNeverSampled) {
  const int64_t vocab = 8;
  std::vector<float> logits(vocab, 0.0f);
  logits[0] = 5.0f;
  RowSpec row;
  row.params.temperature = 1.0;
  row.params.min_tokens = 1;
  row.eos = {0};
  for (uint32_t step = 0; step < 200; ++step) {
    row.seed = 17;
    row.step = step;
    SamplerOutput out;
    ASSERT_TRUE(cpu_sample(logits.data(), vocab, build({row}), &out).ok());
    EXPECT_NE(out.token_ids[0], 0);
  }
}

TEST(CpuSampler, BuilderFlagsAndPenaltyLists) {
  RowSpec greedy;
  greedy.params.temperature = 0.0;
  greedy.prompt = {1, 2};
  greedy.output = {3};
  EXPECT_TRUE(build({greedy, greedy}).all_greedy);
  const SamplingBatch plain = build({greedy});
  EXPECT_TRUE(plain.prompt_token_ids.empty());  // no penalties: no token lists
  EXPECT_TRUE(plain.output_token_ids.empty());
  RowSpec pen = greedy;
  pen.params.repetition_penalty = 1.1;
  const SamplingBatch b = build({greedy, pen});
  EXPECT_FALSE(b.all_greedy);
  EXPECT_EQ(b.prompt_tokens_indptr, (std::vector<int32_t>{0, 0, 2}));
  EXPECT_EQ(b.output_tokens_indptr, (std::vector<int32_t>{0, 0, 1}));
  RowSpec lp = greedy;
  lp.params.logprobs = 0;
  EXPECT_FALSE(build({lp}).all_greedy);
  EXPECT_EQ(build({lp}).max_num_logprobs, 0);
}

TEST(CpuSampler, RejectsMalformedBatches) {
  std::vector<float> logits(10, 0.0f);
  RowSpec row;
  SamplingBatch batch = build({row});
  SamplerOutput out;
  SamplingBatch bad = batch;
  bad.bias_indptr = {0, 1};
  bad.bias_token_ids = {10};
  bad.bias_values = {1.0f};
  EXPECT_EQ(cpu_sample(logits.data(), 10, bad, &out).code(), StatusCode::kInvalidArgument);
  bad = batch;
  bad.seed.clear();
  EXPECT_EQ(cpu_sample(logits.data(), 10, bad, &out).code(), StatusCode::kInvalidArgument);
  bad = batch;
  bad.banned_indptr = {0, 2};
  bad.banned_token_ids = {1};
  EXPECT_EQ(cpu_sample(logits.data(), 10, bad, &out).code(), StatusCode::kInvalidArgument);
  bad = batch;
  bad.num_logprobs = {3};
  EXPECT_EQ(cpu_sample(logits.data(), 10, bad, &out).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kite

namespace kite {
namespace {

// Grammar bitmasks (structured outputs): step 0 of the definition.
void set_mask(SamplingBatch* b, int64_t vocab, const std::vector<std::vector<int32_t>>& allowed) {
  b->bitmask_words = (vocab + 31) / 32;
  b->token_bitmask.assign(allowed.size() * static_cast<size_t>(b->bitmask_words), 0);
  b->has_bitmask.assign(allowed.size(), 0);
  for (size_t r = 0; r < allowed.size(); ++r) {
    if (allowed[r].empty()) continue;  // unconstrained row
    b->has_bitmask[r] = 1;
    for (int32_t t : allowed[r]) {
      b->token_bitmask[r * b->bitmask_words + (t >> 5)] |= static_cast<int32_t>(1u << (t & 31));
    }
  }
}

TEST(CpuSamplerMask, OnlyAllowedTokensAndMaskedLogprobs) {
  const int64_t vocab = 100;
  const std::vector<float> logits = random_logits(vocab, 5);
  RowSpec greedy, hot;
  greedy.params.temperature = 0;
  greedy.params.logprobs = 3;
  hot.params.temperature = 1.0;
  hot.seed = 9;
  std::vector<float> two_rows = logits;
  two_rows.insert(two_rows.end(), logits.begin(), logits.end());
  SamplingBatch b = build({greedy, hot});
  const std::vector<int32_t> allowed = {7, 40, 41, 99};
  set_mask(&b, vocab, {allowed, {}});
  SamplerOutput out;
  ASSERT_TRUE(cpu_sample(two_rows.data(), vocab, b, &out).ok());
  int32_t best = allowed[0];
  for (int32_t t : allowed) {
    if (logits[t] > logits[best]) best = t;
  }
  EXPECT_EQ(out.token_ids[0], best);
  // Logprobs are those of the masked distribution: the allowed tokens share all the mass.
  double mass = 0;
  for (int32_t t : allowed) mass += std::exp(logits[t] - logits[best]);
  EXPECT_NEAR(out.logprobs[0], -std::log(mass), 1e-5);
  EXPECT_EQ(out.ranks[0], 1);
  for (int k = 0; k < 3; ++k) {
    EXPECT_NE(std::find(allowed.begin(), allowed.end(), out.top_token_ids[k]), allowed.end());
  }
  // The unconstrained row samples as without masks.
  SamplingBatch plain = build({greedy, hot});
  SamplerOutput want;
  ASSERT_TRUE(cpu_sample(two_rows.data(), vocab, plain, &want).ok());
  EXPECT_EQ(out.token_ids[1], want.token_ids[1]);
  // Sampling (not greedy) stays inside the mask over many seeds.
  for (uint64_t seed = 0; seed < 200; ++seed) {
    RowSpec r;
    r.params.temperature = 1.5;
    r.seed = seed;
    SamplingBatch one = build({r});
    set_mask(&one, vocab, {allowed});
    ASSERT_TRUE(cpu_sample(logits.data(), vocab, one, &out).ok());
    EXPECT_NE(std::find(allowed.begin(), allowed.end(), out.token_ids[0]), allowed.end());
  }
}

TEST(CpuSamplerMask, NoFiniteAllowedTokenTakesTheLowestAllowed) {
  const int64_t vocab = 64;
  std::vector<float> logits = random_logits(vocab, 2);
  logits[33] = -kInf;
  logits[50] = -kInf;
  RowSpec row;
  row.params.temperature = 0;
  SamplingBatch b = build({row});
  set_mask(&b, vocab, {{50, 33}});
  SamplerOutput out;
  ASSERT_TRUE(cpu_sample(logits.data(), vocab, b, &out).ok());
  EXPECT_EQ(out.token_ids[0], 33);
}

TEST(CpuSamplerMask, RejectsMalformedMasks) {
  RowSpec row;
  SamplingBatch b = build({row});
  set_mask(&b, 64, {{1}});
  b.token_bitmask.pop_back();
  std::vector<float> logits(64, 0.f);
  SamplerOutput out;
  EXPECT_EQ(cpu_sample(logits.data(), 64, b, &out).code(), StatusCode::kInvalidArgument);
  set_mask(&b, 64, {{1}});
  b.has_bitmask.push_back(1);
  EXPECT_EQ(cpu_sample(logits.data(), 64, b, &out).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kite
