// The op table's FP8 cases, against a CPU emulation built from kite's host FP8 code
// (checkpoint/dequant.h, core/dtype.h):
//   quantize_fp8     activations to E4M3 per token / per 128-column group: bytes and scales
//                    bit-identical to quantize_fp8_rows (the same rule, the same rounding)
//   dequantize_fp8   an E4M3 weight with per-row / block scales to bf16: bit-identical to
//                    bf16(fp8 * scale)
//   gemv (f8e4m3)    W8A16: fp8 weights dequantized in registers, bf16 x, FP32 dot; bound as the
//                    bf16 GEMV's (the dequantized weight is exact in F32): one output rounding
//   gemm (f8e4m3)    W8A8: x quantized per token (or per token and group), cuBLASLt's scaled FP8
//                    GEMM; the reference multiplies the dequantized x' and w' in F32, so only the
//                    output rounding and the accumulation order differ: 2^-8 |y| + 1e-5 A
//   fused_rms_norm_fp8, fused_silu_mul_fp8, fused_gelu_tanh_mul_fp8
//                    the producers that also write the FP8 copy of their bf16 output for an FP8
//                    linear (RmsNormParams::fp8, SiluMulParams::fp8), per token or 1x128 groups
//                    stored group-major: every output (bf16 rows, residual, E4M3 bytes, scales)
//                    bit-identical to the unfused pair on the device (the op, then quantize_fp8),
//                    the E4M3 bytes and scales bit-identical to quantize_fp8_rows of the bf16
//                    rows, and the bf16 rows within the plain op's bound of the CPU's F32 op
//   unfused_...      that unfused pair (two launches), for kite_cuda_bench --ops to time against
//                    the fused kernel at 2048 and 64 rows: both report the same bytes (the
//                    pair's inputs and outputs), so their GB/s compare as 1 / time
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <thread>

#include "backend/cpu/ops.h"
#include "backend/cuda/activation.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/norm.h"
#include "checkpoint/dequant.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "op_table.h"

namespace kite::cuda::test {
namespace {

ThreadPool& pool() {
  static ThreadPool p(std::max(1u, std::thread::hardware_concurrency()));
  return p;
}

DeviceBuffer upload_bytes(const void* data, size_t bytes) {
  auto b = DeviceBuffer::allocate(bytes, "fp8 test");
  KITE_CHECK(b.ok());
  KITE_CUDA_CHECK(cudaMemcpy(b->data(), data, bytes, cudaMemcpyHostToDevice));
  return std::move(*b);
}

// A random FP8 weight [n, k] with per-row (block 0) or 128x128 block scales, and its
// dequantized F32 values (fp8 * scale).
struct Fp8Weight {
  std::vector<uint8_t> q;
  std::vector<float> scale;
  std::vector<float> dequant;
  DeviceBuffer q_d, scale_d;
};

Fp8Weight random_fp8_weight(int n, int k, int block, std::mt19937& rng) {
  Fp8Weight w;
  w.q.resize(static_cast<size_t>(n) * k);
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : w.q) {
    do {
      b = static_cast<uint8_t>(byte(rng));
    } while ((b & 0x7f) == 0x7f);  // no NaN codes
  }
  const int srows = block == 0 ? n : (n + block - 1) / block;
  const int scols = block == 0 ? 1 : (k + block - 1) / block;
  std::uniform_real_distribution<float> sd(1e-4f, 4e-4f);
  w.scale.resize(static_cast<size_t>(srows) * scols);
  for (float& s : w.scale) s = sd(rng);
  w.dequant.resize(w.q.size());
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < k; ++c) {
      const float s = block == 0 ? w.scale[r] : w.scale[(r / block) * scols + c / block];
      w.dequant[static_cast<size_t>(r) * k + c] =
          fp8e4m3_to_f32(w.q[static_cast<size_t>(r) * k + c]) * s;
    }
  }
  w.q_d = upload_bytes(w.q.data(), w.q.size());
  w.scale_d = upload_bytes(w.scale.data(), w.scale.size() * 4);
  return w;
}

// Host emulation of quantize_fp8: per row (group 0) or per `group` columns.
void emulate_quantize(const std::vector<float>& x, int rows, int cols, int group,
                      std::vector<uint8_t>* q, std::vector<float>* scale) {
  const int g = group == 0 ? cols : group;
  const int groups = (cols + g - 1) / g;
  q->assign(static_cast<size_t>(rows) * cols, 0);
  scale->assign(static_cast<size_t>(rows) * groups, 0.f);
  std::vector<float> chunk;
  for (int r = 0; r < rows; ++r) {
    for (int gi = 0; gi < groups; ++gi) {
      const int c0 = gi * g, c1 = std::min(cols, c0 + g);
      chunk.assign(x.begin() + static_cast<int64_t>(r) * cols + c0,
                   x.begin() + static_cast<int64_t>(r) * cols + c1);
      std::vector<uint8_t> cq(chunk.size());
      float s = 0;
      quantize_fp8_rows(chunk.data(), 1, c1 - c0, cq.data(), &s);
      std::copy(cq.begin(), cq.end(), q->begin() + static_cast<int64_t>(r) * cols + c0);
      (*scale)[static_cast<size_t>(r) * groups + gi] = s;
    }
  }
}

std::vector<float> reference_linear(const std::vector<float>& x, int m, int k,
                                    const std::vector<float>& w, int n) {
  std::vector<float> y(static_cast<size_t>(m) * n);
  cpu::linear(x.data(), m, k, TensorView(const_cast<float*>(w.data()), DType::kF32, {n, k}),
              nullptr, y.data(), n, &pool());
  return y;
}

// Allowance of a bf16 output of an F32 dot product of length k: its rounding, 2^-8 |y|, plus
// `accumulation` A for the accumulation order, A = sum_k |x| |w| (itself a product of the
// magnitudes): 1e-5 for an F32 accumulator. Hopper's FP8 tensor cores add their products with
// fewer accumulator bits than F32 (about 14, DeepSeek-V3 report section 3.3.2) before cuBLASLt
// promotes the partial sums: the W8A8 GEMM gets 2^-13 (run 16 measured up to 3e-5 A with the
// per-channel scales, over the F32 allowance at 1% of the elements).
constexpr double kF32Accumulation = 1e-5;
constexpr double kFp8TensorCoreAccumulation = 1.0 / 8192;
std::vector<double> linear_allowance(const std::vector<float>& x, int m, int k,
                                     const std::vector<float>& w, int n,
                                     const std::vector<float>& ref,
                                     double accumulation = kF32Accumulation) {
  std::vector<float> ax(x.size()), aw(w.size());
  std::transform(x.begin(), x.end(), ax.begin(), [](float v) { return std::fabs(v); });
  std::transform(w.begin(), w.end(), aw.begin(), [](float v) { return std::fabs(v); });
  const std::vector<float> a = reference_linear(ax, m, k, aw, n);
  std::vector<double> allowed(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    allowed[i] = kBf16Unit * std::fabs(ref[i]) + accumulation * a[i] + 1e-30;
  }
  return allowed;
}

// n bytes on the device, every byte 0xff.
DeviceBuffer poisoned_bytes(size_t n) {
  const std::vector<uint8_t> ff(n, 0xff);
  return upload_bytes(ff.data(), n);
}

class QuantizeRun : public OpRun {
 public:
  QuantizeRun(int rows, int cols, int group, uint32_t seed)
      : rows_(rows), cols_(cols), group_(group) {
    std::mt19937 rng(seed);
    x_ = random_tensor(DType::kBF16, static_cast<size_t>(rows) * cols, rng, -3.f, 3.f);
    if (rows > 1) {  // an all-zero row: scale 1
      for (int c = 0; c < cols; ++c) x_.host[static_cast<size_t>(cols) + c] = 0.f;
      x_ = tensor_of(DType::kBF16, x_.host);
    }
    const int groups = group == 0 ? 1 : (cols + group - 1) / group;
    q_ = poisoned_bytes(static_cast<size_t>(rows) * cols);
    scale_ = poisoned(DType::kF32, static_cast<size_t>(rows) * groups);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    QuantizeFp8Params p;
    p.x = x_.ptr();
    p.x_stride = cols_;
    p.rows = rows_;
    p.cols = cols_;
    p.out.group = group_;
    p.out.q = q_.as<uint8_t>();
    p.out.q_stride = cols_;
    p.out.scale = scale_.as<float>();
    quantize_fp8(p, dev, stream);
  }
  OpCheck check() override {
    std::vector<uint8_t> q, got(static_cast<size_t>(rows_) * cols_);
    std::vector<float> scale;
    emulate_quantize(x_.host, rows_, cols_, group_, &q, &scale);
    KITE_CUDA_CHECK(cudaMemcpy(got.data(), q_.data(), got.size(), cudaMemcpyDeviceToHost));
    const std::vector<float> got_scale = download(scale_.data(), DType::kF32, scale.size());
    OpCheck c = check_equal(got_scale, scale, "scales");
    size_t bad = 0;
    for (size_t i = 0; i < q.size(); ++i) bad += q[i] != got[i] ? 1 : 0;
    OpCheck b;
    b.ok = bad == 0;
    b.detail = cat(bad, " of ", q.size(), " E4M3 bytes differ from quantize_fp8_rows");
    return both(c, b);
  }
  double bytes() const override { return static_cast<double>(rows_) * cols_ * 3; }

 private:
  int rows_, cols_, group_;
  HostDeviceTensor x_;
  DeviceBuffer q_, scale_;
};

class DequantizeRun : public OpRun {
 public:
  DequantizeRun(int n, int k, int block, uint32_t seed) : n_(n), k_(k), block_(block) {
    std::mt19937 rng(seed);
    w_ = random_fp8_weight(n, k, block, rng);
    out_ = poisoned(DType::kBF16, static_cast<size_t>(n) * k);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    DequantizeFp8Params p;
    p.w = w_.q_d.as<uint8_t>();
    p.scale = w_.scale_d.as<float>();
    p.block = block_;
    p.rows = n_;
    p.cols = k_;
    p.out = out_.data();
    dequantize_fp8_weight(p, dev, stream);
  }
  OpCheck check() override {
    std::vector<float> ref(w_.dequant.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = bf16_to_f32(f32_to_bf16(w_.dequant[i]));
    return check_equal(download(out_.data(), DType::kBF16, ref.size()), ref, "bf16(fp8 * scale)");
  }
  double bytes() const override { return static_cast<double>(n_) * k_ * 3; }

 private:
  int n_, k_, block_;
  Fp8Weight w_;
  DeviceBuffer out_;
};

class Fp8GemvRun : public OpRun {
 public:
  Fp8GemvRun(int n, int k, int m, int block, bool residual, uint32_t seed)
      : n_(n), k_(k), m_(m), block_(block), residual_(residual) {
    std::mt19937 rng(seed);
    x_ = random_tensor(DType::kBF16, static_cast<size_t>(m) * k, rng);
    w_ = random_fp8_weight(n, k, block, rng);
    if (residual) {
      y_ = random_tensor(DType::kBF16, static_cast<size_t>(m) * n, rng);
      y_before_ = y_.host;
    } else {
      y_out_ = poisoned(DType::kBF16, static_cast<size_t>(m) * n);
    }
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    GemvParams p;
    p.x = x_.ptr();
    p.w = w_.q_d.data();
    p.w_dtype = DType::kF8E4M3;
    p.w_scale = w_.scale_d.as<float>();
    p.w_scale_block = block_;
    p.m = m_;
    p.n = n_;
    p.k = k_;
    p.x_stride = k_;
    p.y_stride = n_;
    p.y = residual_ ? y_.ptr() : y_out_.data();
    if (residual_) p.residual = p.y;
    gemv(p, dev, stream);
  }
  OpCheck check() override {
    std::vector<float> ref = reference_linear(x_.host, m_, k_, w_.dequant, n_);
    std::vector<double> allowed = linear_allowance(x_.host, m_, k_, w_.dequant, n_, ref);
    if (residual_) {
      for (size_t i = 0; i < ref.size(); ++i) {
        allowed[i] += kBf16Unit * std::fabs(ref[i]);  // the product is rounded before the add
        ref[i] += y_before_[i];
        allowed[i] += kBf16Unit * std::fabs(ref[i]);
      }
    }
    const void* y = residual_ ? y_.ptr() : y_out_.data();
    return check_each(download(y, DType::kBF16, ref.size()), ref, allowed, "W8A16 GEMV");
  }
  double bytes() const override {
    return static_cast<double>(n_) * k_ + 2.0 * m_ * (k_ + n_) + 4.0 * w_.scale.size();
  }

 private:
  int n_, k_, m_, block_;
  bool residual_;
  HostDeviceTensor x_, y_;
  std::vector<float> y_before_;
  Fp8Weight w_;
  DeviceBuffer y_out_;
};

class Fp8GemmRun : public OpRun {
 public:
  Fp8GemmRun(int m, int n, int k, int block, uint32_t seed) : m_(m), n_(n), k_(k), block_(block) {
    std::mt19937 rng(seed);
    x_ = random_tensor(DType::kBF16, static_cast<size_t>(m) * k, rng, -2.f, 2.f);
    w_ = random_fp8_weight(n, k, block, rng);
    const int groups = block == 0 ? 1 : (k + kFp8Group - 1) / kFp8Group;
    xq_ = poisoned_bytes(static_cast<size_t>(m) * k);
    xs_ = poisoned(DType::kF32, static_cast<size_t>(m) * groups);
    y_ = poisoned(DType::kBF16, static_cast<size_t>(m) * n);
    auto g = GemmRunner::create();
    KITE_CHECK(g.ok()) << g.status().to_string();
    gemm_ = std::move(*g);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    QuantizeFp8Params q;
    q.x = x_.ptr();
    q.x_stride = k_;
    q.rows = m_;
    q.cols = k_;
    q.out.group = block_ == 0 ? 0 : kFp8Group;
    q.out.group_major = block_ != 0;  // the GEMM's VEC128_32F layout
    q.out.q = xq_.as<uint8_t>();
    q.out.q_stride = k_;
    q.out.scale = xs_.as<float>();
    quantize_fp8(q, dev, stream);
    GemmArgs a;
    a.x = xq_.data();
    a.ldx = k_;
    a.w = w_.q_d.data();
    a.ldw = k_;
    a.y = y_.data();
    a.ldy = n_;
    a.m = m_;
    a.n = n_;
    a.k = k_;
    a.dtype = DType::kF8E4M3;
    a.out_dtype = DType::kBF16;
    a.fp8_scaling = block_ == 0 ? Fp8Scaling::kRowwise : Fp8Scaling::kBlock;
    a.w_scale = w_.scale_d.as<float>();
    a.x_scale = xs_.as<float>();
    status_ = gemm_->gemm(a, stream);
  }
  OpCheck check() override {
    if (!status_.ok()) {
      OpCheck c;
      c.ok = false;
      c.detail = "cuBLASLt scaled FP8 GEMM: " + status_.to_string();
      return c;
    }
    // The emulated W8A8 product: x quantized as the kernel does, both operands dequantized.
    std::vector<uint8_t> q;
    std::vector<float> s;
    const int group = block_ == 0 ? 0 : kFp8Group;
    emulate_quantize(x_.host, m_, k_, group, &q, &s);
    const int groups = group == 0 ? 1 : (k_ + group - 1) / group;
    std::vector<float> xd(q.size());
    for (int r = 0; r < m_; ++r) {
      for (int c = 0; c < k_; ++c) {
        const size_t at = static_cast<size_t>(r) * k_ + c;
        xd[at] = fp8e4m3_to_f32(q[at]) *
                 s[static_cast<size_t>(r) * groups + (group == 0 ? 0 : c / group)];
      }
    }
    const std::vector<float> ref = reference_linear(xd, m_, k_, w_.dequant, n_);
    const std::vector<double> allowed =
        linear_allowance(xd, m_, k_, w_.dequant, n_, ref, kFp8TensorCoreAccumulation);
    return check_each(download(y_.data(), DType::kBF16, ref.size()), ref, allowed, "W8A8 GEMM");
  }
  double bytes() const override {
    return static_cast<double>(n_) * k_ + 3.0 * m_ * k_ + 2.0 * m_ * n_;
  }
  double flops() const override { return 2.0 * m_ * n_ * k_; }

 private:
  int m_, n_, k_, block_;
  HostDeviceTensor x_;
  Fp8Weight w_;
  DeviceBuffer xq_, xs_, y_;
  std::unique_ptr<GemmRunner> gemm_;
  Status status_;
};

// ---- producers that write an FP8 copy (RMSNorm, the gated activations) -------------------------

// One FP8 copy of a [rows, cols] bf16 tensor on the device (poisoned): E4M3 bytes, row stride
// cols, and scales per row (group 0) or per 128 columns stored group-major (scale[g * rows + r],
// the layout the runner's scaled FP8 GEMM takes).
struct Fp8Copy {
  int rows = 0, cols = 0, group = 0;
  DeviceBuffer q, scale;

  Fp8Copy() = default;
  Fp8Copy(int r, int c, int g) : rows(r), cols(c), group(g) {
    q = poisoned_bytes(static_cast<size_t>(r) * c);
    scale = poisoned(DType::kF32, static_cast<size_t>(r) * groups());
  }
  int groups() const { return group == 0 ? 1 : (cols + group - 1) / group; }
  Fp8Output output() const {
    Fp8Output o;
    o.q = q.as<uint8_t>();
    o.q_stride = cols;
    o.scale = scale.as<float>();
    o.group = group;
    o.group_major = group != 0;
    return o;
  }
  // quantize_fp8 of x into this copy.
  void quantize(const void* x, const DeviceContext& dev, cudaStream_t stream) const {
    QuantizeFp8Params p;
    p.x = x;
    p.x_stride = cols;
    p.rows = rows;
    p.cols = cols;
    p.out = output();
    quantize_fp8(p, dev, stream);
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> b(static_cast<size_t>(rows) * cols);
    KITE_CUDA_CHECK(cudaMemcpy(b.data(), q.data(), b.size(), cudaMemcpyDeviceToHost));
    return b;
  }
  std::vector<float> scales() const {
    return download(scale.data(), DType::kF32, static_cast<size_t>(rows) * groups());
  }
};

OpCheck check_bytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                    const std::string& what) {
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) bad += got[i] != want[i] ? 1 : 0;
  return {bad == 0 && got.size() == want.size(),
          cat(what, ": ", bad, " of ", want.size(), " E4M3 bytes differ")};
}

// got == want, byte for byte and scale for scale.
OpCheck check_same_fp8(const Fp8Copy& got, const Fp8Copy& want, const std::string& what) {
  return both(check_bytes(got.bytes(), want.bytes(), what),
              check_equal(got.scales(), want.scales(), what + " scales"));
}

// got == the CPU emulation (quantize_fp8_rows per row or 128-column group) of the bf16 rows y.
OpCheck check_fp8_emulation(const Fp8Copy& got, const std::vector<float>& y) {
  std::vector<uint8_t> q;
  std::vector<float> s;
  emulate_quantize(y, got.rows, got.cols, got.group, &q, &s);
  std::vector<float> want = s;
  if (got.group != 0) {  // [rows, groups] -> group-major
    const int groups = got.groups();
    for (int r = 0; r < got.rows; ++r) {
      for (int g = 0; g < groups; ++g) {
        want[static_cast<size_t>(g) * got.rows + r] = s[static_cast<size_t>(r) * groups + g];
      }
    }
  }
  return both(check_bytes(got.bytes(), q, "vs quantize_fp8_rows"),
              check_equal(got.scales(), want, "scales vs quantize_fp8_rows"));
}

const char* group_name(int group) { return group == 0 ? "token" : "group128"; }

// Residual-add + RMSNorm (delta) or RMSNorm (plain), bf16, with the FP8 copy of its output:
// fused (one kernel) or the unfused pair (rms_norm, then quantize_fp8).
class NormFp8Run : public OpRun {
 public:
  NormFp8Run(const DeviceContext& dev, int hidden, int n, bool delta, int group, bool fused,
             uint32_t seed)
      : dev_(&dev), hidden_(hidden), n_(n), delta_(delta), fused_(fused) {
    std::mt19937 rng(seed);
    const size_t elems = static_cast<size_t>(n) * hidden;
    res_ = random_tensor(DType::kBF16, elems, rng, -2.f, 2.f);
    del_ = random_tensor(DType::kBF16, elems, rng, -2.f, 2.f);
    w_ = random_tensor(DType::kBF16, static_cast<size_t>(hidden), rng, 0.5f, 1.5f);
    if (n > 1) {  // an all-zero row (plain: the residual; delta: residual + delta): scale 1
      for (int c = 0; c < hidden; ++c) {
        res_.host[static_cast<size_t>(hidden) + c] = 0.f;
        del_.host[static_cast<size_t>(hidden) + c] = 0.f;
      }
      res_ = tensor_of(DType::kBF16, res_.host);
      del_ = tensor_of(DType::kBF16, del_.host);
    }
    out_ = poisoned(DType::kBF16, elems);
    fp8_ = Fp8Copy(n, hidden, group);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    run(res_.ptr(), out_.data(), fp8_, fused_, dev, stream);
  }
  OpCheck check() override {
    const size_t elems = res_.size();
    const std::vector<float> got = download(out_.data(), DType::kBF16, elems);
    const std::vector<float> got_res = download(res_.ptr(), DType::kBF16, elems);
    // The unfused pair on fresh copies of the inputs.
    HostDeviceTensor res2 = tensor_of(DType::kBF16, res_.host);
    DeviceBuffer out2 = poisoned(DType::kBF16, elems);
    Fp8Copy ref(n_, hidden_, fp8_.group);
    run(res2.ptr(), out2.data(), ref, false, *dev_, nullptr);
    KITE_CUDA_CHECK(cudaDeviceSynchronize());
    OpCheck c = both(
        check_equal(got, download(out2.data(), DType::kBF16, elems), "out vs unfused"),
        check_equal(got_res, download(res2.ptr(), DType::kBF16, elems), "residual vs unfused"));
    c = both(c, check_same_fp8(fp8_, ref, "fp8 vs unfused"));
    c = both(c, check_fp8_emulation(fp8_, got));
    // The bf16 rows against the CPU's F32 RMSNorm (RmsNormRun's bounds).
    std::vector<float> want(elems), want_res = res_.host;
    if (!delta_) {
      cpu::rms_norm(res_.host.data(), w_.host.data(), n_, hidden_, kEps, want.data(), nullptr);
      return both(c, check_within(got, want, 2 * kBf16Unit, "out vs CPU"));
    }
    cpu::add_rms_norm(want_res.data(), del_.host.data(), w_.host.data(), n_, hidden_, kEps,
                      want.data(), nullptr);
    c = both(c, check_within(got, want, 3 * kBf16Unit, "out vs CPU"));
    return both(c, check_within(got_res, want_res, kBf16Unit, "residual vs CPU"));
  }
  double bytes() const override {
    // Reads residual (+ delta) and writes out (+ residual), then the FP8 copy and its scales.
    const double rows = static_cast<double>(n_) * hidden_;
    return (delta_ ? 8.0 : 4.0) * rows + rows + 4.0 * fp8_.rows * fp8_.groups();
  }

 private:
  static constexpr float kEps = 1e-5f;

  void run(void* residual, void* out, const Fp8Copy& fp8, bool fused, const DeviceContext& dev,
           cudaStream_t stream) const {
    RmsNormParams p;
    p.residual = residual;
    p.delta = delta_ ? del_.ptr() : nullptr;
    p.weight = w_.ptr();
    p.out = out;
    p.num_rows = n_;
    p.hidden = hidden_;
    p.eps = kEps;
    p.dtype = DType::kBF16;
    if (fused) p.fp8 = fp8.output();
    rms_norm(p, dev, stream);
    if (!fused) fp8.quantize(out, dev, stream);
  }

  const DeviceContext* dev_;
  int hidden_, n_;
  bool delta_, fused_;
  HostDeviceTensor res_, del_, w_;
  DeviceBuffer out_;
  Fp8Copy fp8_;
};

// SiLU·mul or GeLU-tanh·mul, bf16, with the FP8 copy of its output: fused or the unfused pair.
class GatedFp8Run : public OpRun {
 public:
  GatedFp8Run(const DeviceContext& dev, bool gelu, int inter, int n, int group, bool fused,
              uint32_t seed)
      : dev_(&dev), gelu_(gelu), inter_(inter), n_(n), fused_(fused) {
    std::mt19937 rng(seed);
    gu_ = random_tensor(DType::kBF16, static_cast<size_t>(n) * 2 * inter, rng, -6.f, 6.f);
    if (n > 2) {  // an all-zero gate row (row 1) and a row of one large value (row 2)
      for (int c = 0; c < inter; ++c) {
        gu_.host[static_cast<size_t>(2) * inter + c] = 0.f;
        gu_.host[static_cast<size_t>(4) * inter + c] = c == inter / 2 ? 6.f : 1e-3f;
      }
      gu_ = tensor_of(DType::kBF16, gu_.host);
    }
    out_ = poisoned(DType::kBF16, static_cast<size_t>(n) * inter);
    fp8_ = Fp8Copy(n, inter, group);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    run(out_.data(), fp8_, fused_, dev, stream);
  }
  OpCheck check() override {
    const size_t elems = static_cast<size_t>(n_) * inter_;
    const std::vector<float> got = download(out_.data(), DType::kBF16, elems);
    DeviceBuffer out2 = poisoned(DType::kBF16, elems);
    Fp8Copy ref(n_, inter_, fp8_.group);
    run(out2.data(), ref, false, *dev_, nullptr);
    KITE_CUDA_CHECK(cudaDeviceSynchronize());
    OpCheck c = check_equal(got, download(out2.data(), DType::kBF16, elems), "out vs unfused");
    c = both(c, check_same_fp8(fp8_, ref, "fp8 vs unfused"));
    c = both(c, check_fp8_emulation(fp8_, got));
    std::vector<float> want(elems);  // the CPU's F32 op (SiluMulRun's bound)
    if (gelu_) {
      cpu::gelu_tanh_mul(gu_.host.data(), n_, inter_, want.data(), nullptr);
    } else {
      cpu::silu_mul(gu_.host.data(), n_, inter_, want.data(), nullptr);
    }
    return both(c, check_within(got, want, 2 * kBf16Unit, "out vs CPU"));
  }
  double bytes() const override {
    const double rows = static_cast<double>(n_) * inter_;
    return 6.0 * rows + rows + 4.0 * fp8_.rows * fp8_.groups();
  }

 private:
  void run(void* out, const Fp8Copy& fp8, bool fused, const DeviceContext& dev,
           cudaStream_t stream) const {
    SiluMulParams p;
    p.gate_up = gu_.ptr();
    p.out = out;
    p.num_tokens = n_;
    p.inter = inter_;
    p.dtype = DType::kBF16;
    if (fused) p.fp8 = fp8.output();
    if (gelu_) {
      gelu_tanh_mul(p, dev, stream);
    } else {
      silu_mul(p, dev, stream);
    }
    if (!fused) fp8.quantize(out, dev, stream);
  }

  const DeviceContext* dev_;
  bool gelu_;
  int inter_, n_;
  bool fused_;
  HostDeviceTensor gu_;
  DeviceBuffer out_;
  Fp8Copy fp8_;
};

}  // namespace

void add_fp8_cases(std::vector<OpCase>& cases) {
  for (int group : {0, kFp8Group}) {
    for (auto [rows, cols] : {std::pair{3, 1000}, {17, 4096}, {512, 14336}}) {
      cases.push_back({"quantize_fp8", DType::kBF16,
                       cat(group == 0 ? "token" : "group128", "_r", rows, "_c", cols),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<QuantizeRun>(rows, cols, group, seed);
                       }});
    }
  }
  for (int block : {0, 128}) {
    for (auto [n, k] : {std::pair{300, 1000}, {4096, 4096}}) {
      cases.push_back({"dequantize_fp8", DType::kF8E4M3,
                       cat(block == 0 ? "row" : "block", "_n", n, "_k", k),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<DequantizeRun>(n, k, block, seed);
                       }});
    }
  }
  struct GemvShape {
    int n, k, block;
    bool residual;
  };
  const GemvShape gemvs[] = {{1000, 4096, 0, false},   {4099, 520, 0, false},
                             {6144, 4096, 0, false},   {4096, 4096, 0, true},
                             {1000, 4096, 128, false}, {28672, 4096, 128, false},
                             {4096, 14336, 128, true}};
  for (const GemvShape& g : gemvs) {
    for (int m : {1, 3, kGemvMaxM}) {
      cases.push_back({"gemv", DType::kF8E4M3,
                       cat(g.block == 0 ? "row" : "block", g.residual ? "_residual" : "", "_n", g.n,
                           "_k", g.k, "_m", m),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<Fp8GemvRun>(g.n, g.k, m, g.block, g.residual,
                                                             seed);
                       }});
    }
  }
  // The producers' FP8 copies: awkward sizes (rows 1, 3, 17, 257; widths that are not a multiple
  // of 128 or of 8) checked, and one prefill-sized shape timed fused against unfused.
  for (int group : {0, kFp8Group}) {
    for (auto [hidden, n] : std::vector<std::pair<int, int>>{
             {4096, 1}, {4096, 257}, {5120, 17}, {1000, 3}, {1000, 17}, {100, 17}, {7, 3}}) {
      for (bool delta : {false, true}) {
        cases.push_back(
            {"fused_rms_norm_fp8", DType::kBF16,
             cat("h", hidden, "_n", n, delta ? "_delta_" : "_plain_", group_name(group)),
             [=](const DeviceContext& dev, uint32_t seed) -> std::unique_ptr<OpRun> {
               return std::make_unique<NormFp8Run>(dev, hidden, n, delta, group, true, seed);
             }});
      }
    }
    // Timed pairs: a prefill-sized step and a batch just above the GEMV (few rows: one block
    // per row in both the fused kernel and the per-token quantize_fp8).
    for (int n : {2048, 64}) {
      for (bool fused : {true, false}) {
        cases.push_back({fused ? "fused_rms_norm_fp8" : "unfused_rms_norm_fp8", DType::kBF16,
                         cat("h4096_n", n, "_delta_", group_name(group)),
                         [=](const DeviceContext& dev, uint32_t seed) -> std::unique_ptr<OpRun> {
                           return std::make_unique<NormFp8Run>(dev, 4096, n, true, group, fused,
                                                               seed);
                         }});
      }
    }
    for (bool gelu : {false, true}) {
      const char* op = gelu ? "gelu_tanh_mul_fp8" : "silu_mul_fp8";
      for (auto [inter, n] : std::vector<std::pair<int, int>>{
               {14336, 1}, {14336, 257}, {1000, 3}, {1000, 17}, {100, 17}, {77, 3}}) {
        cases.push_back(
            {cat("fused_", op), DType::kBF16, cat("i", inter, "_n", n, "_", group_name(group)),
             [=](const DeviceContext& dev, uint32_t seed) -> std::unique_ptr<OpRun> {
               return std::make_unique<GatedFp8Run>(dev, gelu, inter, n, group, true, seed);
             }});
      }
    }
    for (int n : {2048, 64}) {
      for (bool fused : {true, false}) {
        cases.push_back({fused ? "fused_silu_mul_fp8" : "unfused_silu_mul_fp8", DType::kBF16,
                         cat("i14336_n", n, "_", group_name(group)),
                         [=](const DeviceContext& dev, uint32_t seed) -> std::unique_ptr<OpRun> {
                           return std::make_unique<GatedFp8Run>(dev, false, 14336, n, group, fused,
                                                                seed);
                         }});
      }
    }
  }
  for (int block : {0, 128}) {
    for (auto [m, n, k] : {std::tuple{16, 1024, 1024}, {128, 6144, 4096}, {256, 4096, 14336}}) {
      cases.push_back({"gemm", DType::kF8E4M3,
                       cat(block == 0 ? "rowwise" : "block", "_m", m, "_n", n, "_k", k),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<Fp8GemmRun>(m, n, k, block, seed);
                       },
                       [](const DeviceContext& dev) -> std::string {
                         return dev.cc_major() < 9 ? "scaled FP8 GEMMs need sm_90 or newer" : "";
                       }});
    }
  }
}

}  // namespace kite::cuda::test
