// Philox4x32-10 against Random123's published known-answer vectors (tests/kat_vectors, the
// three "philox4x32 10" lines: counter[4] key[2] -> output[4]), and the uniform/exponential
// draws built on it.
#include "sampling/philox.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace kite {
namespace {

struct Kat {
  Philox4x32Counter ctr;
  Philox4x32Key key;
  uint32_t expected[4];
};

TEST(Philox, Random123KnownAnswers) {
  const Kat kats[] = {
      {{{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}},
       {{0x00000000u, 0x00000000u}},
       {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       {{0xffffffffu, 0xffffffffu}},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       {{0xa4093822u, 0x299f31d0u}},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    const Philox4x32Counter out = philox4x32_10(k.ctr, k.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], k.expected[i]) << "word " << i;
  }
}

TEST(Philox, SamplingCounterLayout) {
  // sampling_block_bits is philox4x32_10 with counter (step, block, 0, 0) and the seed's low
  // word first in the key.
  const uint64_t seed = 0x299f31d0a4093822ull;
  const Philox4x32Counter a = sampling_block_bits(seed, 7, 11);
  const Philox4x32Counter b = philox4x32_10(Philox4x32Counter{{7u, 11u, 0u, 0u}},
                                            Philox4x32Key{{0xa4093822u, 0x299f31d0u}});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a.v[i], b.v[i]);
}

TEST(Philox, UniformIsOpenInterval) {
  EXPECT_EQ(uniform_open01(0u), std::ldexp(1.0f, -24));
  EXPECT_EQ(uniform_open01(0xffffffffu), 1.0f - std::ldexp(1.0f, -24));
  EXPECT_LT(uniform_open01(0xffffffffu), 1.0f);
  EXPECT_TRUE(std::isfinite(race_key_from_uniform(uniform_open01(0u))));
  EXPECT_TRUE(std::isfinite(race_key_from_uniform(uniform_open01(0xffffffffu))));
}

// 64 equal bins of 2^20 uniforms from consecutive counters: chi-square with 63 degrees of
// freedom. The critical value at p = 1e-6 is about 125 (Wilson-Hilferty); a generator with a
// broken lane or counter would be far above it.
TEST(Philox, UniformsAreUniform) {
  constexpr int kBins = 64;
  constexpr int kDraws = 1 << 20;
  std::vector<int64_t> counts(kBins, 0);
  double sum = 0.0;
  for (uint32_t block = 0; block < kDraws / 4; ++block) {
    const Philox4x32Counter bits = sampling_block_bits(12345, 3, block);
    for (uint32_t w : bits.v) {
      const float u = uniform_open01(w);
      ++counts[static_cast<size_t>(u * kBins)];
      sum += u;
    }
  }
  const double expected = static_cast<double>(kDraws) / kBins;
  double chi2 = 0.0;
  for (int64_t c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 125.0);
  // Mean 1/2 with standard error sqrt(1/12 / n) ~ 2.8e-4; allow 6 standard errors.
  EXPECT_NEAR(sum / kDraws, 0.5, 6 * std::sqrt(1.0 / 12.0 / kDraws));
}

// The race key -log(-log U) is standard Gumbel: mean = Euler's gamma, variance pi^2 / 6.
TEST(Philox, RaceKeyIsGumbel) {
  constexpr int kDraws = 1 << 18;
  double sum = 0.0;
  for (uint32_t block = 0; block < kDraws / 4; ++block) {
    const Philox4x32Counter bits = sampling_block_bits(99, block, 0);
    for (uint32_t w : bits.v) sum += race_key_from_uniform(uniform_open01(w));
  }
  const double sigma = std::sqrt(M_PI * M_PI / 6.0 / kDraws);
  EXPECT_NEAR(sum / kDraws, 0.57721566490153286, 6 * sigma);
}

}  // namespace
}  // namespace kite
