// Element-wise, normalization, RoPE/KV-write, activation and linear kernels against the CPU
// reference ops (backend/cpu/ops.h) on random inputs of awkward sizes. Bounds: see
// gpu_test_util.h (each test names how many bf16 roundings its kernel adds).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/activation.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/norm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/step_profiler.h"
#include "core/thread_pool.h"
#include "gpu_test_util.h"

namespace kite::cuda::test {
namespace {

ThreadPool& pool() {
  static ThreadPool p(std::max(1u, std::thread::hardware_concurrency()));
  return p;
}

TEST(CudaEmbedding, CopiesRowsExactly) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(1);
  for (int hidden : {4096, 77, 16}) {
    const int vocab = 1003, n = 17;
    auto table = random_bf16(static_cast<size_t>(vocab) * hidden, rng);
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
    ids[0] = 0;
    ids[1] = vocab - 1;
    DeviceArray<uint16_t> d_table(table), d_out(static_cast<size_t>(n) * hidden);
    DeviceArray<int32_t> d_ids(ids);
    d_out.poison();
    EmbeddingParams p{d_ids.get(), d_table.get(), d_out.get(), n, hidden, vocab};
    embedding(p, test_device(), nullptr);
    const auto got = d_out.download();
    std::vector<float> ref(got.size());
    cpu::embedding(TensorView(table.data(), DType::kBF16, {vocab, hidden}), ids.data(), n,
                   ref.data(), nullptr);
    EXPECT_EQ(to_float(got), ref) << "hidden " << hidden;
  }
}

// RMSNorm: 2 roundings (x * r, then weight * that). Fused add: the residual sum is rounded too
// (3 for the output, 1 for the residual written back).
TEST(CudaRmsNorm, PlainFusedAndGathered) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(2);
  for (int hidden : {4096, 5120, 896, 100, 7}) {
    for (int n : {1, 3, 17, 128}) {
      const float eps = 1e-5f;
      auto res = random_bf16(static_cast<size_t>(n) * hidden, rng, -2.f, 2.f);
      auto del = random_bf16(res.size(), rng, -2.f, 2.f);
      auto w = random_bf16(hidden, rng, 0.5f, 1.5f);
      const auto wf = to_float(w);
      // Plain.
      {
        DeviceArray<uint16_t> d_res(res), d_w(w), d_out(res.size());
        d_out.poison();
        RmsNormParams p;
        p.residual = d_res.get();
        p.weight = d_w.get();
        p.out = d_out.get();
        p.num_rows = n;
        p.hidden = hidden;
        p.eps = eps;
        rms_norm(p, test_device(), nullptr);
        std::vector<float> ref(res.size());
        cpu::rms_norm(to_float(res).data(), wf.data(), n, hidden, eps, ref.data(), nullptr);
        EXPECT_TRUE(close_bf16(d_out.download(), ref, 2)) << "plain " << hidden << "x" << n;
      }
      // Fused residual add, then gather of rows (final norm of the logits rows).
      {
        DeviceArray<uint16_t> d_res(res), d_del(del), d_w(w), d_out(res.size());
        d_out.poison();
        RmsNormParams p;
        p.residual = d_res.get();
        p.delta = d_del.get();
        p.weight = d_w.get();
        p.out = d_out.get();
        p.num_rows = n;
        p.hidden = hidden;
        p.eps = eps;
        rms_norm(p, test_device(), nullptr);
        std::vector<float> ref_res = to_float(res), ref(res.size());
        cpu::add_rms_norm(ref_res.data(), to_float(del).data(), wf.data(), n, hidden, eps,
                          ref.data(), nullptr);
        EXPECT_TRUE(close_bf16(d_out.download(), ref, 3)) << "fused " << hidden << "x" << n;
        EXPECT_TRUE(close_bf16(d_res.download(), ref_res, 1)) << "residual " << hidden;

        // Gather rows (reversed order, one repeated) from the original residual + delta.
        std::vector<int32_t> rows(static_cast<size_t>(n));
        std::iota(rows.rbegin(), rows.rend(), 0);
        rows[0] = 0;
        DeviceArray<uint16_t> d_res2(res), d_out2(res.size());
        DeviceArray<int32_t> d_rows(rows);
        d_out2.poison();
        p.residual = d_res2.get();
        p.row_indices = d_rows.get();
        p.out = d_out2.get();
        rms_norm(p, test_device(), nullptr);
        std::vector<float> ref_g(res.size());
        for (int i = 0; i < n; ++i) {
          std::copy_n(ref.begin() + static_cast<int64_t>(rows[i]) * hidden, hidden,
                      ref_g.begin() + static_cast<int64_t>(i) * hidden);
        }
        EXPECT_TRUE(close_bf16(d_out2.download(), ref_g, 3)) << "gather " << hidden;
        EXPECT_EQ(d_res2.download(), res) << "gather must not write the residual";
      }
    }
  }
}

struct RopeCase {
  int num_tokens, nq, nkv, head_dim, block_size;
  bool qk_norm;
  RopeScaling::Type scaling;
};

// RoPE bound, per element of a rotated pair (x1, x2) with n = |(x1, x2)| of the reference:
//   2^-8 * |ref_i|            the output's bf16 rounding
// + 2^-8 * 2 * n              with q/k norm: its two bf16 roundings of the inputs, mixed by the
//                             rotation
// + (|a| 2^-23 + 2^-22) * n   the angle: the device computes a = float(pos) * float(inv_freq)
//                             in float32 as transformers does (0.5 ulp for the product and for
//                             inv_freq's rounding), sincosf adds <= 2 ulp; the CPU op uses
//                             float64. At position 20000 this term alone is ~2.4e-3 * n.
// The relative L2 error must stay within (1 + 2 with q/k norm) * 2^-8 as for other kernels.
TEST(CudaRopeKvWrite, MatchesCpuNormRopeAndCacheWrite) {
  KITE_REQUIRE_GPU();
  const RopeCase cases[] = {
      {1, 32, 8, 128, 16, false, RopeScaling::Type::kLlama3},
      {17, 28, 4, 128, 16, false, RopeScaling::Type::kNone},
      {1000, 32, 8, 128, 16, true, RopeScaling::Type::kNone},
      {15, 8, 8, 64, 32, false, RopeScaling::Type::kLinear},
      {3, 16, 4, 256, 16, true, RopeScaling::Type::kNone},
      {128, 8, 4, 16, 16, false, RopeScaling::Type::kNone},
      {4, 8, 4, 8, 8, false, RopeScaling::Type::kNone},
  };
  std::mt19937 rng(3);
  for (const RopeCase& c : cases) {
    SCOPED_TRACE("tokens " + std::to_string(c.num_tokens) + " hd " + std::to_string(c.head_dim));
    ModelConfig cfg;
    cfg.head_dim = c.head_dim;
    cfg.rope_theta = 500000.0;
    cfg.rope_scaling.type = c.scaling;
    cfg.rope_scaling.factor = 8.0;
    const int T = c.num_tokens, hd = c.head_dim;
    const int qkv_dim = (c.nq + 2 * c.nkv) * hd, kv_dim = c.nkv * hd;
    auto qkv = random_bf16(static_cast<size_t>(T) * qkv_dim, rng, -2.f, 2.f);
    auto qn = random_bf16(hd, rng, 0.5f, 1.5f), kn = random_bf16(hd, rng, 0.5f, 1.5f);
    std::vector<int32_t> pos(T), slots(T);
    const int num_blocks = (T + c.block_size - 1) / c.block_size + 3;
    std::vector<int32_t> perm(static_cast<size_t>(num_blocks) * c.block_size);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int t = 0; t < T; ++t) {
      pos[t] = static_cast<int32_t>(rng() % 20000);
      slots[t] = (t % 5 == 4) ? -1 : perm[t];
    }
    const std::vector<float> inv = rope_inv_freq(cfg);
    const std::vector<double> inv_ref = cpu::rope_inv_freq(hd, cfg.rope_theta, cfg.rope_scaling);
    ASSERT_EQ(inv.size(), inv_ref.size());
    for (size_t i = 0; i < inv.size(); ++i) {
      EXPECT_NEAR(inv[i], inv_ref[i], 1e-7 * inv_ref[i]) << "inv_freq " << i;
    }

    const size_t cache_elems = static_cast<size_t>(num_blocks) * c.block_size * kv_dim;
    DeviceArray<uint16_t> d_qkv(qkv), d_qn(qn), d_kn(kn), d_kc(cache_elems), d_vc(cache_elems);
    DeviceArray<int32_t> d_pos(pos), d_slots(slots);
    DeviceArray<float> d_inv(inv);
    d_kc.poison();
    d_vc.poison();
    RopeKvWriteParams p;
    p.qkv = d_qkv.get();
    p.qkv_stride = qkv_dim;
    p.positions = d_pos.get();
    p.slot_mapping = d_slots.get();
    p.inv_freq = d_inv.get();
    p.q_norm = c.qk_norm ? d_qn.get() : nullptr;
    p.k_norm = c.qk_norm ? d_kn.get() : nullptr;
    p.k_cache = d_kc.get();
    p.v_cache = d_vc.get();
    p.num_tokens = T;
    p.num_q_heads = c.nq;
    p.num_kv_heads = c.nkv;
    p.head_dim = hd;
    p.block_size = c.block_size;
    p.eps = 1e-6f;
    rope_kv_write(p, test_device(), nullptr);

    std::vector<float> ref = to_float(qkv);
    if (c.qk_norm) {
      cpu::head_rms_norm(ref.data(), T, qkv_dim, c.nq, hd, to_float(qn).data(), 1e-6f, nullptr);
      cpu::head_rms_norm(ref.data() + c.nq * hd, T, qkv_dim, c.nkv, hd, to_float(kn).data(), 1e-6f,
                         nullptr);
    }
    cpu::rope_neox(ref.data(), T, qkv_dim, c.nq, hd, pos.data(), inv_ref.data(), nullptr);
    cpu::rope_neox(ref.data() + c.nq * hd, T, qkv_dim, c.nkv, hd, pos.data(), inv_ref.data(),
                   nullptr);
    const int roundings = c.qk_norm ? 3 : 1;
    // Per-element allowance of every qkv element (v elements: exact copies, allowance 0).
    const int half = hd / 2;
    std::vector<double> allowed(ref.size(), 0.0);
    for (int t = 0; t < T; ++t) {
      for (int h = 0; h < c.nq + c.nkv; ++h) {
        for (int i = 0; i < half; ++i) {
          const int64_t i1 = static_cast<int64_t>(t) * qkv_dim + h * hd + i, i2 = i1 + half;
          const double n = std::hypot(ref[i1], ref[i2]);
          const double angle = std::abs(static_cast<double>(pos[t]) * inv_ref[i]);
          const double common = kBf16Roundoff * (roundings - 1) * n +
                                (angle * std::ldexp(1.0, -23) + std::ldexp(1.0, -22)) * n;
          allowed[i1] = kBf16Roundoff * std::abs(ref[i1]) + common;
          allowed[i2] = kBf16Roundoff * std::abs(ref[i2]) + common;
        }
      }
    }
    const std::vector<float> got_qkv = to_float(d_qkv.download());
    EXPECT_TRUE(within_each(got_qkv, ref, allowed));
    EXPECT_LE(compare(got_qkv, ref).rel_l2, roundings * kBf16Roundoff);
    // Caches: the CPU layout is [slot, kv_head, d]; ours [block, kv_head, offset, d].
    const int64_t num_slots = static_cast<int64_t>(num_blocks) * c.block_size;
    std::vector<float> kref(cache_elems, 0.f), vref(cache_elems, 0.f);
    cpu::kv_cache_write(ref.data() + c.nq * hd, qkv_dim, ref.data() + (c.nq + c.nkv) * hd, qkv_dim,
                        T, kv_dim, slots.data(), num_slots, kref.data(), vref.data());
    const auto kgot = to_float(d_kc.download()), vgot = to_float(d_vc.download());
    std::vector<float> kg, kr, vg, vr;
    std::vector<double> ka;
    for (int t = 0; t < T; ++t) {
      if (slots[t] < 0) continue;
      const int64_t s = slots[t], blk = s / c.block_size, off = s % c.block_size;
      for (int h = 0; h < c.nkv; ++h) {
        for (int d = 0; d < hd; ++d) {
          const int64_t mine = ((blk * c.nkv + h) * c.block_size + off) * hd + d;
          const int64_t theirs = (s * c.nkv + h) * hd + d;
          kg.push_back(kgot[mine]);
          kr.push_back(kref[theirs]);
          vg.push_back(vgot[mine]);
          vr.push_back(vref[theirs]);
          ka.push_back(allowed[static_cast<int64_t>(t) * qkv_dim + (c.nq + h) * hd + d]);
        }
      }
    }
    EXPECT_TRUE(within_each(kg, kr, ka)) << "k cache";
    // The cache holds exactly the rotated k the kernel left in the qkv row.
    std::vector<float> k_in_row;
    for (int t = 0; t < T; ++t) {
      if (slots[t] < 0) continue;
      for (int h = 0; h < c.nkv; ++h) {
        for (int d = 0; d < hd; ++d) {
          k_in_row.push_back(got_qkv[static_cast<int64_t>(t) * qkv_dim + (c.nq + h) * hd + d]);
        }
      }
    }
    EXPECT_EQ(kg, k_in_row) << "k cache";
    EXPECT_EQ(vg, vr) << "v cache is a copy";
    // Slots of -1 were not written: count the untouched (still poisoned) elements.
    size_t untouched = 0;
    for (float v : vgot) untouched += std::isnan(v) ? 1 : 0;
    EXPECT_EQ(untouched, cache_elems - vg.size());
  }
}

// SiLU gate: 2 roundings (silu(g), then the product).
TEST(CudaSiluMul, MatchesCpu) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(4);
  for (int inter : {14336, 18944, 100}) {
    for (int n : {1, 17}) {
      auto gu = random_bf16(static_cast<size_t>(n) * 2 * inter, rng, -6.f, 6.f);
      DeviceArray<uint16_t> d_gu(gu), d_out(static_cast<size_t>(n) * inter);
      d_out.poison();
      silu_mul(SiluMulParams{d_gu.get(), d_out.get(), n, inter}, test_device(), nullptr);
      std::vector<float> ref(static_cast<size_t>(n) * inter);
      cpu::silu_mul(to_float(gu).data(), n, inter, ref.data(), nullptr);
      EXPECT_TRUE(close_bf16(d_out.download(), ref, 2)) << inter << "x" << n;
    }
  }
}

struct LinearCase {
  int n, k;
  bool bias, gated, f32;
};

// GEMV: 1 rounding of the bf16 output (none for f32 output: fp32 accumulation order only,
// bound 1e-5 relative); SiLU epilogue: gate and up rounded, silu rounded, product rounded = 4.
TEST(CudaGemv, AllRowCountsAndEpilogues) {
  KITE_REQUIRE_GPU();
  const LinearCase cases[] = {
      {1000, 4096, false, false, false},    {4099, 512, true, false, false},
      {2 * 1001, 4096, false, true, false}, {512, 14336, false, false, false},
      {32003, 256, false, false, true},     {6, 8, true, false, false},
  };
  std::mt19937 rng(5);
  for (const LinearCase& c : cases) {
    for (int m = 1; m <= kGemvMaxM; ++m) {
      SCOPED_TRACE("n " + std::to_string(c.n) + " k " + std::to_string(c.k) + " m " +
                   std::to_string(m));
      auto x = random_bf16(static_cast<size_t>(m) * c.k, rng);
      auto w = random_bf16(static_cast<size_t>(c.n) * c.k, rng, -0.05f, 0.05f);
      auto b = random_bf16(c.n, rng);
      const int n_out = c.gated ? c.n / 2 : c.n;
      DeviceArray<uint16_t> d_x(x), d_w(w), d_b(b);
      DeviceArray<uint16_t> d_y(c.f32 ? 0 : static_cast<size_t>(m) * n_out);
      DeviceArray<float> d_yf(c.f32 ? static_cast<size_t>(m) * n_out : 0);
      GemvParams p;
      p.x = d_x.get();
      p.w = d_w.get();
      p.bias = c.bias ? d_b.get() : nullptr;
      p.y = c.f32 ? static_cast<void*>(d_yf.get()) : static_cast<void*>(d_y.get());
      p.m = m;
      p.n = c.n;
      p.k = c.k;
      p.x_stride = c.k;
      p.y_stride = n_out;
      p.epilogue = c.gated ? GemvEpilogue::kSiluMul : GemvEpilogue::kNone;
      p.out_dtype = c.f32 ? DType::kF32 : DType::kBF16;
      ASSERT_TRUE(gemv_supported(p));
      if (c.f32)
        d_yf.poison();
      else
        d_y.poison();
      gemv(p, test_device(), nullptr);
      std::vector<float> y(static_cast<size_t>(m) * c.n), bf = to_float(b);
      cpu::linear(to_float(x).data(), m, c.k, TensorView(w.data(), DType::kBF16, {c.n, c.k}),
                  c.bias ? bf.data() : nullptr, y.data(), c.n, &pool());
      if (c.gated) {
        std::vector<float> ref(static_cast<size_t>(m) * n_out);
        cpu::silu_mul(y.data(), m, n_out, ref.data(), nullptr);
        EXPECT_TRUE(close_bf16(d_y.download(), ref, 4));
      } else if (c.f32) {
        EXPECT_TRUE(within(compare(d_yf.download(), y), 1e-5));
      } else {
        EXPECT_TRUE(close_bf16(d_y.download(), y, 1));
      }
    }
  }
}

// cuBLASLt GEMM: 1 rounding for bf16 output, fp32 order only for f32 output.
TEST(CudaGemm, CublasLtShapesBiasAndF32Output) {
  KITE_REQUIRE_GPU();
  auto runner = GemmRunner::create();
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  std::mt19937 rng(6);
  for (int m : {1, 3, 17, 128, 1000}) {
    for (int variant = 0; variant < 3; ++variant) {
      const int n = variant == 2 ? 32003 : 1536, k = variant == 2 ? 512 : 4096;
      const bool bias = variant == 1, f32 = variant == 2;
      SCOPED_TRACE("m " + std::to_string(m) + " variant " + std::to_string(variant));
      auto x = random_bf16(static_cast<size_t>(m) * k, rng);
      auto w = random_bf16(static_cast<size_t>(n) * k, rng, -0.05f, 0.05f);
      auto b = random_bf16(n, rng);
      DeviceArray<uint16_t> d_x(x), d_w(w), d_b(b);
      DeviceArray<uint16_t> d_y(f32 ? 0 : static_cast<size_t>(m) * n);
      DeviceArray<float> d_yf(f32 ? static_cast<size_t>(m) * n : 0);
      GemmArgs a;
      a.x = d_x.get();
      a.ldx = k;
      a.w = d_w.get();
      a.ldw = k;
      a.bias = bias ? d_b.get() : nullptr;
      a.y = f32 ? static_cast<void*>(d_yf.get()) : static_cast<void*>(d_y.get());
      a.ldy = n;
      a.m = m;
      a.n = n;
      a.k = k;
      a.out_dtype = f32 ? DType::kF32 : DType::kBF16;
      if (f32)
        d_yf.poison();
      else
        d_y.poison();
      const Status st = (*runner)->gemm(a, nullptr);
      ASSERT_TRUE(st.ok()) << st.to_string();
      std::vector<float> ref(static_cast<size_t>(m) * n), bf = to_float(b);
      cpu::linear(to_float(x).data(), m, k, TensorView(w.data(), DType::kBF16, {n, k}),
                  bias ? bf.data() : nullptr, ref.data(), n, &pool());
      if (f32) {
        EXPECT_TRUE(within(compare(d_yf.download(), ref), 1e-5));
      } else {
        EXPECT_TRUE(close_bf16(d_y.download(), ref, 1));
      }
    }
  }
  // One plan per distinct shape: 5 row counts x (plain, bias, f32 output).
  EXPECT_EQ((*runner)->num_plans(), 15u);
}

// The host halves of the plan cache and the step profiler (no device needed).
TEST(CudaGemm, RowBuckets) {
  EXPECT_EQ(GemmRunner::row_bucket(1), 1);
  EXPECT_EQ(GemmRunner::row_bucket(GemmRunner::kExactRowsMax), GemmRunner::kExactRowsMax);
  EXPECT_EQ(GemmRunner::row_bucket(129), 256);
  EXPECT_EQ(GemmRunner::row_bucket(256), 256);
  EXPECT_EQ(GemmRunner::row_bucket(1000), 1024);
  EXPECT_EQ(GemmRunner::row_bucket(1025), 2048);
  EXPECT_EQ(GemmRunner::row_bucket(8192), 8192);
}

TEST(StepProfiler, MedianProfileAndLabels) {
  EXPECT_EQ(linear_label("model.layers.3.mlp.down_proj"), "down_proj");
  EXPECT_EQ(linear_label("lm_head"), "lm_head");
  std::vector<StepProfile> steps(3);
  const double gemm[] = {3, 1, 2}, host[] = {0.5, 0.7, 0.6};
  for (size_t i = 0; i < 3; ++i) {
    steps[i].phase_ms[static_cast<size_t>(StepPhase::kGemm)] = gemm[i];
    steps[i].detail_ms["gemm/qkv_proj"] = gemm[i] / 2;
    steps[i].device_ms = gemm[i] + 1;
    steps[i].host_forward_ms = host[i];
  }
  const StepProfile m = median_profile(steps);
  EXPECT_EQ(m.phase_ms[static_cast<size_t>(StepPhase::kGemm)], 2);
  EXPECT_EQ(m.phase_ms[static_cast<size_t>(StepPhase::kAttention)], 0);
  EXPECT_EQ(m.detail_ms.at("gemm/qkv_proj"), 1);
  EXPECT_EQ(m.device_ms, 3);
  EXPECT_EQ(m.host_forward_ms, 0.6);
  EXPECT_STREQ(step_phase_name(StepPhase::kRopeKv), "rope_kv");
}

// Row counts above GemmRunner::kExactRowsMax share their power-of-two bucket's algorithm: one
// heuristic query per bucket, each other count of the bucket checked (cublasLtMatmulAlgoCheck)
// and served by it, every result still the product (1 bf16 rounding); a count per exact shape
// with the buckets off; the plan cache bounded.
TEST(CudaGemm, CublasLtRowBucketsShareAlgorithm) {
  KITE_REQUIRE_GPU();
  auto runner = GemmRunner::create();
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  GemmRunner& r = **runner;
  std::mt19937 rng(7);
  const int n = 1536, k = 4096, max_m = 1024;
  auto x = random_bf16(static_cast<size_t>(max_m) * k, rng);
  auto w = random_bf16(static_cast<size_t>(n) * k, rng, -0.05f, 0.05f);
  DeviceArray<uint16_t> d_x(x), d_w(w), d_y(static_cast<size_t>(max_m) * n);
  std::vector<float> ref_all(static_cast<size_t>(max_m) * n);
  cpu::linear(to_float(x).data(), max_m, k, TensorView(w.data(), DType::kBF16, {n, k}), nullptr,
              ref_all.data(), n, &pool());
  auto run = [&](int m) {
    SCOPED_TRACE("m " + std::to_string(m));
    GemmArgs a;
    a.x = d_x.get();
    a.ldx = k;
    a.w = d_w.get();
    a.ldw = k;
    a.y = d_y.get();
    a.ldy = n;
    a.m = m;
    a.n = n;
    a.k = k;
    d_y.poison();
    const Status st = r.gemm(a, nullptr);
    ASSERT_TRUE(st.ok()) << st.to_string();
    std::vector<uint16_t> y = d_y.download();
    y.resize(static_cast<size_t>(m) * n);
    EXPECT_TRUE(close_bf16(y, std::vector<float>(ref_all.begin(), ref_all.begin() + y.size()), 1));
  };
  ASSERT_TRUE(r.algo_buckets()) << "KITE_GEMM_ALGO_BUCKETS=0 in the environment";
  // Bucket 1024: four row counts, one heuristic query (plus one per count the check refuses).
  const std::vector<int> bucket_1024 = {600, 1000, 513, 1024};
  for (int m : bucket_1024) run(m);
  EXPECT_EQ(r.num_plans(), 4u);
  EXPECT_EQ(r.num_algos(), 1u);
  EXPECT_EQ(r.num_heuristic_queries() + r.num_algo_reuses(), 1 + 3);
  // cuBLASLt accepts the bucket's algorithm for its other row counts on the GPUs we run.
  EXPECT_EQ(r.num_algo_reuses(), 3);
  // Counts up to kExactRowsMax are buckets of their own.
  run(100);
  run(101);
  EXPECT_EQ(r.num_algos(), 3u);
  // Again: every plan cached, no query.
  const int64_t queries = r.num_heuristic_queries();
  for (int m : bucket_1024) run(m);
  EXPECT_EQ(r.num_heuristic_queries(), queries);
  // Buckets off: one query per exact shape.
  r.set_algo_buckets(false);
  EXPECT_EQ(r.num_plans(), 0u);
  for (int m : {600, 1000}) run(m);
  EXPECT_EQ(r.num_heuristic_queries(), queries + 2);
  EXPECT_EQ(r.num_algos(), 2u);
  r.set_algo_buckets(true);
  // Bounded: more shapes than kMaxPlans (k = 64, cheap) keep at most kMaxPlans plans.
  for (int m = 129; m < 129 + static_cast<int>(GemmRunner::kMaxPlans) + 10; ++m) {
    GemmArgs a;
    a.x = d_x.get();
    a.ldx = 64;
    a.w = d_w.get();
    a.ldw = 64;
    a.y = d_y.get();
    a.ldy = 64;
    a.m = m;
    a.n = 64;
    a.k = 64;
    ASSERT_TRUE(r.gemm(a, nullptr).ok()) << "m " << m;
    ASSERT_LE(r.num_plans(), GemmRunner::kMaxPlans);
  }
  run(1000);  // still correct after the cache started over
}

// The float32 compute mode's GEMM: F32 operands with full 24-bit mantissas, pure FP32
// arithmetic. Against a double reference the error is summation order only (k = 4096:
// <= ~2^-24 * sqrt(k) * a few); TF32 (10-bit mantissa inputs) or a BF16 down-conversion would be
// off by ~2^-11 .. 2^-8, so the 2^-16 bound tells them apart. With bias (the Qwen2 epilogue).
TEST(CudaGemm, PureFp32WithoutTf32) {
  KITE_REQUIRE_GPU();
  auto runner = GemmRunner::create();
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  std::mt19937 rng(16);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (int m : {1, 3, 17, 128}) {
    for (bool bias : {false, true}) {
      const int n = 1000, k = 4096;
      SCOPED_TRACE("m " + std::to_string(m) + (bias ? " bias" : ""));
      std::vector<float> x(static_cast<size_t>(m) * k), w(static_cast<size_t>(n) * k), b(n);
      for (auto& v : x) v = d(rng);
      for (auto& v : w) v = d(rng) * 0.05f;
      for (auto& v : b) v = d(rng);
      DeviceArray<float> d_x(x.size()), d_w(w.size()), d_b(b.size()),
          d_y(static_cast<size_t>(m) * n);
      d_x.upload(x);
      d_w.upload(w);
      d_b.upload(b);
      d_y.poison();
      GemmArgs a;
      a.x = d_x.get();
      a.ldx = k;
      a.w = d_w.get();
      a.ldw = k;
      a.bias = bias ? d_b.get() : nullptr;
      a.y = d_y.get();
      a.ldy = n;
      a.m = m;
      a.n = n;
      a.k = k;
      a.dtype = DType::kF32;
      a.out_dtype = DType::kF32;
      const Status st = (*runner)->gemm(a, nullptr);
      ASSERT_TRUE(st.ok()) << st.to_string();
      std::vector<float> ref(static_cast<size_t>(m) * n);
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < n; ++j) {
          double acc = bias ? b[j] : 0.0;
          for (int t = 0; t < k; ++t) {
            acc += static_cast<double>(x[static_cast<size_t>(i) * k + t]) *
                   w[static_cast<size_t>(j) * k + t];
          }
          ref[static_cast<size_t>(i) * n + j] = static_cast<float>(acc);
        }
      }
      EXPECT_TRUE(within(compare(d_y.download(), ref), 1.0 / 65536));
    }
  }
}

}  // namespace
}  // namespace kite::cuda::test

namespace kite::cuda::test {
namespace {

// The decode-path fusions of the GEMV, against the unfused CPU sequence.
// Bounds per output element (acc = the float32 product, A = sum_k |w_k| |x_k|, the same product
// over absolute values, which bounds how far input roundings can move acc):
//   norm prologue: 2^-8 |y| (output) + 2 * 2^-8 * A (x' = bf16(w * bf16(x * r)): two roundings
//                  of every input)
//   residual:      2^-8 |y| + 2^-8 |acc| (the product is rounded before the add)
//   RoPE + KV:     as the RoPE test, with the rotated inputs bf16(acc + bias) rounded once; with
//                  an FP8 cache, each cached byte is the CPU emulation's e4m3(v / scale) of the
//                  bf16 value the row holds, exactly.
TEST(CudaGemv, FusedNormResidualAndRopeEpilogues) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(8);
  const int K = 1024;
  for (int m : {1, 3, 8}) {
    SCOPED_TRACE("m " + std::to_string(m));
    // ---- norm prologue + residual epilogue ------------------------------------------------
    const int N = 1028;
    auto x = random_bf16(static_cast<size_t>(m) * K, rng, -2.f, 2.f);
    auto nw = random_bf16(K, rng, 0.5f, 1.5f);
    auto w = random_bf16(static_cast<size_t>(N) * K, rng, -0.05f, 0.05f);
    auto res = random_bf16(static_cast<size_t>(m) * N, rng, -1.f, 1.f);
    std::vector<float> xn(x.size()), acc(static_cast<size_t>(m) * N), abs_acc(acc.size());
    cpu::rms_norm(to_float(x).data(), to_float(nw).data(), m, K, 1e-5f, xn.data(), nullptr);
    const TensorView wv(w.data(), DType::kBF16, {N, K});
    cpu::linear(xn.data(), m, K, wv, nullptr, acc.data(), N, &pool());
    {
      std::vector<float> wabs = to_float(w), xabs = xn;
      for (auto& v : wabs) v = std::abs(v);
      for (auto& v : xabs) v = std::abs(v);
      cpu::linear(xabs.data(), m, K, TensorView(wabs.data(), DType::kF32, {N, K}), nullptr,
                  abs_acc.data(), N, &pool());
    }
    DeviceArray<uint16_t> d_x(x), d_nw(nw), d_w(w), d_y(acc.size()), d_r(res);
    GemvParams p;
    p.x = d_x.get();
    p.w = d_w.get();
    p.y = d_y.get();
    p.m = m;
    p.n = N;
    p.k = K;
    p.x_stride = K;
    p.y_stride = N;
    p.norm_weight = d_nw.get();
    p.norm_eps = 1e-5f;
    d_y.poison();
    gemv(p, test_device(), nullptr);
    std::vector<double> allowed(acc.size());
    for (size_t i = 0; i < acc.size(); ++i) {
      allowed[i] = kBf16Roundoff * (std::abs(acc[i]) + 2 * abs_acc[i]) + 1e-6 * abs_acc[i];
    }
    EXPECT_TRUE(within_each(to_float(d_y.download()), acc, allowed)) << "norm prologue";
    // Residual epilogue, in place (y aliases the residual), on the un-normalized x.
    std::vector<float> acc2(acc.size()), ref2(acc.size());
    cpu::linear(to_float(x).data(), m, K, wv, nullptr, acc2.data(), N, &pool());
    const auto rf = to_float(res);
    for (size_t i = 0; i < acc.size(); ++i) {
      ref2[i] = rf[i] + acc2[i];
      allowed[i] = kBf16Roundoff * (std::abs(ref2[i]) + std::abs(acc2[i])) + 1e-6;
    }
    p.norm_weight = nullptr;
    p.residual = d_r.get();
    p.y = d_r.get();
    gemv(p, test_device(), nullptr);
    EXPECT_TRUE(within_each(to_float(d_r.download()), ref2, allowed)) << "residual";

    // ---- RoPE + KV write epilogue -----------------------------------------------------------
    for (auto [hd, fp8] : {std::pair{128, false}, {16, false}, {128, true}, {16, true}}) {
      SCOPED_TRACE("hd " + std::to_string(hd) + (fp8 ? " fp8 cache" : ""));
      const int nq = 4, nkv = 2, bs = 16, qkv_dim = (nq + 2 * nkv) * hd, kv_dim = nkv * hd;
      auto wq = random_bf16(static_cast<size_t>(qkv_dim) * K, rng, -0.05f, 0.05f);
      auto bq = random_bf16(qkv_dim, rng, -0.5f, 0.5f);
      std::vector<int32_t> pos(m), slots(m);
      for (int i = 0; i < m; ++i) {
        pos[i] = static_cast<int32_t>(rng() % 5000);
        slots[i] = i == 1 ? -1 : 3 * bs + 5 * i;
      }
      ModelConfig cfg;
      cfg.head_dim = hd;
      cfg.rope_theta = 10000.0;
      const std::vector<float> inv = rope_inv_freq(cfg);
      const std::vector<double> inv_ref = cpu::rope_inv_freq(hd, cfg.rope_theta, cfg.rope_scaling);
      const int num_blocks = 8;
      const size_t cache_elems = static_cast<size_t>(num_blocks) * bs * kv_dim;
      DeviceArray<uint16_t> d_wq(wq), d_bq(bq), d_out(static_cast<size_t>(m) * qkv_dim),
          d_kc(cache_elems), d_vc(cache_elems);
      DeviceArray<int32_t> d_pos(pos), d_slots(slots);
      DeviceArray<float> d_inv(inv);
      DeviceArray<uint8_t> d_k8(std::vector<uint8_t>(cache_elems, 0xff)),
          d_v8(std::vector<uint8_t>(cache_elems, 0xff));
      d_out.poison();
      d_kc.poison();
      d_vc.poison();
      GemvParams g;
      g.x = d_x.get();
      g.w = d_wq.get();
      g.bias = d_bq.get();
      g.y = d_out.get();
      g.m = m;
      g.n = qkv_dim;
      g.k = K;
      g.x_stride = K;
      g.y_stride = qkv_dim;
      g.epilogue = GemvEpilogue::kRopeKv;
      g.rope = GemvRope{d_pos.get(), d_slots.get(), d_inv.get(), d_kc.get(), d_vc.get(),
                        nq,          nkv,           hd,          bs};
      const float k_scale = 0.3f, v_scale = 0.004f;  // v / v_scale saturates for some v
      if (fp8) {
        g.rope.k_cache = d_k8.get();
        g.rope.v_cache = d_v8.get();
        g.rope.kv_fp8 = true;
        g.rope.k_scale = k_scale;
        g.rope.v_scale = v_scale;
      }
      ASSERT_TRUE(gemv_supported(g));
      gemv(g, test_device(), nullptr);
      std::vector<float> ref(static_cast<size_t>(m) * qkv_dim);
      const auto bf = to_float(bq);
      cpu::linear(to_float(x).data(), m, K, TensorView(wq.data(), DType::kBF16, {qkv_dim, K}),
                  bf.data(), ref.data(), qkv_dim, &pool());
      cpu::rope_neox(ref.data(), m, qkv_dim, nq + nkv, hd, pos.data(), inv_ref.data(), nullptr);
      const auto got = to_float(d_out.download());
      std::vector<double> al(ref.size());
      const int half = hd / 2;
      for (int t = 0; t < m; ++t) {
        for (int h = 0; h < nq + 2 * nkv; ++h) {
          for (int i = 0; i < half; ++i) {
            const int64_t i1 = static_cast<int64_t>(t) * qkv_dim + h * hd + i, i2 = i1 + half;
            const double n = std::hypot(ref[i1], ref[i2]);
            const double angle = h < nq + nkv ? std::abs(pos[t] * inv_ref[i]) : 0.0;
            const double common =
                kBf16Roundoff * n + (angle * std::ldexp(1.0, -23) + std::ldexp(1.0, -22)) * n;
            al[i1] = kBf16Roundoff * std::abs(ref[i1]) + common;
            al[i2] = kBf16Roundoff * std::abs(ref[i2]) + common;
          }
        }
      }
      EXPECT_TRUE(within_each(got, ref, al)) << "rope epilogue";
      // The caches hold exactly the row's k and v at each written slot; untouched elsewhere.
      const auto out_bits = d_out.download();
      if (fp8) {
        const auto k8 = d_k8.download(), v8 = d_v8.download();
        const auto outf = to_float(out_bits);
        size_t written = 0;
        for (int t = 0; t < m; ++t) {
          if (slots[t] < 0) continue;
          const int64_t blk = slots[t] / bs, off = slots[t] % bs;
          for (int h = 0; h < nkv; ++h) {
            for (int d = 0; d < hd; ++d) {
              const int64_t c = ((blk * nkv + h) * bs + off) * hd + d;
              const int64_t row = static_cast<int64_t>(t) * qkv_dim;
              EXPECT_EQ(k8[c], cpu::quantize_kv_fp8(outf[row + (nq + h) * hd + d], k_scale));
              EXPECT_EQ(v8[c], cpu::quantize_kv_fp8(outf[row + (nq + nkv + h) * hd + d], v_scale));
              ++written;
            }
          }
        }
        size_t untouched = 0;
        for (uint8_t v : v8) untouched += v == 0xff ? 1 : 0;
        EXPECT_EQ(untouched, cache_elems - written);
        continue;
      }
      const auto kc = d_kc.download(), vc = d_vc.download();
      size_t written = 0;
      for (int t = 0; t < m; ++t) {
        if (slots[t] < 0) continue;
        const int64_t blk = slots[t] / bs, off = slots[t] % bs;
        for (int h = 0; h < nkv; ++h) {
          for (int d = 0; d < hd; ++d) {
            const int64_t c = ((blk * nkv + h) * bs + off) * hd + d;
            EXPECT_EQ(kc[c], out_bits[static_cast<int64_t>(t) * qkv_dim + (nq + h) * hd + d]);
            EXPECT_EQ(vc[c], out_bits[static_cast<int64_t>(t) * qkv_dim + (nq + nkv + h) * hd + d]);
            ++written;
          }
        }
      }
      size_t untouched = 0;
      for (uint16_t v : vc) untouched += v == 0xffff ? 1 : 0;
      EXPECT_EQ(untouched, cache_elems - written);
    }
  }
}

}  // namespace
}  // namespace kite::cuda::test
