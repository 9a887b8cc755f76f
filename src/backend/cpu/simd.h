// Eight-lane F32 vector helpers for the CPU ops: AVX2 + FMA + F16C where the build targets
// x86-64-v3, and a portable scalar version elsewhere (same results up to FMA rounding).
#pragma once

#include <cstdint>
#include <cstring>

#include "core/dtype.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define KITE_CPU_AVX2 1
#endif

namespace kite::cpu::simd {

#ifdef KITE_CPU_AVX2

using V8 = __m256;
inline V8 zero() { return _mm256_setzero_ps(); }
inline V8 set1(float f) { return _mm256_set1_ps(f); }
inline V8 load(const float* p) { return _mm256_loadu_ps(p); }
inline V8 load(const bf16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline V8 load(const f16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// One F16 value as F32 (exact).
inline float f16_scalar(uint16_t bits) { return _cvtsh_ss(bits); }
// Eight int8 values as F32 (exact).
inline V8 load(const int8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
}
inline void store(float* p, V8 v) { _mm256_storeu_ps(p, v); }
inline V8 fmadd(V8 a, V8 b, V8 c) { return _mm256_fmadd_ps(a, b, c); }
inline V8 add(V8 a, V8 b) { return _mm256_add_ps(a, b); }
inline V8 mul(V8 a, V8 b) { return _mm256_mul_ps(a, b); }
inline float hsum(V8 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, s);
  s = _mm_add_ss(s, sh);
  return _mm_cvtss_f32(s);
}

#else

struct V8 {
  float v[8];
};
inline V8 zero() { return V8{}; }
inline V8 set1(float f) {
  V8 r;
  for (float& x : r.v) x = f;
  return r;
}
inline V8 load(const float* p) {
  V8 r;
  std::memcpy(r.v, p, sizeof(r.v));
  return r;
}
inline V8 load(const bf16_t* p) {
  V8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = bf16_to_f32(p[i]);
  return r;
}
inline V8 load(const f16_t* p) {
  V8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = f16_to_f32(p[i]);
  return r;
}
inline float f16_scalar(uint16_t bits) { return f16_to_f32_slow(bits); }
inline V8 load(const int8_t* p) {
  V8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = static_cast<float>(p[i]);
  return r;
}
inline void store(float* p, V8 v) { std::memcpy(p, v.v, sizeof(v.v)); }
inline V8 fmadd(V8 a, V8 b, V8 c) {
  for (int i = 0; i < 8; ++i) c.v[i] += a.v[i] * b.v[i];
  return c;
}
inline V8 add(V8 a, V8 b) {
  for (int i = 0; i < 8; ++i) a.v[i] += b.v[i];
  return a;
}
inline V8 mul(V8 a, V8 b) {
  for (int i = 0; i < 8; ++i) a.v[i] *= b.v[i];
  return a;
}
inline float hsum(V8 v) {
  return ((v.v[0] + v.v[4]) + (v.v[2] + v.v[6])) + ((v.v[1] + v.v[5]) + (v.v[3] + v.v[7]));
}

#endif

// Scalar conversion of one weight element.
inline float to_f32(float v) { return v; }
inline float to_f32(bf16_t v) { return bf16_to_f32(v); }
inline float to_f32(f16_t v) { return f16_to_f32(v); }

// sum_i a[i] * b[i] over n values (8-lane F32 accumulation, then the scalar tail).
template <typename T>
inline float dot(const float* a, const T* b, int64_t n) {
  V8 acc0 = zero();
  V8 acc1 = zero();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = fmadd(load(a + i), load(b + i), acc0);
    acc1 = fmadd(load(a + i + 8), load(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = fmadd(load(a + i), load(b + i), acc0);
  float s = hsum(add(acc0, acc1));
  for (; i < n; ++i) s += a[i] * to_f32(b[i]);
  return s;
}

// y[i] += a * x[i] over n values.
inline void axpy(float a, const float* x, float* y, int64_t n) {
  const V8 va = set1(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store(y + i, fmadd(va, load(x + i), load(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace kite::cpu::simd
