// The op table's linear cases: the GEMV (m = 1..kGemvMaxM, each epilogue and the norm prologue)
// and the cuBLASLt GEMM (bf16 -> bf16, bf16 -> f32, f32 -> f32), against cpu::linear.
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <thread>

#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/rope.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "op_table.h"

namespace kite::cuda::test {
namespace {

ThreadPool& pool() {
  static ThreadPool p(std::max(1u, std::thread::hardware_concurrency()));
  return p;
}

// y[m, n] = x[m, k] W[n, k]^T (+ bias) in float32 from the host values.
std::vector<float> reference_linear(const std::vector<float>& x, int m, int k,
                                    const std::vector<float>& w, int n, const float* bias) {
  std::vector<float> y(static_cast<size_t>(m) * n);
  cpu::linear(x.data(), m, k, TensorView(const_cast<float*>(w.data()), DType::kF32, {n, k}), bias,
              y.data(), n, &pool());
  return y;
}

// ---- GEMV --------------------------------------------------------------------------------------

enum class GemvVariant { kPlain, kBias, kF32Out, kSiluMul, kNormPrologue, kResidual, kRopeKv };

const char* variant_name(GemvVariant v) {
  switch (v) {
    case GemvVariant::kPlain:
      return "plain";
    case GemvVariant::kBias:
      return "bias";
    case GemvVariant::kF32Out:
      return "f32out";
    case GemvVariant::kSiluMul:
      return "silu";
    case GemvVariant::kNormPrologue:
      return "norm";
    case GemvVariant::kResidual:
      return "residual";
    case GemvVariant::kRopeKv:
      return "rope";
  }
  return "?";
}

// Bounds (bf16 inputs; acc = the float32 product, A = sum_k |w_k| |x_k|, which bounds how far
// input roundings move acc):
//   plain, bias:   1 rounding of the output
//   f32 output:    fp32 accumulation order only, 1e-5 relative
//   SiLU·mul:      gate and up rounded, silu rounded, product rounded: 4 roundings
//   norm prologue: 2^-8 |y| + 2 * 2^-8 * A (x' = bf16(w * bf16(x * r)): two roundings of every
//                  input) + 1e-6 A
//   residual:      2^-8 |y| + 2^-8 |acc| (the product is rounded before the add), in place
//   RoPE + KV:     as rope_kv_write's bound with the rotated inputs bf16(acc + bias) rounded once;
//                  the caches hold exactly the row's k and v at each written slot
class GemvRun : public OpRun {
 public:
  GemvRun(GemvVariant v, int n, int k, int m, uint32_t seed) : v_(v), n_(n), k_(k), m_(m) {
    std::mt19937 rng(seed);
    const bool norm = v == GemvVariant::kNormPrologue;
    x_ = random_tensor(DType::kBF16, static_cast<size_t>(m) * k, rng, norm ? -2.f : -1.f,
                       norm ? 2.f : 1.f);
    if (v == GemvVariant::kRopeKv) {  // n is the head dim
      head_dim_ = n;
      n_ = (kNq + 2 * kNkv) * n;
    }
    w_ = random_tensor(DType::kBF16, static_cast<size_t>(n_) * k, rng, -0.05f, 0.05f);
    b_ = random_tensor(DType::kBF16, static_cast<size_t>(n_), rng,
                       v == GemvVariant::kRopeKv ? -0.5f : -1.f,
                       v == GemvVariant::kRopeKv ? 0.5f : 1.f);
    nw_ = random_tensor(DType::kBF16, static_cast<size_t>(k), rng, 0.5f, 1.5f);
    out_cols_ = v == GemvVariant::kSiluMul ? n_ / 2 : n_;
    if (v == GemvVariant::kResidual) {
      y_tensor_ = random_tensor(DType::kBF16, static_cast<size_t>(m) * n_, rng, -1.f, 1.f);
    } else {
      y_ = poisoned(v == GemvVariant::kF32Out ? DType::kF32 : DType::kBF16,
                    static_cast<size_t>(m) * out_cols_);
    }
    if (v == GemvVariant::kRopeKv) {
      pos_.resize(m);
      slots_.resize(m);
      for (int i = 0; i < m; ++i) {
        pos_[i] = static_cast<int32_t>(rng() % 5000);
        slots_[i] = i == 1 ? -1 : 3 * kBs + 5 * i;
      }
      pos_d_ = device_ints(pos_);
      slots_d_ = device_ints(slots_);
      cfg_.head_dim = head_dim_;
      cfg_.rope_theta = 10000.0;
      inv_ = tensor_of(DType::kF32, rope_inv_freq(cfg_));
      cache_elems_ = static_cast<size_t>(kBlocks) * kBs * kNkv * head_dim_;
      kc_ = poisoned(DType::kBF16, cache_elems_);
      vc_ = poisoned(DType::kBF16, cache_elems_);
    }
  }

  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    GemvParams p;
    p.x = x_.ptr();
    p.w = w_.ptr();
    p.m = m_;
    p.n = n_;
    p.k = k_;
    p.x_stride = k_;
    p.y_stride = out_cols_;
    p.y = v_ == GemvVariant::kResidual ? y_tensor_.ptr() : y_.data();
    switch (v_) {
      case GemvVariant::kPlain:
        break;
      case GemvVariant::kBias:
        p.bias = b_.ptr();
        break;
      case GemvVariant::kF32Out:
        p.out_dtype = DType::kF32;
        break;
      case GemvVariant::kSiluMul:
        p.epilogue = GemvEpilogue::kSiluMul;
        break;
      case GemvVariant::kNormPrologue:
        p.norm_weight = nw_.ptr();
        p.norm_eps = 1e-5f;
        break;
      case GemvVariant::kResidual:
        p.residual = y_tensor_.ptr();  // the residual stream, updated in place
        break;
      case GemvVariant::kRopeKv:
        p.bias = b_.ptr();
        p.epilogue = GemvEpilogue::kRopeKv;
        p.rope = GemvRope{pos_d_.as<int32_t>(),
                          slots_d_.as<int32_t>(),
                          static_cast<const float*>(inv_.ptr()),
                          kc_.data(),
                          vc_.data(),
                          kNq,
                          kNkv,
                          head_dim_,
                          kBs};
        break;
    }
    KITE_CHECK(gemv_supported(p)) << "op table: gemv case not supported";
    gemv(p, dev, stream);
  }

  OpCheck check() override {
    switch (v_) {
      case GemvVariant::kPlain:
      case GemvVariant::kBias: {
        const auto ref = reference_linear(x_.host, m_, k_, w_.host, n_,
                                          v_ == GemvVariant::kBias ? b_.host.data() : nullptr);
        return check_within(download(y_.data(), DType::kBF16, ref.size()), ref, kBf16Unit, "y");
      }
      case GemvVariant::kF32Out: {
        const auto ref = reference_linear(x_.host, m_, k_, w_.host, n_, nullptr);
        return check_within(download(y_.data(), DType::kF32, ref.size()), ref, 1e-5, "y");
      }
      case GemvVariant::kSiluMul: {
        const auto y = reference_linear(x_.host, m_, k_, w_.host, n_, nullptr);
        std::vector<float> ref(static_cast<size_t>(m_) * out_cols_);
        cpu::silu_mul(y.data(), m_, out_cols_, ref.data(), nullptr);
        return check_within(download(y_.data(), DType::kBF16, ref.size()), ref, 4 * kBf16Unit, "y");
      }
      case GemvVariant::kNormPrologue: {
        std::vector<float> xn(x_.size());
        cpu::rms_norm(x_.host.data(), nw_.host.data(), m_, k_, 1e-5f, xn.data(), nullptr);
        const auto acc = reference_linear(xn, m_, k_, w_.host, n_, nullptr);
        std::vector<float> wabs = w_.host, xabs = xn;
        for (auto& v : wabs) v = std::abs(v);
        for (auto& v : xabs) v = std::abs(v);
        const auto abs_acc = reference_linear(xabs, m_, k_, wabs, n_, nullptr);
        std::vector<double> allowed(acc.size());
        for (size_t i = 0; i < acc.size(); ++i) {
          allowed[i] = kBf16Unit * (std::abs(acc[i]) + 2 * abs_acc[i]) + 1e-6 * abs_acc[i];
        }
        return check_each(download(y_.data(), DType::kBF16, acc.size()), acc, allowed,
                          "norm prologue");
      }
      case GemvVariant::kResidual: {
        const auto acc = reference_linear(x_.host, m_, k_, w_.host, n_, nullptr);
        std::vector<float> ref(acc.size());
        std::vector<double> allowed(acc.size());
        for (size_t i = 0; i < acc.size(); ++i) {
          ref[i] = y_tensor_.host[i] + acc[i];
          allowed[i] = kBf16Unit * (std::abs(ref[i]) + std::abs(acc[i])) + 1e-6;
        }
        return check_each(download(y_tensor_.ptr(), DType::kBF16, ref.size()), ref, allowed,
                          "residual");
      }
      case GemvVariant::kRopeKv:
        return check_rope();
    }
    return {false, "unknown variant"};
  }

  double bytes() const override {
    return 2.0 * n_ * k_ + 2.0 * m_ * k_ +
           (v_ == GemvVariant::kF32Out ? 4.0 : 2.0) * m_ * out_cols_;
  }
  double flops() const override { return 0; }

 private:
  static constexpr int kNq = 4, kNkv = 2, kBs = 16, kBlocks = 8;

  OpCheck check_rope() {
    const int hd = head_dim_, half = hd / 2, qkv_dim = n_;
    std::vector<float> ref = reference_linear(x_.host, m_, k_, w_.host, n_, b_.host.data());
    const std::vector<double> inv_ref = cpu::rope_inv_freq(hd, cfg_.rope_theta, cfg_.rope_scaling);
    cpu::rope_neox(ref.data(), m_, qkv_dim, kNq + kNkv, hd, pos_.data(), inv_ref.data(), nullptr);
    const std::vector<float> got = download(y_.data(), DType::kBF16, ref.size());
    std::vector<double> al(ref.size());
    for (int t = 0; t < m_; ++t) {
      for (int h = 0; h < kNq + 2 * kNkv; ++h) {
        for (int i = 0; i < half; ++i) {
          const int64_t i1 = static_cast<int64_t>(t) * qkv_dim + h * hd + i, i2 = i1 + half;
          const double n = std::hypot(ref[i1], ref[i2]);
          const double angle = h < kNq + kNkv ? std::abs(pos_[t] * inv_ref[i]) : 0.0;
          const double common =
              kBf16Unit * n + (angle * std::ldexp(1.0, -23) + std::ldexp(1.0, -22)) * n;
          al[i1] = kBf16Unit * std::abs(ref[i1]) + common;
          al[i2] = kBf16Unit * std::abs(ref[i2]) + common;
        }
      }
    }
    OpCheck c = check_each(got, ref, al, "rope epilogue");
    const std::vector<float> kc = download(kc_.data(), DType::kBF16, cache_elems_);
    const std::vector<float> vc = download(vc_.data(), DType::kBF16, cache_elems_);
    std::vector<float> kg, kr, vg, vr;
    for (int t = 0; t < m_; ++t) {
      if (slots_[t] < 0) continue;
      const int64_t blk = slots_[t] / kBs, off = slots_[t] % kBs;
      for (int h = 0; h < kNkv; ++h) {
        for (int d = 0; d < hd; ++d) {
          const int64_t cidx = ((blk * kNkv + h) * kBs + off) * hd + d;
          const int64_t row = static_cast<int64_t>(t) * qkv_dim;
          kg.push_back(kc[cidx]);
          kr.push_back(got[row + (kNq + h) * hd + d]);
          vg.push_back(vc[cidx]);
          vr.push_back(got[row + (kNq + kNkv + h) * hd + d]);
        }
      }
    }
    c = both(c, check_equal(kg, kr, "k cache = row"));
    c = both(c, check_equal(vg, vr, "v cache = row"));
    size_t untouched = 0;
    for (float v : vc) untouched += std::isnan(v) ? 1 : 0;
    if (untouched != cache_elems_ - vg.size()) {
      c.ok = false;
      c.detail +=
          cat("; v cache: ", cache_elems_ - untouched, " written, ", vg.size(), " expected");
    }
    return c;
  }

  GemvVariant v_;
  int n_, k_, m_, out_cols_ = 0, head_dim_ = 0;
  HostDeviceTensor x_, w_, b_, nw_, y_tensor_, inv_;
  DeviceBuffer y_, pos_d_, slots_d_, kc_, vc_;
  std::vector<int32_t> pos_, slots_;
  ModelConfig cfg_;
  size_t cache_elems_ = 0;
};

// ---- cuBLASLt GEMM -----------------------------------------------------------------------------

// bf16 -> bf16: 1 rounding; bf16 -> f32: fp32 accumulation order only (1e-5); f32 -> f32 (the
// float32 compute mode, pure FP32): kF32Bound against the float32 CPU product (k = 512 keeps both
// sides' summation-order error well inside it; CudaGemm.PureFp32WithoutTf32 checks k = 4096 against
// float64).
class GemmRun : public OpRun {
 public:
  GemmRun(DType dtype, DType out_dtype, bool bias, int m, int n, int k, uint32_t seed)
      : dtype_(dtype), out_dtype_(out_dtype), bias_(bias), m_(m), n_(n), k_(k) {
    std::mt19937 rng(seed);
    x_ = random_tensor(dtype, static_cast<size_t>(m) * k, rng);
    w_ = random_tensor(dtype, static_cast<size_t>(n) * k, rng, -0.05f, 0.05f);
    b_ = random_tensor(dtype, static_cast<size_t>(n), rng);
    y_ = poisoned(out_dtype, static_cast<size_t>(m) * n);
    Result<std::unique_ptr<GemmRunner>> g = GemmRunner::create();
    KITE_CHECK(g.ok()) << g.status().to_string();
    gemm_ = std::move(*g);
  }
  void launch(const DeviceContext&, cudaStream_t stream) override {
    GemmArgs a;
    a.x = x_.ptr();
    a.ldx = k_;
    a.w = w_.ptr();
    a.ldw = k_;
    a.bias = bias_ ? b_.ptr() : nullptr;
    a.y = y_.data();
    a.ldy = n_;
    a.m = m_;
    a.n = n_;
    a.k = k_;
    a.dtype = dtype_;
    a.out_dtype = out_dtype_;
    const Status st = gemm_->gemm(a, stream);
    KITE_CHECK(st.ok()) << st.to_string();
  }
  OpCheck check() override {
    const auto ref =
        reference_linear(x_.host, m_, k_, w_.host, n_, bias_ ? b_.host.data() : nullptr);
    const double bound = dtype_ == DType::kF32       ? kF32Bound
                         : out_dtype_ == DType::kF32 ? 1e-5
                                                     : kBf16Unit;
    return check_within(download(y_.data(), out_dtype_, ref.size()), ref, bound, "y");
  }
  double bytes() const override {
    return static_cast<double>(dtype_size(dtype_)) * (static_cast<double>(n_) * k_ + m_ * k_) +
           static_cast<double>(dtype_size(out_dtype_)) * m_ * n_;
  }
  double flops() const override { return 2.0 * m_ * n_ * k_; }

 private:
  DType dtype_, out_dtype_;
  bool bias_;
  int m_, n_, k_;
  HostDeviceTensor x_, w_, b_;
  DeviceBuffer y_;
  std::unique_ptr<GemmRunner> gemm_;
};

}  // namespace

void add_linear_cases(std::vector<OpCase>& cases) {
  struct GemvShape {
    GemvVariant v;
    int n, k;  // kRopeKv: n is the head dim (4 q / 2 kv heads)
    std::vector<int> ms;
  };
  std::vector<int> all_m(kGemvMaxM);
  std::iota(all_m.begin(), all_m.end(), 1);
  const std::vector<int> some_m = {1, 4, kGemvMaxM};
  const GemvShape gemvs[] = {
      {GemvVariant::kPlain, 1000, 4096, all_m},
      {GemvVariant::kBias, 4099, 512, all_m},
      {GemvVariant::kSiluMul, 2 * 1001, 4096, all_m},
      {GemvVariant::kPlain, 512, 14336, all_m},
      {GemvVariant::kF32Out, 32003, 256, all_m},
      {GemvVariant::kBias, 6, 8, all_m},
      {GemvVariant::kNormPrologue, 1028, 1024, all_m},
      {GemvVariant::kResidual, 1028, 1024, all_m},
      {GemvVariant::kRopeKv, 128, 1024, all_m},
      {GemvVariant::kRopeKv, 16, 1024, all_m},
      // The Llama-3-8B decode shapes (the benchmark's rows): qkv with the input norm, o and down
      // with the residual, gate/up with SiLU, the LM head to f32.
      {GemvVariant::kNormPrologue, 6144, 4096, some_m},
      {GemvVariant::kResidual, 4096, 4096, some_m},
      {GemvVariant::kSiluMul, 28672, 4096, some_m},
      {GemvVariant::kResidual, 4096, 14336, some_m},
      {GemvVariant::kF32Out, 128256, 4096, {1}},
  };
  for (const GemvShape& g : gemvs) {
    for (int m : g.ms) {
      const std::string shape = cat(variant_name(g.v), "_n", g.n, "_k", g.k, "_m", m);
      const GemvVariant v = g.v;
      const int n = g.n, k = g.k;
      cases.push_back({"gemv", DType::kBF16, shape,
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<GemvRun>(v, n, k, m, seed);
                       }});
    }
  }
  struct GemmShape {
    DType dtype, out;
    bool bias;
    int n, k;
  };
  const GemmShape gemms[] = {
      {DType::kBF16, DType::kBF16, false, 1536, 4096},
      {DType::kBF16, DType::kBF16, true, 1536, 4096},
      {DType::kBF16, DType::kF32, false, 32003, 512},
      {DType::kF32, DType::kF32, false, 1000, 512},
      {DType::kF32, DType::kF32, true, 1000, 512},
  };
  for (const GemmShape& g : gemms) {
    for (int m : {1, 3, 17, 128, 1000}) {
      const std::string shape = cat(g.out == DType::kF32 ? "f32out_" : "", g.bias ? "bias_" : "",
                                    "m", m, "_n", g.n, "_k", g.k);
      const GemmShape s = g;
      cases.push_back({"gemm", g.dtype, shape,
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<GemmRun>(s.dtype, s.out, s.bias, m, s.n, s.k,
                                                          seed);
                       }});
    }
  }
  // A prefill-sized qkv projection of the 8B shape (FLOP-bound; the CPU reference keeps it at
  // 512 tokens).
  cases.push_back({"gemm", DType::kBF16, "m512_n6144_k4096",
                   [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                     return std::make_unique<GemmRun>(DType::kBF16, DType::kBF16, false, 512, 6144,
                                                      4096, seed);
                   }});
}

}  // namespace kite::cuda::test
