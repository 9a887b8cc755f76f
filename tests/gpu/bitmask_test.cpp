// Grammar bitmasks (structured outputs) on the GPU sampler: apply_token_bitmask against the
// definition, and GpuSampler with constrained rows against the CPU reference sampler — greedy
// (the argmax fast path), temperature, top-k/top-p, logprobs — on Llama-3's vocabulary size and
// an odd one. Every sampled token must be allowed by its row's mask; unconstrained rows in the
// same batch are untouched; a row whose allowed tokens are all -inf takes the lowest allowed one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cuda/sampling.h"
#include "gpu_test_util.h"
#include "sampling/cpu_sampler.h"
#include "sampling/sampling_batch_builder.h"

namespace kite::cuda::test {
namespace {

bool allowed(const std::vector<int32_t>& mask, int64_t words, int r, int64_t t) {
  return (static_cast<uint32_t>(mask[static_cast<size_t>(r * words + (t >> 5))]) >> (t & 31)) & 1u;
}

// A random mask per row: `density` of the tokens allowed (at least one).
std::vector<int32_t> random_masks(int rows, int64_t vocab, double density, std::mt19937* rng) {
  const int64_t words = (vocab + 31) / 32;
  std::vector<int32_t> m(static_cast<size_t>(rows * words), 0);
  std::bernoulli_distribution bit(density);
  for (int r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < vocab; ++t) {
      if (bit(*rng))
        m[static_cast<size_t>(r * words + (t >> 5))] |= static_cast<int32_t>(1u << (t & 31));
    }
    const int64_t forced = static_cast<int64_t>((*rng)() % vocab);
    m[static_cast<size_t>(r * words + (forced >> 5))] |= static_cast<int32_t>(1u << (forced & 31));
  }
  return m;
}

TEST(CudaBitmask, ApplyMatchesDefinition) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(7);
  for (int64_t vocab : {128256, 1001}) {
    const int rows = 5;
    const int64_t words = (vocab + 31) / 32;
    std::normal_distribution<float> nd(0.f, 2.f);
    std::vector<float> logits(static_cast<size_t>(rows * vocab));
    for (float& v : logits) v = nd(rng);
    std::vector<int32_t> masks = random_masks(2, vocab, 0.3, &rng);
    std::vector<int32_t> row_ids = {3, 1};  // mask 0 -> row 3, mask 1 -> row 1
    DeviceArray<float> d_logits(logits);
    DeviceArray<int32_t> d_masks(masks), d_rows(row_ids);
    apply_token_bitmask(d_logits.get(), vocab, d_masks.get(), words, d_rows.get(), 2, nullptr);
    std::vector<float> got = d_logits.download();
    for (int r = 0; r < rows; ++r) {
      const int m = r == 3 ? 0 : r == 1 ? 1 : -1;
      for (int64_t t = 0; t < vocab; ++t) {
        const float want = (m >= 0 && !allowed(masks, words, m, t))
                               ? -INFINITY
                               : logits[static_cast<size_t>(r * vocab + t)];
        ASSERT_EQ(got[static_cast<size_t>(r * vocab + t)], want) << "row " << r << " token " << t;
      }
    }
  }
}

void run_case(const SamplingParams& params, int64_t vocab, uint32_t seed, bool starve_row0) {
  SCOPED_TRACE("vocab " + std::to_string(vocab) + " temperature " +
               std::to_string(params.temperature));
  const int rows = 6;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  for (float& v : logits) v = nd(rng);
  SamplingBatchBuilder builder;
  builder.reset();
  const std::vector<int32_t> none;
  for (int r = 0; r < rows; ++r) {
    SamplingRow row;
    row.params = &params;
    row.seed = 99 + r;
    row.step = static_cast<uint32_t>(r);
    row.prompt_token_ids = none;
    row.output_token_ids = none;
    row.eos_token_ids = none;
    EXPECT_TRUE(builder.add_row(row).ok());
  }
  builder.finish();
  SamplingBatch& batch = builder.batch();
  batch.bitmask_words = (vocab + 31) / 32;
  batch.token_bitmask = random_masks(rows, vocab, 0.05, &rng);
  batch.has_bitmask = {1, 1, 0, 1, 0, 1};  // rows 2 and 4 unconstrained
  if (starve_row0) {  // every allowed token of row 0 at -inf: the lowest allowed one is taken
    for (int64_t t = 0; t < vocab; ++t) {
      if (allowed(batch.token_bitmask, batch.bitmask_words, 0, t))
        logits[static_cast<size_t>(t)] = -INFINITY;
    }
  }
  SamplerOutput want;
  ASSERT_TRUE(cpu_sample(logits.data(), vocab, batch, &want).ok());
  auto sampler = GpuSampler::create(rows, vocab);
  ASSERT_TRUE(sampler.ok()) << sampler.status().to_string();
  DeviceArray<float> d_logits(logits);
  SamplerOutput got;
  const Status st = (*sampler)->sample(d_logits.get(), rows, batch, &got, test_device(), nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  for (int r = 0; r < rows; ++r) {
    if (batch.has_bitmask[static_cast<size_t>(r)] != 0) {
      EXPECT_TRUE(allowed(batch.token_bitmask, batch.bitmask_words, r, got.token_ids[r]))
          << "row " << r << " sampled masked token " << got.token_ids[r];
    }
    EXPECT_EQ(got.token_ids[r], want.token_ids[r]) << "row " << r;
  }
  if (batch.max_num_logprobs >= 0) {
    EXPECT_EQ(got.top_token_ids, want.top_token_ids);
    for (int r = 0; r < rows; ++r) {
      if (got.token_ids[r] == want.token_ids[r] && std::isfinite(want.logprobs[r])) {
        EXPECT_NEAR(got.logprobs[r], want.logprobs[r], 1e-5) << "row " << r;
      }
    }
  }
}

TEST(CudaBitmask, SamplerMatchesCpuWithMasks) {
  KITE_REQUIRE_GPU();
  uint32_t seed = 1;
  for (int64_t vocab : {128256, 32000, 1001}) {
    SamplingParams greedy;
    greedy.temperature = 0;
    run_case(greedy, vocab, seed++, false);  // all_greedy fast path
    run_case(greedy, vocab, seed++, true);
    SamplingParams hot;
    hot.temperature = 0.8;
    hot.top_k = 50;
    run_case(hot, vocab, seed++, false);
    SamplingParams lp;
    lp.temperature = 0;
    lp.logprobs = 5;
    run_case(lp, vocab, seed++, false);
  }
}

}  // namespace
}  // namespace kite::cuda::test
