// CPU ops against naive float64 implementations written here, on random inputs of awkward sizes.
#include "backend/cpu/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <random>
#include <vector>

#include "checkpoint/dequant.h"
#include "core/thread_pool.h"

namespace kite::cpu {
namespace {

std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Weight storage of one dtype holding the given values (rounded to the dtype).
struct Weights {
  std::vector<float> f32;
  std::vector<uint16_t> half;
  std::vector<double> rounded;  // the values the op actually sees
  TensorView view;

  Weights(const std::vector<float>& values, DType dtype, int64_t rows, int64_t cols) {
    rounded.resize(values.size());
    if (dtype == DType::kF32) {
      f32 = values;
      for (size_t i = 0; i < values.size(); ++i) rounded[i] = values[i];
      view = TensorView(f32.data(), dtype, {rows, cols});
    } else {
      half.resize(values.size());
      for (size_t i = 0; i < values.size(); ++i) {
        if (dtype == DType::kBF16) {
          half[i] = f32_to_bf16(values[i]).bits;
          rounded[i] = bf16_to_f32(bf16_t{half[i]});
        } else {
          half[i] = f32_to_f16_bits(values[i]);
          rounded[i] = f16_to_f32_slow(half[i]);
        }
      }
      view = TensorView(half.data(), dtype, {rows, cols});
    }
  }
};

class LinearTest : public ::testing::TestWithParam<DType> {};

TEST_P(LinearTest, MatchesFloat64AcrossShapes) {
  const DType dtype = GetParam();
  ThreadPool pool(2);
  uint32_t seed = 1;
  for (int64_t m : {1, 2, 3, 4, 5, 9, 17}) {
    for (int64_t n : {1, 2, 7, 50}) {
      for (int64_t k : {1, 7, 8, 9, 16, 255, 257, 600}) {
        const auto xv = random_vec(static_cast<size_t>(m * k), seed++);
        Weights w(random_vec(static_cast<size_t>(n * k), seed++), dtype, n, k);
        const auto bias = random_vec(static_cast<size_t>(n), seed++);
        for (bool with_bias : {false, true}) {
          std::vector<float> y(static_cast<size_t>(m * n), -7.0f);
          linear(xv.data(), m, w.view, with_bias ? bias.data() : nullptr, y.data(), &pool);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double want = with_bias ? bias[j] : 0.0;
              double mag = 0;
              for (int64_t kk = 0; kk < k; ++kk) {
                const double p = xv[i * k + kk] * w.rounded[j * k + kk];
                want += p;
                mag += std::fabs(p);
              }
              ASSERT_NEAR(y[i * n + j], want, 1e-6 * (mag + 1))
                  << dtype_name(dtype) << " m=" << m << " n=" << n << " k=" << k << " at " << i
                  << "," << j;
            }
          }
        }
      }
    }
  }
}

// Every row of a GEMM equals the GEMV of that row alone, bit for bit, with or without threads:
// a token's result does not depend on the batch around it.
TEST_P(LinearTest, BatchAndThreadInvariant) {
  const DType dtype = GetParam();
  const int64_t m = 37, n = 131, k = 1000;
  const auto xv = random_vec(static_cast<size_t>(m * k), 11);
  Weights w(random_vec(static_cast<size_t>(n * k), 12), dtype, n, k);
  const auto bias = random_vec(static_cast<size_t>(n), 13);
  ThreadPool pool(3);
  std::vector<float> all(static_cast<size_t>(m * n));
  linear(xv.data(), m, w.view, bias.data(), all.data(), &pool);
  std::vector<float> all_inline(static_cast<size_t>(m * n));
  linear(xv.data(), m, w.view, bias.data(), all_inline.data(), nullptr);
  EXPECT_EQ(all, all_inline);
  for (int64_t i = 0; i < m; ++i) {
    std::vector<float> row(static_cast<size_t>(n));
    linear(xv.data() + i * k, 1, w.view, bias.data(), row.data(), nullptr);
    for (int64_t j = 0; j < n; ++j) ASSERT_EQ(row[j], all[i * n + j]) << i << "," << j;
  }
}

TEST_P(LinearTest, StridedInputAndOutput) {
  const DType dtype = GetParam();
  const int64_t m = 6, n = 10, k = 40, ldx = 50, ldy = 13;
  const auto xv = random_vec(static_cast<size_t>(m * ldx), 21);
  Weights w(random_vec(static_cast<size_t>(n * k), 22), dtype, n, k);
  std::vector<float> y(static_cast<size_t>(m * ldy), 123.0f);
  linear(xv.data(), m, ldx, w.view, nullptr, y.data(), ldy, nullptr);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ldy; ++j) {
      if (j >= n) {
        EXPECT_EQ(y[i * ldy + j], 123.0f);  // padding untouched
        continue;
      }
      double want = 0;
      for (int64_t kk = 0; kk < k; ++kk) want += xv[i * ldx + kk] * w.rounded[j * k + kk];
      EXPECT_NEAR(y[i * ldy + j], want, 1e-5);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LinearTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& param_info) {
                           return std::string(dtype_name(param_info.param));
                         });

// GGUF-quantized weights: linear over the blocks equals linear over the dequantized F32 matrix
// bit for bit (GEMV through Q8_0's in-register kernel or the F32 panels, GEMM through the
// panels), for k that ends mid k-chunk, with and without threads.
TEST(LinearQuantizedTest, EqualsLinearOverTheDequantizedMatrix) {
  ThreadPool pool(2);
  for (DType dtype :
       {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const DTypeInfo& info = dtype_info(dtype);
    for (int64_t k : {info.block_elems, 2 * info.block_elems, 256 + info.block_elems, 768}) {
      if (k % info.block_elems != 0) continue;
      for (int64_t n : {1, 2, 7, 50}) {
        // Random blocks with small F16 scales (d, and dmin where the type has one).
        std::mt19937 rng(static_cast<uint32_t>(k * 131 + n));
        std::vector<uint8_t> bytes(static_cast<size_t>(dtype_bytes(dtype, n * k)));
        for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
        const uint16_t scale = f32_to_f16_bits(0.01f);
        const int64_t scale_at = dtype == DType::kQ6_K ? info.block_bytes - 2 : 0;
        const bool two_scales =
            dtype == DType::kQ4_1 || dtype == DType::kQ4_K || dtype == DType::kQ5_K;
        for (size_t b = 0; b < bytes.size(); b += static_cast<size_t>(info.block_bytes)) {
          std::memcpy(bytes.data() + b + scale_at, &scale, 2);
          if (two_scales) std::memcpy(bytes.data() + b + 2, &scale, 2);
        }
        const TensorView wq(bytes.data(), dtype, {n, k});
        std::vector<float> wf(static_cast<size_t>(n * k));
        dequantize_row(dtype, bytes.data(), wf.data(), n * k);
        const TensorView wf_view(wf.data(), DType::kF32, {n, k});
        const auto bias = random_vec(static_cast<size_t>(n), 5);
        for (int64_t m : {1, 2, 3, 4, 5, 9}) {
          const auto xv = random_vec(static_cast<size_t>(m * k), static_cast<uint32_t>(m + k));
          std::vector<float> want(static_cast<size_t>(m * n)), got(want.size()), got1(want.size());
          linear(xv.data(), m, wf_view, bias.data(), want.data(), nullptr);
          linear(xv.data(), m, wq, bias.data(), got.data(), &pool);
          linear(xv.data(), m, wq, bias.data(), got1.data(), nullptr);
          ASSERT_EQ(got, want) << dtype_name(dtype) << " m=" << m << " n=" << n << " k=" << k;
          ASSERT_EQ(got1, want) << dtype_name(dtype) << " m=" << m << " n=" << n << " k=" << k;
        }
      }
    }
  }
}

TEST(EmbeddingTest, AllDtypes) {
  const int64_t vocab = 11, hidden = 19;
  const auto values = random_vec(static_cast<size_t>(vocab * hidden), 3);
  const std::vector<int32_t> ids = {0, 10, 3, 3, 7};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    Weights w(values, dtype, vocab, hidden);
    std::vector<float> out(ids.size() * hidden);
    embedding(w.view, ids.data(), static_cast<int64_t>(ids.size()), out.data(), nullptr);
    for (size_t t = 0; t < ids.size(); ++t) {
      for (int64_t j = 0; j < hidden; ++j) {
        EXPECT_EQ(out[t * hidden + j], static_cast<float>(w.rounded[ids[t] * hidden + j]));
      }
    }
  }
}

double ref_inv_rms(const float* x, int64_t d, double eps) {
  double ss = 0;
  for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(x[j]) * x[j];
  return 1.0 / std::sqrt(ss / d + eps);
}

TEST(RmsNormTest, PlainAndFused) {
  ThreadPool pool(2);
  for (int64_t d : {1, 7, 8, 64, 100, 4096}) {
    const int64_t n = 5;
    const auto x = random_vec(static_cast<size_t>(n * d), 4, -3, 3);
    const auto res = random_vec(static_cast<size_t>(n * d), 5, -3, 3);
    const auto w = random_vec(static_cast<size_t>(d), 6, 0.5, 1.5);
    const float eps = 1e-5f;
    std::vector<float> out(x.size());
    rms_norm(x.data(), w.data(), n, d, eps, out.data(), &pool);
    for (int64_t i = 0; i < n; ++i) {
      const double s = ref_inv_rms(x.data() + i * d, d, eps);
      for (int64_t j = 0; j < d; ++j) {
        EXPECT_NEAR(out[i * d + j], x[i * d + j] * s * w[j],
                    2e-6 * (1 + std::fabs(out[i * d + j])));
      }
    }
    std::vector<float> residual = res;
    std::vector<float> out2(x.size());
    add_rms_norm(residual.data(), x.data(), w.data(), n, d, eps, out2.data(), &pool);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(residual[i], res[i] + x[i]);
    std::vector<float> out3(x.size());
    rms_norm(residual.data(), w.data(), n, d, eps, out3.data(), nullptr);
    EXPECT_EQ(out2, out3);
  }
}

TEST(RmsNormTest, PerHeadInPlaceWithStride) {
  const int64_t n = 3, heads = 4, hd = 16, stride = heads * hd + 10;
  auto x = random_vec(static_cast<size_t>(n * stride), 7, -2, 2);
  const auto orig = x;
  const auto w = random_vec(static_cast<size_t>(hd), 8, 0.5, 1.5);
  head_rms_norm(x.data(), n, stride, heads, hd, w.data(), 1e-6f, nullptr);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* src = orig.data() + i * stride + h * hd;
      const double s = ref_inv_rms(src, hd, 1e-6);
      for (int64_t j = 0; j < hd; ++j) {
        EXPECT_NEAR(x[i * stride + h * hd + j], src[j] * s * w[j], 1e-5);
      }
    }
    for (int64_t j = heads * hd; j < stride; ++j)
      EXPECT_EQ(x[i * stride + j], orig[i * stride + j]);
  }
}

TEST(RopeTest, InvFreqPlain) {
  const auto inv = rope_inv_freq(8, 10000.0, RopeScaling{});
  ASSERT_EQ(inv.size(), 4u);
  EXPECT_DOUBLE_EQ(inv[0], 1.0);
  EXPECT_DOUBLE_EQ(inv[1], std::pow(10000.0, -0.25));
  EXPECT_DOUBLE_EQ(inv[3], std::pow(10000.0, -0.75));
  RopeScaling lin;
  lin.type = RopeScaling::Type::kLinear;
  lin.factor = 4;
  EXPECT_DOUBLE_EQ(rope_inv_freq(8, 10000.0, lin)[1], std::pow(10000.0, -0.25) / 4);
  const float factors[4] = {1, 2, 4, 8};
  EXPECT_DOUBLE_EQ(rope_inv_freq(8, 10000.0, RopeScaling{}, factors)[3],
                   std::pow(10000.0, -0.75) / 8);
}

// Llama 3.1's scaling (factor 8, low 1, high 4, original 8192, theta 500000, dim 128): high
// frequencies (wavelength < 2048) are kept, low ones (wavelength > 8192) divided by 8, and the
// band between blends linearly in 8192 / wavelength.
TEST(RopeTest, InvFreqLlama3) {
  RopeScaling s;
  s.type = RopeScaling::Type::kLlama3;
  s.factor = 8;
  s.low_freq_factor = 1;
  s.high_freq_factor = 4;
  s.original_max_position_embeddings = 8192;
  const auto base = rope_inv_freq(128, 500000.0, RopeScaling{});
  const auto inv = rope_inv_freq(128, 500000.0, s);
  int kept = 0, divided = 0, blended = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    const double wavelen = 2 * std::numbers::pi / base[i];
    if (wavelen < 2048) {
      EXPECT_DOUBLE_EQ(inv[i], base[i]);
      ++kept;
    } else if (wavelen > 8192) {
      EXPECT_DOUBLE_EQ(inv[i], base[i] / 8);
      ++divided;
    } else {
      const double smooth = (8192 / wavelen - 1) / 3;
      EXPECT_NEAR(inv[i], (1 - smooth) * base[i] / 8 + smooth * base[i], 1e-15);
      EXPECT_LT(inv[i], base[i]);
      EXPECT_GT(inv[i], base[i] / 8);
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
}

TEST(RopeTest, RotateHalfMatchesFormula) {
  ThreadPool pool(2);
  const int64_t n = 9, heads = 3, hd = 16, stride = heads * hd + 5;
  auto x = random_vec(static_cast<size_t>(n * stride), 9);
  const auto orig = x;
  std::vector<int32_t> pos = {0, 1, 2, 7, 100, 511, 4095, 8191, 70000};
  const auto inv = rope_inv_freq(hd, 10000.0, RopeScaling{});
  rope_neox(x.data(), n, stride, heads, hd, pos.data(), inv.data(), &pool);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* src = orig.data() + t * stride + h * hd;
      const float* got = x.data() + t * stride + h * hd;
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = pos[t] * inv[i];
        EXPECT_NEAR(got[i], src[i] * std::cos(a) - src[i + hd / 2] * std::sin(a), 1e-6);
        EXPECT_NEAR(got[i + hd / 2], src[i + hd / 2] * std::cos(a) + src[i] * std::sin(a), 1e-6);
      }
    }
    for (int64_t j = heads * hd; j < stride; ++j)
      EXPECT_EQ(x[t * stride + j], orig[t * stride + j]);
  }
  // Position 0 is the identity.
  EXPECT_EQ(x[0], orig[0]);
}

TEST(SiluMulTest, Formula) {
  const int64_t n = 4, inter = 37;
  const auto gu = random_vec(static_cast<size_t>(n * 2 * inter), 10, -8, 8);
  std::vector<float> out(static_cast<size_t>(n * inter));
  silu_mul(gu.data(), n, inter, out.data(), nullptr);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < inter; ++j) {
      const double g = gu[i * 2 * inter + j];
      const double u = gu[i * 2 * inter + inter + j];
      EXPECT_NEAR(out[i * inter + j], g / (1 + std::exp(-g)) * u, 1e-5);
    }
  }
}

TEST(RopeTest, PartialRotaryWithAttentionFactorAndLongRope) {
  // Phi-4-mini style: 12 of 16 dims rotated, cos/sin scaled by LongRoPE's attention factor; the
  // last 4 dims of each head pass through unscaled.
  const int64_t n = 3, heads = 2, hd = 16, rot = 12;
  auto x = random_vec(static_cast<size_t>(n * heads * hd), 11);
  const auto orig = x;
  std::vector<int32_t> pos = {0, 5, 300};
  RopeScaling rs;
  rs.type = RopeScaling::Type::kLongRope;
  rs.short_factor = {1.0, 1.5, 2.0, 1.0, 1.0, 3.0};
  rs.long_factor = {2.0, 4.0, 8.0, 16.0, 32.0, 64.0};
  const auto inv = rope_inv_freq(rot, 10000.0, rs);
  const auto inv_long = rope_inv_freq_long(rot, 10000.0, rs);
  for (int64_t i = 0; i < rot / 2; ++i) {
    const double base = std::pow(10000.0, -2.0 * static_cast<double>(i) / rot);
    EXPECT_DOUBLE_EQ(inv[i], base / rs.short_factor[i]);
    EXPECT_DOUBLE_EQ(inv_long[i], base / rs.long_factor[i]);
  }
  const float factor = 1.25f;
  rope_neox(x.data(), n, heads * hd, heads, hd, pos.data(), inv.data(), nullptr, rot, factor);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* src = orig.data() + (t * heads + h) * hd;
      const float* got = x.data() + (t * heads + h) * hd;
      for (int64_t i = 0; i < rot / 2; ++i) {
        const double a = pos[t] * inv[i];
        const double c = factor * std::cos(a), sn = factor * std::sin(a);
        EXPECT_NEAR(got[i], src[i] * c - src[i + rot / 2] * sn, 1e-5);
        EXPECT_NEAR(got[i + rot / 2], src[i + rot / 2] * c + src[i] * sn, 1e-5);
      }
      for (int64_t j = rot; j < hd; ++j) EXPECT_EQ(got[j], src[j]);
    }
  }
}

TEST(GeluTanhMulTest, Formula) {
  const int64_t n = 3, inter = 29;
  const auto gu = random_vec(static_cast<size_t>(n * 2 * inter), 12, -6, 6);
  std::vector<float> out(static_cast<size_t>(n * inter));
  gelu_tanh_mul(gu.data(), n, inter, out.data(), nullptr);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < inter; ++j) {
      const double g = gu[i * 2 * inter + j];
      const double u = gu[i * 2 * inter + inter + j];
      const double gelu =
          0.5 * g * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (g + 0.044715 * g * g * g)));
      EXPECT_NEAR(out[i * inter + j], gelu * u, 1e-5);
    }
  }
}

TEST(SoftcapTest, BendsLargeValuesInPlace) {
  std::vector<float> x = {0.f, 1.f, -3.f, 30.f, 1000.f, -1000.f};
  const std::vector<float> orig = x;
  softcap(x.data(), static_cast<int64_t>(x.size()), 30.f, x.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], 30.0 * std::tanh(orig[i] / 30.0), 1e-4);
  EXPECT_NEAR(x[4], 30.f, 1e-4);
}

TEST(KvCacheWriteTest, WritesSlotsAndSkipsPadding) {
  const int64_t kv_dim = 6, slots = 8;
  std::vector<float> k(3 * 10), v(3 * 12);
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i);
  for (size_t i = 0; i < v.size(); ++i) v[i] = -static_cast<float>(i);
  std::vector<float> kc(static_cast<size_t>(slots * kv_dim), 0), vc(kc.size(), 0);
  const int32_t slot_mapping[3] = {5, -1, 0};
  kv_cache_write(k.data(), 10, v.data(), 12, 3, kv_dim, slot_mapping, slots, kc.data(), vc.data());
  for (int64_t j = 0; j < kv_dim; ++j) {
    EXPECT_EQ(kc[5 * kv_dim + j], k[j]);
    EXPECT_EQ(vc[5 * kv_dim + j], v[j]);
    EXPECT_EQ(kc[0 * kv_dim + j], k[20 + j]);
    EXPECT_EQ(vc[0 * kv_dim + j], v[24 + j]);
    EXPECT_EQ(kc[1 * kv_dim + j], 0.0f);
  }
}

TEST(SoftmaxTest, SoftmaxLogSoftmaxArgmax) {
  const std::vector<float> x = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 1000.0f, 999.0f, -1000.0f};
  std::vector<float> p(x.size()), lp(x.size());
  softmax(x.data(), 2, 4, p.data());
  log_softmax(x.data(), 2, 4, lp.data());
  for (int row = 0; row < 2; ++row) {
    double mx = -1e300, sum = 0;
    for (int j = 0; j < 4; ++j) mx = std::max(mx, static_cast<double>(x[row * 4 + j]));
    for (int j = 0; j < 4; ++j) sum += std::exp(x[row * 4 + j] - mx);
    for (int j = 0; j < 4; ++j) {
      const double want_lp = x[row * 4 + j] - mx - std::log(sum);
      EXPECT_NEAR(lp[row * 4 + j], want_lp, 1e-6 * (1 + std::fabs(want_lp)));  // F32 ulps
      EXPECT_NEAR(p[row * 4 + j], std::exp(want_lp), 1e-6);
    }
  }
  EXPECT_EQ(argmax(x.data(), 4), 1);  // tie between 1 and 3: the lowest index
  EXPECT_EQ(argmax(x.data() + 4, 4), 1);
  const float with_nan[3] = {std::nanf(""), -5.0f, -4.0f};
  EXPECT_EQ(argmax(with_nan, 3), 2);
  const float all_neg_inf[2] = {-INFINITY, -INFINITY};
  EXPECT_EQ(argmax(all_neg_inf, 2), 0);
}

}  // namespace
}  // namespace kite::cpu
