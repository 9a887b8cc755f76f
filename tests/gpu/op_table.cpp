// The op table's helpers, its assembly, and the element-wise cases: embedding, RMSNorm (plain,
// fused residual add, row gather), RoPE + KV write (with and without q/k norm, each RoPE scaling),
// SiLU·mul, argmax. Each in bf16 and f32 (the float32 compute mode).
#include "op_table.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backend/cpu/ops.h"
#include "backend/cuda/activation.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/norm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/sampling.h"
#include "core/check.h"

namespace kite::cuda::test {

// ---- helpers -----------------------------------------------------------------------------------

std::string OpCase::name() const {
  // The case's dtype in lower case ("bf16", "f32", "f8_e4m3"), so that a name filter can pick
  // one dtype's cases.
  std::string d(dtype_name(dtype));
  std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return std::tolower(c); });
  return cat(op, "_", d, "_", shape);
}

size_t dtype_size(DType dtype) {
  KITE_CHECK(dtype == DType::kBF16 || dtype == DType::kF32) << dtype_name(dtype);
  return dtype == DType::kF32 ? 4 : 2;
}

namespace {

DeviceBuffer alloc(size_t bytes) {
  Result<DeviceBuffer> b = DeviceBuffer::allocate(std::max<size_t>(bytes, 16), "op table");
  KITE_CHECK(b.ok()) << b.status().to_string();
  return std::move(*b);
}

void upload(DeviceBuffer& dst, const void* src, size_t bytes) {
  if (bytes > 0) KITE_CUDA_CHECK(cudaMemcpy(dst.data(), src, bytes, cudaMemcpyHostToDevice));
}

}  // namespace

HostDeviceTensor tensor_of(DType dtype, std::vector<float> values) {
  HostDeviceTensor t;
  t.dtype = dtype;
  t.host = std::move(values);
  t.dev = alloc(t.host.size() * dtype_size(dtype));
  if (dtype == DType::kF32) {
    upload(t.dev, t.host.data(), t.host.size() * 4);
  } else {
    std::vector<uint16_t> bits(t.host.size());
    for (size_t i = 0; i < bits.size(); ++i) {
      bits[i] = f32_to_bf16(t.host[i]).bits;
      t.host[i] = bf16_to_f32(bf16_t{bits[i]});
    }
    upload(t.dev, bits.data(), bits.size() * 2);
  }
  return t;
}

HostDeviceTensor random_tensor(DType dtype, size_t n, std::mt19937& rng, float lo, float hi) {
  // xorshift64 seeded from rng: a few ns per value (the largest cases fill ~10^9 values).
  uint64_t s = (static_cast<uint64_t>(rng()) << 32) | rng() | 1;
  const float step = (hi - lo) / 16777216.f;  // 24 random bits per value
  std::vector<float> v(n);
  for (auto& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = lo + static_cast<float>(s >> 40) * step;
  }
  return tensor_of(dtype, std::move(v));
}

DeviceBuffer poisoned(DType dtype, size_t n) {
  const size_t bytes = n * (dtype == DType::kI32 ? 4 : dtype_size(dtype));
  DeviceBuffer b = alloc(bytes);
  KITE_CUDA_CHECK(cudaMemset(b.data(), 0xff, b.size()));
  return b;
}

DeviceBuffer device_ints(const std::vector<int32_t>& v) {
  DeviceBuffer b = alloc(v.size() * 4);
  upload(b, v.data(), v.size() * 4);
  return b;
}

std::vector<float> download(const void* dev, DType dtype, size_t n) {
  KITE_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> out(n);
  if (dtype == DType::kF32) {
    KITE_CUDA_CHECK(cudaMemcpy(out.data(), dev, n * 4, cudaMemcpyDeviceToHost));
  } else {
    std::vector<uint16_t> bits(n);
    KITE_CUDA_CHECK(cudaMemcpy(bits.data(), dev, n * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(bf16_t{bits[i]});
  }
  return out;
}

std::vector<int32_t> download_ints(const void* dev, size_t n) {
  KITE_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<int32_t> out(n);
  KITE_CUDA_CHECK(cudaMemcpy(out.data(), dev, n * 4, cudaMemcpyDeviceToHost));
  return out;
}

OpCheck check_within(const std::vector<float>& got, const std::vector<float>& ref, double bound,
                     const std::string& what) {
  OpCheck c;
  if (got.size() != ref.size()) {
    return {false, cat(what, ": ", got.size(), " values for ", ref.size())};
  }
  double num = 0, den = 0, worst = 0;
  size_t worst_i = 0, bad = 0;
  for (float r : ref) den += static_cast<double>(r) * r;
  const double rms = std::sqrt(den / std::max<size_t>(1, ref.size()));
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) {
      ++bad;
      continue;
    }
    const double e = static_cast<double>(got[i]) - ref[i];
    num += e * e;
    const double ratio = std::abs(e) / std::max<double>(std::abs(ref[i]), rms > 0 ? rms : 1.0);
    if (ratio > worst) {
      worst = ratio;
      worst_i = i;
    }
  }
  const double rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  c.ok = bad == 0 && rel_l2 <= bound && worst <= bound;
  c.detail = cat(what, ": rel_l2=", rel_l2, " worst_ratio=", worst, " at ", worst_i,
                 " non-finite=", bad, " bound=", bound);
  return c;
}

OpCheck check_each(const std::vector<float>& got, const std::vector<float>& ref,
                   const std::vector<double>& allowed, const std::string& what) {
  if (got.size() != ref.size() || allowed.size() != ref.size()) {
    return {false, what + ": size mismatch"};
  }
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::abs(static_cast<double>(got[i]) - ref[i]);
    if (!(e <= allowed[i])) {
      if (bad++ == 0) first = i;
    }
  }
  OpCheck c;
  c.ok = bad == 0;
  c.detail = cat(what, ": ", bad, " elements over their allowance");
  if (bad > 0) {
    c.detail += cat("; first at ", first, ": got ", got[first], " ref ", ref[first], " allowed ",
                    allowed[first]);
  }
  return c;
}

OpCheck check_equal(const std::vector<float>& got, const std::vector<float>& ref,
                    const std::string& what) {
  if (got.size() != ref.size()) return {false, what + ": size mismatch"};
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::memcmp(&got[i], &ref[i], 4) != 0) {
      if (bad++ == 0) first = i;
    }
  }
  OpCheck c;
  c.ok = bad == 0;
  c.detail = cat(what, ": ", bad, " elements differ (exact)");
  if (bad > 0) {
    c.detail += cat("; first at ", first, ": got ", got[first], " ref ", ref[first]);
  }
  return c;
}

OpCheck check_rel_l2(const std::vector<float>& got, const std::vector<float>& ref, double bound,
                     const std::string& what) {
  if (got.size() != ref.size()) return {false, what + ": size mismatch"};
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = static_cast<double>(got[i]) - ref[i];
    num += e * e;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return {rel <= bound, cat(what, ": rel_l2=", rel, " bound=", bound)};
}

OpCheck both(OpCheck a, const OpCheck& b) {
  a.ok = a.ok && b.ok;
  a.detail += "; " + b.detail;
  return a;
}

namespace {

// ---- embedding ---------------------------------------------------------------------------------

class EmbeddingRun : public OpRun {
 public:
  EmbeddingRun(DType dtype, int hidden, int n, uint32_t seed) : dtype_(dtype), hidden_(hidden) {
    std::mt19937 rng(seed);
    table_ = random_tensor(dtype, static_cast<size_t>(kVocab) * hidden, rng);
    ids_.resize(static_cast<size_t>(n));
    for (auto& id : ids_) id = static_cast<int32_t>(rng() % kVocab);
    ids_[0] = 0;
    if (n > 1) ids_[1] = kVocab - 1;
    ids_d_ = device_ints(ids_);
    out_ = poisoned(dtype, static_cast<size_t>(n) * hidden);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    EmbeddingParams p;
    p.token_ids = ids_d_.as<int32_t>();
    p.table = table_.ptr();
    p.out = out_.data();
    p.num_tokens = static_cast<int>(ids_.size());
    p.hidden = hidden_;
    p.vocab = kVocab;
    p.dtype = dtype_;
    embedding(p, dev, stream);
  }
  OpCheck check() override {
    const int64_t n = static_cast<int64_t>(ids_.size());
    std::vector<float> ref(static_cast<size_t>(n) * hidden_);
    cpu::embedding(TensorView(table_.host.data(), DType::kF32, {kVocab, hidden_}), ids_.data(), n,
                   ref.data(), nullptr);
    return check_equal(download(out_.data(), dtype_, ref.size()), ref, "rows");
  }
  double bytes() const override {
    return 2.0 * static_cast<double>(ids_.size()) * hidden_ * dtype_size(dtype_);
  }

 private:
  static constexpr int kVocab = 1003;
  DType dtype_;
  int hidden_;
  HostDeviceTensor table_;
  std::vector<int32_t> ids_;
  DeviceBuffer ids_d_, out_;
};

// ---- RMSNorm -----------------------------------------------------------------------------------

enum class NormMode { kPlain, kDelta, kGather };

// bf16: 2 roundings (x * r, then weight * that); with the fused add the residual sum is rounded
// too (3 for the output, 1 for the residual written back). f32: kF32Bound; the residual written
// back is the same float addition as the reference's (exact).
class RmsNormRun : public OpRun {
 public:
  RmsNormRun(DType dtype, int hidden, int n, NormMode mode, uint32_t seed)
      : dtype_(dtype), hidden_(hidden), n_(n), mode_(mode) {
    std::mt19937 rng(seed);
    const size_t elems = static_cast<size_t>(n) * hidden;
    res_ = random_tensor(dtype, elems, rng, -2.f, 2.f);
    del_ = random_tensor(dtype, elems, rng, -2.f, 2.f);
    w_ = random_tensor(dtype, static_cast<size_t>(hidden), rng, 0.5f, 1.5f);
    out_ = poisoned(dtype, elems);
    if (mode == NormMode::kGather) {
      rows_.resize(static_cast<size_t>(n));
      std::iota(rows_.rbegin(), rows_.rend(), 0);  // reversed, row 0 twice
      rows_[0] = 0;
      rows_d_ = device_ints(rows_);
    }
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    RmsNormParams p;
    p.residual = res_.ptr();
    p.delta = mode_ == NormMode::kPlain ? nullptr : del_.ptr();
    p.row_indices = mode_ == NormMode::kGather ? rows_d_.as<int32_t>() : nullptr;
    p.weight = w_.ptr();
    p.out = out_.data();
    p.num_rows = n_;
    p.hidden = hidden_;
    p.eps = kEps;
    p.dtype = dtype_;
    rms_norm(p, dev, stream);
  }
  OpCheck check() override {
    const bool f32 = dtype_ == DType::kF32;
    const size_t elems = res_.size();
    std::vector<float> ref(elems), ref_res = res_.host;
    const std::vector<float> got = download(out_.data(), dtype_, elems);
    const std::vector<float> got_res = download(res_.ptr(), dtype_, elems);
    if (mode_ == NormMode::kPlain) {
      cpu::rms_norm(res_.host.data(), w_.host.data(), n_, hidden_, kEps, ref.data(), nullptr);
      return both(check_within(got, ref, f32 ? kF32Bound : 2 * kBf16Unit, "out"),
                  check_equal(got_res, res_.host, "residual untouched"));
    }
    cpu::add_rms_norm(ref_res.data(), del_.host.data(), w_.host.data(), n_, hidden_, kEps,
                      ref.data(), nullptr);
    const double bound = f32 ? kF32Bound : 3 * kBf16Unit;
    if (mode_ == NormMode::kDelta) {
      return both(check_within(got, ref, bound, "out"),
                  f32 ? check_equal(got_res, ref_res, "residual")
                      : check_within(got_res, ref_res, kBf16Unit, "residual"));
    }
    std::vector<float> ref_g(elems);
    for (int i = 0; i < n_; ++i) {
      std::copy_n(ref.begin() + static_cast<int64_t>(rows_[i]) * hidden_, hidden_,
                  ref_g.begin() + static_cast<int64_t>(i) * hidden_);
    }
    return both(check_within(got, ref_g, bound, "gathered out"),
                check_equal(got_res, res_.host, "residual untouched by a gather"));
  }
  double bytes() const override {
    const int tensors = mode_ == NormMode::kPlain ? 2 : (mode_ == NormMode::kDelta ? 4 : 3);
    return static_cast<double>(tensors) * n_ * hidden_ * dtype_size(dtype_);
  }

 private:
  static constexpr float kEps = 1e-5f;
  DType dtype_;
  int hidden_, n_;
  NormMode mode_;
  HostDeviceTensor res_, del_, w_;
  DeviceBuffer out_, rows_d_;
  std::vector<int32_t> rows_;
};

// ---- RoPE + KV write ---------------------------------------------------------------------------

struct RopeShape {
  int tokens, nq, nkv, head_dim, block_size;
  bool qk_norm;
  RopeScaling::Type scaling;
};

// bf16 bound per element of a rotated pair (x1, x2), n = |(x1, x2)| of the reference:
//   2^-8 |ref_i|                     the output's rounding
// + 2^-8 * 2 n                       with q/k norm: its two roundings of the inputs, mixed by the
//                                    rotation
// + (|a| 2^-23 + 2^-22) n            the angle: float(pos) * float(inv_freq) in float32 (0.5 ulp
//                                    each) and sincosf (<= 2 ulp); the reference uses float64
// f32 bound: kF32Bound (|ref_i| + n) (the angle in double on both sides; product order only).
// The k cache holds exactly the rotated k left in the row, the v cache exactly v; slots of -1
// stay untouched.
class RopeRun : public OpRun {
 public:
  RopeRun(DType dtype, RopeShape s, uint32_t seed) : dtype_(dtype), s_(s) {
    std::mt19937 rng(seed);
    cfg_.head_dim = s.head_dim;
    cfg_.rope_theta = 500000.0;
    cfg_.rope_scaling.type = s.scaling;
    cfg_.rope_scaling.factor = 8.0;
    qkv_dim_ = (s.nq + 2 * s.nkv) * s.head_dim;
    qkv_ = random_tensor(dtype, static_cast<size_t>(s.tokens) * qkv_dim_, rng, -2.f, 2.f);
    qn_ = random_tensor(dtype, s.head_dim, rng, 0.5f, 1.5f);
    kn_ = random_tensor(dtype, s.head_dim, rng, 0.5f, 1.5f);
    num_blocks_ = (s.tokens + s.block_size - 1) / s.block_size + 3;
    std::vector<int32_t> perm(static_cast<size_t>(num_blocks_) * s.block_size);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    pos_.resize(s.tokens);
    slots_.resize(s.tokens);
    for (int t = 0; t < s.tokens; ++t) {
      pos_[t] = static_cast<int32_t>(rng() % 20000);
      slots_[t] = (t % 5 == 4) ? -1 : perm[t];
    }
    pos_d_ = device_ints(pos_);
    slots_d_ = device_ints(slots_);
    const std::vector<float> inv = rope_inv_freq(cfg_);
    const std::vector<double> inv64 = rope_inv_freq64(cfg_);
    inv_d_ = tensor_of(DType::kF32, inv);
    Result<DeviceBuffer> b = DeviceBuffer::allocate(inv64.size() * 8, "rope table");
    KITE_CHECK(b.ok());
    inv64_d_ = std::move(*b);
    KITE_CUDA_CHECK(
        cudaMemcpy(inv64_d_.data(), inv64.data(), inv64.size() * 8, cudaMemcpyHostToDevice));
    cache_elems_ = static_cast<size_t>(num_blocks_) * s.block_size * s.nkv * s.head_dim;
    kc_ = poisoned(dtype, cache_elems_);
    vc_ = poisoned(dtype, cache_elems_);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    RopeKvWriteParams p;
    p.qkv = qkv_.ptr();
    p.qkv_stride = qkv_dim_;
    p.positions = pos_d_.as<int32_t>();
    p.slot_mapping = slots_d_.as<int32_t>();
    p.inv_freq = static_cast<const float*>(inv_d_.ptr());
    p.inv_freq64 = inv64_d_.as<double>();
    p.q_norm = s_.qk_norm ? qn_.ptr() : nullptr;
    p.k_norm = s_.qk_norm ? kn_.ptr() : nullptr;
    p.k_cache = kc_.data();
    p.v_cache = vc_.data();
    p.num_tokens = s_.tokens;
    p.num_q_heads = s_.nq;
    p.num_kv_heads = s_.nkv;
    p.head_dim = s_.head_dim;
    p.block_size = s_.block_size;
    p.eps = 1e-6f;
    p.dtype = dtype_;
    rope_kv_write(p, dev, stream);
  }
  OpCheck check() override {
    const bool f32 = dtype_ == DType::kF32;
    const int T = s_.tokens, hd = s_.head_dim, half = hd / 2, nq = s_.nq, nkv = s_.nkv;
    const std::vector<double> inv_ref = cpu::rope_inv_freq(hd, cfg_.rope_theta, cfg_.rope_scaling);
    std::vector<float> ref = qkv_.host;
    if (s_.qk_norm) {
      cpu::head_rms_norm(ref.data(), T, qkv_dim_, nq, hd, qn_.host.data(), 1e-6f, nullptr);
      cpu::head_rms_norm(ref.data() + nq * hd, T, qkv_dim_, nkv, hd, kn_.host.data(), 1e-6f,
                         nullptr);
    }
    cpu::rope_neox(ref.data(), T, qkv_dim_, nq, hd, pos_.data(), inv_ref.data(), nullptr);
    cpu::rope_neox(ref.data() + nq * hd, T, qkv_dim_, nkv, hd, pos_.data(), inv_ref.data(),
                   nullptr);
    const int roundings = s_.qk_norm ? 3 : 1;
    std::vector<double> allowed(ref.size(), 0.0);  // v elements: exact copies
    for (int t = 0; t < T; ++t) {
      for (int h = 0; h < nq + nkv; ++h) {
        for (int i = 0; i < half; ++i) {
          const int64_t i1 = static_cast<int64_t>(t) * qkv_dim_ + h * hd + i, i2 = i1 + half;
          const double n = std::hypot(ref[i1], ref[i2]);
          if (f32) {
            allowed[i1] = kF32Bound * (std::abs(ref[i1]) + n);
            allowed[i2] = kF32Bound * (std::abs(ref[i2]) + n);
            continue;
          }
          const double angle = std::abs(static_cast<double>(pos_[t]) * inv_ref[i]);
          const double common = kBf16Unit * (roundings - 1) * n +
                                (angle * std::ldexp(1.0, -23) + std::ldexp(1.0, -22)) * n;
          allowed[i1] = kBf16Unit * std::abs(ref[i1]) + common;
          allowed[i2] = kBf16Unit * std::abs(ref[i2]) + common;
        }
      }
    }
    const std::vector<float> got = download(qkv_.ptr(), dtype_, ref.size());
    OpCheck c = check_each(got, ref, allowed, "qkv");
    c = both(c, check_rel_l2(got, ref, f32 ? kF32Bound : roundings * kBf16Unit, "qkv"));
    // Caches: ours [block, kv_head, offset, d]; the kernel's k row and v row at each slot.
    const std::vector<float> kgot = download(kc_.data(), dtype_, cache_elems_);
    const std::vector<float> vgot = download(vc_.data(), dtype_, cache_elems_);
    std::vector<float> kg, krow, vg, vref;
    size_t written = 0;
    for (int t = 0; t < T; ++t) {
      if (slots_[t] < 0) continue;
      const int64_t blk = slots_[t] / s_.block_size, off = slots_[t] % s_.block_size;
      for (int h = 0; h < nkv; ++h) {
        for (int d = 0; d < hd; ++d) {
          const int64_t mine = ((blk * nkv + h) * s_.block_size + off) * hd + d;
          const int64_t row = static_cast<int64_t>(t) * qkv_dim_;
          kg.push_back(kgot[mine]);
          krow.push_back(got[row + (nq + h) * hd + d]);
          vg.push_back(vgot[mine]);
          vref.push_back(qkv_.host[row + (nq + nkv + h) * hd + d]);
          ++written;
        }
      }
    }
    c = both(c, check_equal(kg, krow, "k cache = rotated k"));
    c = both(c, check_equal(vg, vref, "v cache = v"));
    size_t untouched = 0;
    for (float v : vgot) untouched += std::isnan(v) ? 1 : 0;
    if (untouched != cache_elems_ - written) {
      c.ok = false;
      c.detail +=
          cat("; v cache: ", cache_elems_ - untouched, " elements written, ", written, " expected");
    }
    return c;
  }
  double bytes() const override {
    const double row = static_cast<double>(s_.tokens) * qkv_dim_ * dtype_size(dtype_);
    return 2 * row;  // read and write the qkv rows (the cache writes are 2/3 of them again)
  }

 private:
  DType dtype_;
  RopeShape s_;
  ModelConfig cfg_;
  int qkv_dim_ = 0, num_blocks_ = 0;
  size_t cache_elems_ = 0;
  HostDeviceTensor qkv_, qn_, kn_, inv_d_;
  DeviceBuffer pos_d_, slots_d_, inv64_d_, kc_, vc_;
  std::vector<int32_t> pos_, slots_;
};

// ---- SiLU·mul ----------------------------------------------------------------------------------

// bf16: 2 roundings (silu(g), then the product). f32: kF32Bound.
class SiluMulRun : public OpRun {
 public:
  SiluMulRun(DType dtype, int inter, int n, uint32_t seed) : dtype_(dtype), inter_(inter), n_(n) {
    std::mt19937 rng(seed);
    gu_ = random_tensor(dtype, static_cast<size_t>(n) * 2 * inter, rng, -6.f, 6.f);
    out_ = poisoned(dtype, static_cast<size_t>(n) * inter);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    SiluMulParams p;
    p.gate_up = gu_.ptr();
    p.out = out_.data();
    p.num_tokens = n_;
    p.inter = inter_;
    p.dtype = dtype_;
    silu_mul(p, dev, stream);
  }
  OpCheck check() override {
    std::vector<float> ref(static_cast<size_t>(n_) * inter_);
    cpu::silu_mul(gu_.host.data(), n_, inter_, ref.data(), nullptr);
    return check_within(download(out_.data(), dtype_, ref.size()), ref,
                        dtype_ == DType::kF32 ? kF32Bound : 2 * kBf16Unit, "out");
  }
  double bytes() const override { return 3.0 * n_ * inter_ * dtype_size(dtype_); }

 private:
  DType dtype_;
  int inter_, n_;
  HostDeviceTensor gu_;
  DeviceBuffer out_;
};

// ---- argmax (the all-greedy sampler) -----------------------------------------------------------

// Exact: the lowest id among equal maxima, as cpu::argmax; rows with many exact ties.
class ArgmaxRun : public OpRun {
 public:
  ArgmaxRun(int64_t vocab, int rows, uint32_t seed) : vocab_(vocab), rows_(rows) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 3.f);
    std::vector<float> v(static_cast<size_t>(rows) * vocab);
    for (int r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < vocab; ++i) {
        const float x = nd(rng);
        v[static_cast<size_t>(r * vocab + i)] = r % 2 == 1 ? std::round(x) : x;  // odd rows: ties
      }
    }
    logits_ = tensor_of(DType::kF32, std::move(v));
    out_ = poisoned(DType::kI32, static_cast<size_t>(rows));
    Result<DeviceBuffer> ws = DeviceBuffer::allocate(argmax_workspace_bytes(rows), "argmax");
    KITE_CHECK(ws.ok());
    ws_ = std::move(*ws);
    KITE_CUDA_CHECK(cudaMemset(ws_.data(), 0, ws_.size()));
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    argmax_rows(static_cast<const float*>(logits_.ptr()), vocab_, rows_, out_.as<int32_t>(),
                ws_.data(), rows_, dev, stream);
  }
  OpCheck check() override {
    const std::vector<int32_t> got = download_ints(out_.data(), static_cast<size_t>(rows_));
    OpCheck c{true, cat("argmax of ", rows_, " rows")};
    for (int r = 0; r < rows_; ++r) {
      const int32_t want = cpu::argmax(logits_.host.data() + r * vocab_, vocab_);
      if (got[r] != want) {
        c.ok = false;
        c.detail += cat("; row ", r, ": got ", got[r], " want ", want);
      }
    }
    return c;
  }
  double bytes() const override { return 4.0 * rows_ * vocab_; }

 private:
  int64_t vocab_;
  int rows_;
  HostDeviceTensor logits_;
  DeviceBuffer out_, ws_;
};

const char* mode_name(NormMode m) {
  return m == NormMode::kPlain ? "plain" : (m == NormMode::kDelta ? "delta" : "gather");
}

const char* scaling_name(RopeScaling::Type t) {
  return t == RopeScaling::Type::kNone ? "none"
                                       : (t == RopeScaling::Type::kLinear ? "linear" : "llama3");
}

}  // namespace

void add_elementwise_cases(std::vector<OpCase>& cases) {
  for (DType d : {DType::kBF16, DType::kF32}) {
    for (int hidden : {4096, 77, 16}) {
      cases.push_back({"embedding", d, cat("h", hidden, "_n17"),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<EmbeddingRun>(d, hidden, 17, seed);
                       }});
    }
    // Vectorized (hidden % 8 == 0) and scalar rows; 128 rows of 4096 for the benchmark.
    for (auto [hidden, n] :
         std::vector<std::pair<int, int>>{{4096, 128}, {5120, 17}, {896, 3}, {100, 17}, {7, 1}}) {
      for (NormMode m : {NormMode::kPlain, NormMode::kDelta, NormMode::kGather}) {
        cases.push_back({"rms_norm", d, cat("h", hidden, "_n", n, "_", mode_name(m)),
                         [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                           return std::make_unique<RmsNormRun>(d, hidden, n, m, seed);
                         }});
      }
    }
    const RopeShape ropes[] = {
        {1, 32, 8, 128, 16, false, RopeScaling::Type::kLlama3},
        {17, 28, 4, 128, 16, false, RopeScaling::Type::kNone},
        {1000, 32, 8, 128, 16, true, RopeScaling::Type::kNone},
        {15, 8, 8, 64, 32, false, RopeScaling::Type::kLinear},
        {3, 16, 4, 256, 16, true, RopeScaling::Type::kNone},
        {128, 8, 4, 16, 16, false, RopeScaling::Type::kNone},
        {4, 8, 4, 8, 8, true, RopeScaling::Type::kNone},
    };
    for (const RopeShape& r : ropes) {
      const std::string shape =
          cat("t", r.tokens, "_q", r.nq, "_kv", r.nkv, "_hd", r.head_dim, "_bs", r.block_size,
              r.qk_norm ? "_qknorm" : "", "_", scaling_name(r.scaling));
      cases.push_back({"rope_kv_write", d, shape,
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<RopeRun>(d, r, seed);
                       }});
    }
    for (auto [inter, n] :
         std::vector<std::pair<int, int>>{{14336, 1}, {14336, 17}, {18944, 3}, {100, 17}}) {
      cases.push_back({"silu_mul", d, cat("i", inter, "_n", n),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<SiluMulRun>(d, inter, n, seed);
                       }});
    }
  }
  for (auto [vocab, rows] :
       std::vector<std::pair<int64_t, int>>{{128256, 1}, {128256, 17}, {32000, 3}, {1000, 5}}) {
    cases.push_back({"argmax", DType::kF32, cat("v", vocab, "_r", rows),
                     [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                       return std::make_unique<ArgmaxRun>(vocab, rows, seed);
                     }});
  }
}

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> c;
    add_elementwise_cases(c);
    add_linear_cases(c);
    add_attention_cases(c);
    add_fp8_cases(c);
    add_family_cases(c);
    return c;
  }();
  return cases;
}

}  // namespace kite::cuda::test
