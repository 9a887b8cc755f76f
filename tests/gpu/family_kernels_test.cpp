// The kernels the Gemma 2/3, Phi-3 and mixture-of-experts families add, against the CPU
// reference ops (backend/cpu/ops.h, backend/cpu/moe.h) on awkward sizes: GeGLU, soft-capping,
// scaled embeddings, partial-rotary / LongRoPE RoPE, and the MoE route / permute / grouped GEMM /
// combine kernels (tokens 1, 7, 33 and a few hundred; 4 to 128 experts, top 2 to 8), the grouped
// GEMM on both of its multi-row kernels (CUDA-core and bf16 tensor-core tiles). Bounds:
// gpu_test_util.h (bf16: the number of roundings the kernel adds; f32: summation order only).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <span>
#include <tuple>
#include <vector>

#include "backend/cpu/moe.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/activation.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/moe.h"
#include "backend/cuda/rope.h"
#include "core/thread_pool.h"
#include "gpu_test_util.h"

namespace kite::cuda::test {
namespace {

ThreadPool& pool() {
  static ThreadPool p(std::max(1u, std::thread::hardware_concurrency()));
  return p;
}

std::vector<float> random_f32(size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// GeGLU: bf16 2 roundings (gelu(g), then the product); f32: the CPU's formula, tanhf vs
// std::tanh only (1e-6 relative).
TEST(CudaGeluTanhMul, MatchesCpu) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(101);
  for (int inter : {9216, 100, 7}) {
    for (int n : {1, 7, 33}) {
      SCOPED_TRACE(std::to_string(inter) + "x" + std::to_string(n));
      auto gu = random_bf16(static_cast<size_t>(n) * 2 * inter, rng, -6.f, 6.f);
      std::vector<float> ref(static_cast<size_t>(n) * inter);
      cpu::gelu_tanh_mul(to_float(gu).data(), n, inter, ref.data(), nullptr);
      DeviceArray<uint16_t> d_gu(gu), d_out(ref.size());
      d_out.poison();
      gelu_tanh_mul(SiluMulParams{d_gu.get(), d_out.get(), n, inter}, test_device(), nullptr);
      EXPECT_TRUE(close_bf16(d_out.download(), ref, 2));

      const std::vector<float> guf = to_float(gu);
      DeviceArray<float> f_gu(guf), f_out(ref.size());
      f_out.poison();
      gelu_tanh_mul(SiluMulParams{f_gu.get(), f_out.get(), n, inter, DType::kF32}, test_device(),
                    nullptr);
      EXPECT_TRUE(within(compare(f_out.download(), ref), 1e-6));
    }
  }
}

// Final-logit soft-capping, in place on F32 logits (1e-6 relative: tanhf vs std::tanh).
TEST(CudaSoftcap, MatchesCpu) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(102);
  for (int64_t n : {int64_t{1}, int64_t{7 * 96 + 3}, int64_t{33} * 256000}) {
    for (float cap : {3.f, 30.f}) {
      auto x = random_f32(static_cast<size_t>(n), rng, -100.f, 100.f);
      std::vector<float> ref(x.size());
      cpu::softcap(x.data(), n, cap, ref.data());
      DeviceArray<float> d(x);
      softcap_inplace(d.get(), n, cap, test_device(), nullptr);
      EXPECT_TRUE(within(compare(d.download(), ref), 1e-6)) << n << " cap " << cap;
    }
  }
}

// Gemma's scaled embeddings: each row times the (bf16-rounded) scale, rounded once — exactly the
// CPU's float product rounded to bf16; f32 exactly the CPU's product.
TEST(CudaEmbedding, ScaledRowsEqualTheCpu) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(103);
  for (int hidden : {48, 64, 3584}) {
    const int vocab = 1003, n = 33;
    const float scale = bf16_to_f32(f32_to_bf16(std::sqrt(static_cast<float>(hidden))));
    auto table = random_bf16(static_cast<size_t>(vocab) * hidden, rng);
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
    std::vector<float> ref(static_cast<size_t>(n) * hidden);
    cpu::embedding(TensorView(table.data(), DType::kBF16, {vocab, hidden}), ids.data(), n,
                   ref.data(), nullptr);
    for (float& v : ref) v *= scale;
    DeviceArray<int32_t> d_ids(ids);
    {
      DeviceArray<uint16_t> d_table(table), d_out(ref.size());
      d_out.poison();
      EmbeddingParams p{d_ids.get(), d_table.get(), d_out.get(), n, hidden, vocab};
      p.scale = scale;
      embedding(p, test_device(), nullptr);
      std::vector<float> want(ref.size());
      for (size_t i = 0; i < ref.size(); ++i) want[i] = bf16_to_f32(f32_to_bf16(ref[i]));
      EXPECT_EQ(to_float(d_out.download()), want) << "bf16 hidden " << hidden;
    }
    {
      DeviceArray<float> d_table(to_float(table)), d_out(ref.size());
      d_out.poison();
      EmbeddingParams p{d_ids.get(), d_table.get(), d_out.get(), n, hidden, vocab, DType::kF32};
      p.scale = scale;
      embedding(p, test_device(), nullptr);
      EXPECT_EQ(d_out.download(), ref) << "f32 hidden " << hidden;
    }
  }
}

// Partial rotary (Phi-3.5 / Phi-4-mini) and LongRoPE (per-sequence switch to the long factors
// past original_max_position_embeddings, cos/sin times the attention factor), with and without
// q/k norms, in the float32 mode (the CPU backend's arithmetic: 1e-6 relative) and bf16 (the
// rotation rounded once; q/k norms add two roundings).
TEST(CudaRope, PartialRotaryAndLongRopeMatchCpu) {
  KITE_REQUIRE_GPU();
  struct Case {
    int hd, rotary, nq, nkv;
    bool longrope, qk_norm;
    std::vector<int> q_lens, seq_lens;  // per sequence: this step's tokens, total length
  };
  const Case cases[] = {
      {16, 8, 4, 2, false, false, {1}, {1}},
      {16, 12, 4, 4, true, false, {7}, {7}},
      {16, 12, 4, 4, true, false, {4, 1, 2}, {21, 20, 19}},  // long, short at 20, short
      {128, 96, 8, 2, true, true, {33, 1}, {33, 4000}},
      {32, 32, 4, 1, false, true, {7, 1}, {12, 300}},
  };
  std::mt19937 rng(104);
  for (const Case& c : cases) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      SCOPED_TRACE("hd " + std::to_string(c.hd) + " rotary " + std::to_string(c.rotary) +
                   (c.longrope ? " longrope" : "") + (c.qk_norm ? " qk_norm" : "") + " " +
                   std::string(dtype_name(dtype)));
      RopeScaling rs;
      if (c.longrope) {
        rs.type = RopeScaling::Type::kLongRope;
        rs.original_max_position_embeddings = 20;
        for (int i = 0; i < c.rotary / 2; ++i) {
          rs.short_factor.push_back(1.0 + 0.5 * (i % 3));
          rs.long_factor.push_back(2.0 + 3.0 * (i % 5));
        }
        rs.attention_factor = 1.19;
      }
      const double theta = 10000.0;
      std::vector<int32_t> qsl{0}, pos;
      for (size_t s = 0; s < c.q_lens.size(); ++s) {
        for (int j = 0; j < c.q_lens[s]; ++j) pos.push_back(c.seq_lens[s] - c.q_lens[s] + j);
        qsl.push_back(qsl.back() + c.q_lens[s]);
      }
      const int T = qsl.back(), hd = c.hd;
      const int qkv_dim = (c.nq + 2 * c.nkv) * hd;
      auto qkv_bits = random_bf16(static_cast<size_t>(T) * qkv_dim, rng, -2.f, 2.f);
      auto qn_bits = random_bf16(hd, rng, 0.5f, 1.5f), kn_bits = random_bf16(hd, rng, 0.5f, 1.5f);
      std::vector<float> ref = to_float(qkv_bits);
      if (c.qk_norm) {
        cpu::head_rms_norm(ref.data(), T, qkv_dim, c.nq, hd, to_float(qn_bits).data(), 1e-6f,
                           nullptr);
        cpu::head_rms_norm(ref.data() + c.nq * hd, T, qkv_dim, c.nkv, hd, to_float(kn_bits).data(),
                           1e-6f, nullptr);
      }
      const std::vector<double> inv = cpu::rope_inv_freq(c.rotary, theta, rs);
      const std::vector<double> inv_long =
          c.longrope ? cpu::rope_inv_freq_long(c.rotary, theta, rs) : inv;
      for (size_t s = 0; s < c.q_lens.size(); ++s) {
        const int b = qsl[s], n = c.q_lens[s];
        const bool is_long = c.longrope && pos[b + n - 1] + 1 > 20;
        const double* f = is_long ? inv_long.data() : inv.data();
        const auto factor = static_cast<float>(rs.attention_factor);
        cpu::rope_neox(ref.data() + static_cast<int64_t>(b) * qkv_dim, n, qkv_dim, c.nq, hd,
                       pos.data() + b, f, nullptr, c.rotary, factor);
        cpu::rope_neox(ref.data() + static_cast<int64_t>(b) * qkv_dim + c.nq * hd, n, qkv_dim,
                       c.nkv, hd, pos.data() + b, f, nullptr, c.rotary, factor);
      }
      // The GPU tables from the CUDA backend's own function: the CPU's values.
      const std::vector<double> g_inv = rope_inv_freq64(c.rotary, theta, rs);
      const std::vector<double> g_long = rope_inv_freq64(c.rotary, theta, rs, nullptr, true);
      for (size_t i = 0; i < inv.size(); ++i) {
        EXPECT_DOUBLE_EQ(g_inv[i], inv[i]);
        if (c.longrope) {
          EXPECT_DOUBLE_EQ(g_long[i], inv_long[i]);
        }
      }
      DeviceArray<double> d_inv64(g_inv), d_long64(g_long);
      DeviceArray<float> d_inv(std::vector<float>(g_inv.begin(), g_inv.end())),
          d_long(std::vector<float>(g_long.begin(), g_long.end()));
      DeviceArray<int32_t> d_pos(pos), d_qsl(qsl);
      RopeKvWriteParams p;
      p.positions = d_pos.get();
      p.inv_freq = d_inv.get();
      p.inv_freq64 = d_inv64.get();
      p.num_tokens = T;
      p.num_q_heads = c.nq;
      p.num_kv_heads = c.nkv;
      p.head_dim = hd;
      p.block_size = 16;
      p.eps = 1e-6f;
      p.dtype = dtype;
      p.rotary_dim = c.rotary;
      if (c.longrope) {
        p.attention_factor = static_cast<float>(rs.attention_factor);
        p.inv_freq_long = d_long.get();
        p.inv_freq64_long = d_long64.get();
        p.long_after = 20;
        p.query_start_loc = d_qsl.get();
        p.num_seqs = static_cast<int>(c.q_lens.size());
      }
      std::vector<float> got;
      if (dtype == DType::kF32) {
        DeviceArray<float> d_qkv(to_float(qkv_bits)), d_qn(to_float(qn_bits)),
            d_kn(to_float(kn_bits));
        p.qkv = d_qkv.get();
        p.qkv_stride = qkv_dim;
        p.q_norm = c.qk_norm ? d_qn.get() : nullptr;
        p.k_norm = c.qk_norm ? d_kn.get() : nullptr;
        rope_kv_write(p, test_device(), nullptr);
        got = d_qkv.download();
        EXPECT_TRUE(within(compare(got, ref), 1e-5));
      } else {
        DeviceArray<uint16_t> d_qkv(qkv_bits), d_qn(qn_bits), d_kn(kn_bits);
        p.qkv = d_qkv.get();
        p.qkv_stride = qkv_dim;
        p.q_norm = c.qk_norm ? d_qn.get() : nullptr;
        p.k_norm = c.qk_norm ? d_kn.get() : nullptr;
        rope_kv_write(p, test_device(), nullptr);
        // float32 angles at positions up to 4000: a few 2^-24 * angle on top of the roundings.
        EXPECT_TRUE(within(compare(to_float(d_qkv.download()), ref),
                           (c.qk_norm ? 3 : 1) * kBf16Roundoff + 1e-3));
      }
    }
  }
}

// ---- mixture of experts ------------------------------------------------------------------------

struct MoeCase {
  int tokens, experts, top_k, hidden, inter;
  bool renormalize;
};

// Router: the same experts as cpu::moe_route, in the same order, and its weights (1e-6).
TEST(CudaMoe, RouteMatchesCpu) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(105);
  for (auto [n, e, k, renorm] : std::vector<std::tuple<int, int, int, bool>>{{1, 8, 2, true},
                                                                             {7, 8, 2, false},
                                                                             {33, 6, 2, true},
                                                                             {33, 128, 8, true},
                                                                             {300, 4, 2, true},
                                                                             {5, 60, 4, false}}) {
    SCOPED_TRACE(std::to_string(n) + " tokens " + std::to_string(e) + " experts top " +
                 std::to_string(k));
    auto logits = random_f32(static_cast<size_t>(n) * e, rng, -4.f, 4.f);
    // A token whose logits all tie: the lower experts first.
    std::fill(logits.begin(), logits.begin() + e, 0.5f);
    std::vector<int32_t> ref_e(static_cast<size_t>(n) * k);
    std::vector<float> ref_w(ref_e.size());
    cpu::moe_route(logits.data(), n, e, k, renorm, ref_e.data(), ref_w.data());
    DeviceArray<float> d_logits(logits), d_w(ref_w.size());
    DeviceArray<int32_t> d_e(ref_e.size());
    MoeRouteParams p;
    p.router_logits = d_logits.get();
    p.topk_experts = d_e.get();
    p.topk_weights = d_w.get();
    p.num_tokens = n;
    p.num_experts = e;
    p.top_k = k;
    p.renormalize = renorm;
    moe_route(p, test_device(), nullptr);
    EXPECT_EQ(d_e.download(), ref_e);
    EXPECT_TRUE(within(compare(d_w.download(), ref_w), 1e-6));
  }
}

// Permutation: every expert's rows form its segment [offsets[e], offsets[e+1]) and every
// (token, j) lands in its expert's segment exactly once.
TEST(CudaMoe, PermuteIsACountingSortByExpert) {
  KITE_REQUIRE_GPU();
  std::mt19937 rng(106);
  for (auto [n, e, k] : std::vector<std::tuple<int, int, int>>{
           {1, 8, 2}, {7, 8, 2}, {33, 128, 8}, {4096, 128, 8}, {300, 4, 2}}) {
    SCOPED_TRACE(std::to_string(n) + " tokens " + std::to_string(e) + " experts");
    std::vector<int32_t> chosen(static_cast<size_t>(n) * k);
    for (int t = 0; t < n; ++t) {
      std::vector<int32_t> all(static_cast<size_t>(e));
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      std::copy_n(all.begin(), k, chosen.begin() + static_cast<int64_t>(t) * k);
    }
    const int rows = n * k;
    DeviceArray<int32_t> d_chosen(chosen), d_off(static_cast<size_t>(e) + 1), d_tok(rows),
        d_slot(rows);
    d_tok.poison();
    d_slot.poison();
    MoePermuteParams p;
    p.topk_experts = d_chosen.get();
    p.expert_offsets = d_off.get();
    p.row_token = d_tok.get();
    p.slot_row = d_slot.get();
    p.num_rows = rows;
    p.num_experts = e;
    p.top_k = k;
    moe_permute(p, test_device(), nullptr);
    const auto off = d_off.download(), tok = d_tok.download(), slot = d_slot.download();
    std::vector<int> count(static_cast<size_t>(e));
    for (int32_t x : chosen) ++count[static_cast<size_t>(x)];
    ASSERT_EQ(off[0], 0);
    for (int x = 0; x < e; ++x) EXPECT_EQ(off[x + 1] - off[x], count[x]) << "expert " << x;
    std::vector<int> seen(static_cast<size_t>(rows));
    for (int i = 0; i < rows; ++i) {
      const int r = slot[i], x = chosen[i];
      ASSERT_TRUE(r >= 0 && r < rows) << i;
      EXPECT_TRUE(r >= off[x] && r < off[x + 1]) << "row " << i << " outside expert " << x;
      EXPECT_EQ(tok[r], i / k);
      ++seen[r];
    }
    EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  }
}

// The whole block on the device (router logits from the CPU, so both route alike) against
// cpu::moe: f32 1e-5 relative (summation order); bf16: gate_up, silu, product, down and combine
// outputs rounded = 5 roundings.
TEST(CudaMoe, BlockMatchesCpu) {
  KITE_REQUIRE_GPU();
  const MoeCase cases[] = {
      {1, 8, 2, 64, 40, true},     {7, 8, 2, 64, 40, false},  {33, 8, 2, 64, 40, true},
      {33, 128, 8, 256, 96, true}, {200, 4, 2, 48, 72, true}, {3, 32, 8, 1024, 384, true},
  };
  std::mt19937 rng(107);
  for (const MoeCase& c : cases) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      SCOPED_TRACE(std::to_string(c.tokens) + " tokens, " + std::to_string(c.experts) +
                   " experts top " + std::to_string(c.top_k) + ", hidden " +
                   std::to_string(c.hidden) + " inter " + std::to_string(c.inter) + " " +
                   std::string(dtype_name(dtype)));
      const int n = c.tokens, E = c.experts, H = c.hidden, I = c.inter, k = c.top_k;
      // bf16-exact values, so both dtypes see the reference's inputs.
      auto exact = [&](size_t count, float scale) {
        std::vector<float> v = to_float(random_bf16(count, rng, -scale, scale));
        return v;
      };
      std::vector<float> x = exact(static_cast<size_t>(n) * H, 1.f);
      std::vector<float> router =
          exact(static_cast<size_t>(E) * H, 1.f / std::sqrt(static_cast<float>(H)));
      std::vector<std::vector<float>> gate_up, down;
      for (int e = 0; e < E; ++e) {
        gate_up.push_back(
            exact(static_cast<size_t>(2) * I * H, 1.7f / std::sqrt(static_cast<float>(H))));
        down.push_back(exact(static_cast<size_t>(H) * I, 1.7f / std::sqrt(static_cast<float>(I))));
      }
      std::vector<TensorView> router_v{TensorView(router.data(), DType::kF32, {E, H})};
      std::vector<TensorView> gu_v, down_v;
      for (int e = 0; e < E; ++e) {
        gu_v.emplace_back(gate_up[static_cast<size_t>(e)].data(), DType::kF32,
                          std::initializer_list<int64_t>{2 * I, H});
        down_v.emplace_back(down[static_cast<size_t>(e)].data(), DType::kF32,
                            std::initializer_list<int64_t>{H, I});
      }
      std::vector<cpu::MoeExpert> experts;
      for (int e = 0; e < E; ++e) {
        experts.push_back({std::span<const TensorView>(&gu_v[static_cast<size_t>(e)], 1),
                           &down_v[static_cast<size_t>(e)]});
      }
      std::vector<float> ref(static_cast<size_t>(n) * H);
      cpu::MoeScratch scratch;
      cpu::moe(x.data(), n, H, I, router_v, experts, k, c.renormalize, ref.data(), &scratch,
               &pool());
      std::vector<float> logits(static_cast<size_t>(n) * E);
      cpu::linear(x.data(), n, router_v[0], nullptr, logits.data(), &pool());

      const bool f32 = dtype == DType::kF32;
      const size_t es = f32 ? 4 : 2;
      auto upload = [&](const std::vector<float>& v) {
        DeviceArray<uint8_t> d(v.size() * es);
        if (f32) {
          EXPECT_EQ(cudaMemcpy(d.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice),
                    cudaSuccess);
        } else {
          std::vector<uint16_t> b(v.size());
          for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]).bits;
          EXPECT_EQ(cudaMemcpy(d.get(), b.data(), b.size() * 2, cudaMemcpyHostToDevice),
                    cudaSuccess);
        }
        return d;
      };
      DeviceArray<uint8_t> d_x = upload(x);
      std::vector<DeviceArray<uint8_t>> d_gu, d_down;
      std::vector<const void*> ptrs;
      for (int e = 0; e < E; ++e) d_gu.push_back(upload(gate_up[static_cast<size_t>(e)]));
      for (int e = 0; e < E; ++e) d_down.push_back(upload(down[static_cast<size_t>(e)]));
      for (auto& d : d_gu) ptrs.push_back(d.get());
      for (auto& d : d_down) ptrs.push_back(d.get());
      DeviceArray<const void*> d_ptrs(ptrs);
      const int rows = n * k;
      DeviceArray<float> d_logits(logits), d_w(static_cast<size_t>(rows));
      DeviceArray<int32_t> d_e(static_cast<size_t>(rows)), d_off(static_cast<size_t>(E) + 1),
          d_tok(static_cast<size_t>(rows)), d_slot(static_cast<size_t>(rows));
      DeviceArray<uint8_t> d_gate_up(static_cast<size_t>(rows) * 2 * I * es),
          d_act(static_cast<size_t>(rows) * I * es), d_y(static_cast<size_t>(rows) * H * es),
          d_out(static_cast<size_t>(n) * H * es);
      d_out.poison();
      d_y.poison();

      MoeRouteParams rp;
      rp.router_logits = d_logits.get();
      rp.topk_experts = d_e.get();
      rp.topk_weights = d_w.get();
      rp.num_tokens = n;
      rp.num_experts = E;
      rp.top_k = k;
      rp.renormalize = c.renormalize;
      moe_route(rp, test_device(), nullptr);
      MoePermuteParams pp;
      pp.topk_experts = d_e.get();
      pp.expert_offsets = d_off.get();
      pp.row_token = d_tok.get();
      pp.slot_row = d_slot.get();
      pp.num_rows = rows;
      pp.num_experts = E;
      pp.top_k = k;
      moe_permute(pp, test_device(), nullptr);
      MoeGemmParams gp;
      gp.x = d_x.get();
      gp.x_stride = H;
      gp.x_rows = d_tok.get();
      gp.weights = d_ptrs.get();
      gp.expert_offsets = d_off.get();
      gp.y = d_gate_up.get();
      gp.y_stride = 2 * I;
      gp.num_experts = E;
      gp.n = 2 * I;
      gp.k = H;
      gp.dtype = dtype;
      moe_grouped_gemm(gp, test_device(), nullptr);
      silu_mul(SiluMulParams{d_gate_up.get(), d_act.get(), rows, I, dtype}, test_device(), nullptr);
      gp.x = d_act.get();
      gp.x_stride = I;
      gp.x_rows = nullptr;
      gp.weights = d_ptrs.get() + E;
      gp.y = d_y.get();
      gp.y_stride = H;
      gp.n = H;
      gp.k = I;
      moe_grouped_gemm(gp, test_device(), nullptr);
      MoeCombineParams cp;
      cp.y = d_y.get();
      cp.slot_row = d_slot.get();
      cp.topk_weights = d_w.get();
      cp.out = d_out.get();
      cp.num_tokens = n;
      cp.hidden = H;
      cp.top_k = k;
      cp.dtype = dtype;
      moe_combine(cp, test_device(), nullptr);

      const std::vector<uint8_t> raw = d_out.download();
      std::vector<float> got(static_cast<size_t>(n) * H);
      if (f32) {
        std::memcpy(got.data(), raw.data(), got.size() * 4);
      } else {
        for (size_t i = 0; i < got.size(); ++i) {
          uint16_t b;
          std::memcpy(&b, raw.data() + 2 * i, 2);
          got[i] = bf16_to_f32(bf16_t{b});
        }
      }
      const ErrorStats s = compare(got, ref);
      EXPECT_EQ(s.nan, 0u) << s.to_string();
      EXPECT_LE(s.rel_l2, f32 ? 1e-5 : 5 * kBf16Roundoff) << s.to_string();
    }
  }
}

// One grouped GEMM launch over experts of 0, 1, 3 (the GEMV), 5, 17, 64, 65 and 200 rows, with n
// and k not multiples of the 64 x 64 x 32 tile, rows gathered through x_rows (gate_up) or read in
// place with a padded stride (down), and a padded y stride whose padding must stay untouched.
// Both multi-row kernels (CUDA-core FMA tiles, bf16 tensor cores) against a float64 reference:
// one bf16 rounding (each output is rounded once from its F32 sum); against each other: two.
// k % 8 != 0 and f32 fall back to the CUDA-core kernel whatever the path asks.
TEST(CudaMoe, GroupedGemmTensorCoresMatchCpu) {
  KITE_REQUIRE_GPU();
  struct GemmCase {
    int n, k;
    bool gather;
  };
  const GemmCase cases[] = {{100, 72, true},    {130, 264, false},  {8, 8, true},
                            {2048, 768, false}, {1536, 2048, true}, {67, 36, true}};
  const std::vector<int> counts = {0, 1, 5, 17, 64, 65, 200, 3, 0};
  const int E = static_cast<int>(counts.size());
  std::vector<int32_t> offsets(static_cast<size_t>(E) + 1, 0);
  for (int e = 0; e < E; ++e) offsets[e + 1] = offsets[e] + counts[static_cast<size_t>(e)];
  const int rows = offsets[E];
  std::mt19937 rng(109);
  for (const GemmCase& c : cases) {
    SCOPED_TRACE("n " + std::to_string(c.n) + " k " + std::to_string(c.k) +
                 (c.gather ? " gathered" : " in place"));
    const int src_rows = c.gather ? 37 : rows;
    const int64_t x_stride = c.gather ? c.k : c.k + 8;
    const int64_t y_stride = c.n + 3;
    std::vector<uint16_t> x = random_bf16(static_cast<size_t>(src_rows) * x_stride, rng);
    std::vector<int32_t> x_rows(static_cast<size_t>(rows));
    for (auto& r : x_rows) r = std::uniform_int_distribution<int>(0, src_rows - 1)(rng);
    const float ws = 1.7f / std::sqrt(static_cast<float>(c.k));
    std::vector<std::vector<uint16_t>> w;
    for (int e = 0; e < E; ++e)
      w.push_back(random_bf16(static_cast<size_t>(c.n) * c.k, rng, -ws, ws));

    std::vector<float> ref(static_cast<size_t>(rows) * c.n);
    const std::vector<float> xf = to_float(x);
    for (int e = 0; e < E; ++e) {
      const std::vector<float> wf = to_float(w[static_cast<size_t>(e)]);
      for (int r = offsets[e]; r < offsets[e + 1]; ++r) {
        const float* xr =
            xf.data() +
            static_cast<int64_t>(c.gather ? x_rows[static_cast<size_t>(r)] : r) * x_stride;
        for (int col = 0; col < c.n; ++col) {
          const float* wr = wf.data() + static_cast<int64_t>(col) * c.k;
          double acc = 0;
          for (int i = 0; i < c.k; ++i) acc += static_cast<double>(xr[i]) * wr[i];
          ref[static_cast<size_t>(r) * c.n + col] = static_cast<float>(acc);
        }
      }
    }

    DeviceArray<uint16_t> d_x(x);
    DeviceArray<int32_t> d_rows(x_rows), d_off(offsets);
    std::vector<DeviceArray<uint16_t>> d_w;
    std::vector<const void*> ptrs;
    for (const auto& we : w) d_w.emplace_back(we);
    for (const auto& d : d_w) ptrs.push_back(d.get());
    DeviceArray<const void*> d_ptrs(ptrs);
    auto run = [&](MoeGemmPath path) {
      DeviceArray<uint16_t> d_y(static_cast<size_t>(rows) * y_stride);
      d_y.poison();
      MoeGemmParams gp;
      gp.x = d_x.get();
      gp.x_stride = x_stride;
      gp.x_rows = c.gather ? d_rows.get() : nullptr;
      gp.weights = d_ptrs.get();
      gp.expert_offsets = d_off.get();
      gp.y = d_y.get();
      gp.y_stride = y_stride;
      gp.num_experts = E;
      gp.n = c.n;
      gp.k = c.k;
      gp.dtype = DType::kBF16;
      gp.path = path;
      EXPECT_EQ(moe_gemm_uses_tensor_cores(gp, test_device()),
                path == MoeGemmPath::kTensorCore && c.k % 8 == 0);
      moe_grouped_gemm(gp, test_device(), nullptr);
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<uint16_t> raw = d_y.download();
      std::vector<uint16_t> got(static_cast<size_t>(rows) * c.n);
      size_t written_pad = 0;
      for (int r = 0; r < rows; ++r) {
        for (int col = 0; col < y_stride; ++col) {
          const uint16_t b = raw[static_cast<size_t>(r) * y_stride + col];
          if (col < c.n) {
            got[static_cast<size_t>(r) * c.n + col] = b;
          } else if (b != 0xffff) {
            ++written_pad;
          }
        }
      }
      EXPECT_EQ(written_pad, 0u) << "wrote past n";
      return got;
    };
    const std::vector<uint16_t> cc = run(MoeGemmPath::kCudaCore);
    const std::vector<uint16_t> tc = run(MoeGemmPath::kTensorCore);
    EXPECT_TRUE(close_bf16(cc, ref, 1)) << "CUDA-core";
    EXPECT_TRUE(close_bf16(tc, ref, 1)) << "tensor-core";
    EXPECT_TRUE(close_bf16(tc, to_float(cc), 2)) << "tensor-core vs CUDA-core";
  }
}

// Whatever the path asks, f32 runs the CUDA-core kernel (the tensor-core one is bf16 only), and
// kDefault follows the context (KITE_MOE_TC=1).
TEST(CudaMoe, GroupedGemmPathSelection) {
  KITE_REQUIRE_GPU();
  MoeGemmParams gp;
  gp.k = 64;
  gp.x_stride = 64;
  gp.dtype = DType::kF32;
  gp.path = MoeGemmPath::kTensorCore;
  EXPECT_FALSE(moe_gemm_uses_tensor_cores(gp, test_device()));
  gp.dtype = DType::kBF16;
  EXPECT_TRUE(moe_gemm_uses_tensor_cores(gp, test_device()));
  gp.x_stride = 68;
  EXPECT_FALSE(moe_gemm_uses_tensor_cores(gp, test_device()));
  gp.x_stride = 64;
  gp.path = MoeGemmPath::kCudaCore;
  EXPECT_FALSE(moe_gemm_uses_tensor_cores(gp, test_device()));
  gp.path = MoeGemmPath::kDefault;
  EXPECT_EQ(moe_gemm_uses_tensor_cores(gp, test_device()), test_device().moe_tensor_cores());
}

}  // namespace
}  // namespace kite::cuda::test
