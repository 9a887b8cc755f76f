// Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11), the
// counter-based generator behind kite's sampling, and the uniform/exponential draws that
// sampling_batch.h defines on top of it.
//
// Header-only and free of library calls besides logf, so a CUDA sampler can include it and
// draw the very same numbers on the device (KITE_HOST_DEVICE expands to __host__ __device__
// under nvcc).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KITE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KITE_HOST_DEVICE inline
#endif

namespace kite {

struct Philox4x32Counter {
  uint32_t v[4];
};
struct Philox4x32Key {
  uint32_t v[2];
};

namespace philox_detail {
constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kW1 = 0xBB67AE85u;  // sqrt(3) - 1

KITE_HOST_DEVICE void round(uint32_t c[4], uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  const uint32_t c1 = c[1], c3 = c[3];
  c[0] = hi1 ^ c1 ^ k0;
  c[1] = lo1;
  c[2] = hi0 ^ c3 ^ k1;
  c[3] = lo0;
}
}  // namespace philox_detail

// The Random123 philox4x32 function with 10 rounds (key bumped by the Weyl constants between
// rounds). Matches Random123's kat_vectors for "philox4x32 10".
KITE_HOST_DEVICE Philox4x32Counter philox4x32_10(Philox4x32Counter ctr, Philox4x32Key key) {
  uint32_t k0 = key.v[0], k1 = key.v[1];
  for (int i = 0; i < 10; ++i) {
    if (i > 0) {
      k0 += philox_detail::kW0;
      k1 += philox_detail::kW1;
    }
    philox_detail::round(ctr.v, k0, k1);
  }
  return ctr;
}

// The key of a sampling row: the 64-bit seed split into (low, high) words.
KITE_HOST_DEVICE Philox4x32Key sampling_key(uint64_t seed) {
  return Philox4x32Key{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}};
}

// The four raw words that cover tokens 4*block .. 4*block+3 at sampling step `step`:
// counter = (step, block, 0, 0); token t uses lane t % 4 of block t / 4.
KITE_HOST_DEVICE Philox4x32Counter sampling_block_bits(uint64_t seed, uint32_t step,
                                                       uint32_t block) {
  return philox4x32_10(Philox4x32Counter{{step, block, 0u, 0u}}, sampling_key(seed));
}

// A uniform float in the open interval (0, 1): the top 23 bits of `bits`, centred in their
// cell: U = (bits >> 9) * 2^-23 + 2^-24. Every value is exact in float32, the smallest is
// 2^-24 and the largest 1 - 2^-24, so -log(U) is never 0 or infinite.
KITE_HOST_DEVICE float uniform_open01(uint32_t bits) {
  return static_cast<float>(bits >> 9) * 1.1920928955078125e-07f  // 2^-23
         + 5.9604644775390625e-08f;                               // 2^-24
}

// The race key of one token: -log(E) with E = -log(U) ~ Exp(1), in float32. The sampled
// token is argmax over kept tokens of (processed_logit + race_key) — the Gumbel-max trick.
KITE_HOST_DEVICE float race_key_from_uniform(float u) { return -logf(-logf(u)); }

}  // namespace kite
