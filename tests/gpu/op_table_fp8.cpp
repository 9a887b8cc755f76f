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
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <thread>

#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
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
      w.dequant[static_cast<size_t>(r) * k + c] = fp8e4m3_to_f32(w.q[static_cast<size_t>(r) * k + c]) * s;
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
  QuantizeRun(int rows, int cols, int group, uint32_t seed) : rows_(rows), cols_(cols), group_(group) {
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
    p.group = group_;
    p.q = q_.as<uint8_t>();
    p.q_stride = cols_;
    p.scale = scale_.as<float>();
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
  Fp8GemmRun(int m, int n, int k, int block, uint32_t seed)
      : m_(m), n_(n), k_(k), block_(block) {
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
    q.group = block_ == 0 ? 0 : kFp8Group;
    q.group_major = block_ != 0;  // the GEMM's VEC128_32F layout
    q.q = xq_.as<uint8_t>();
    q.q_stride = k_;
    q.scale = xs_.as<float>();
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
  const GemvShape gemvs[] = {
      {1000, 4096, 0, false}, {4099, 520, 0, false}, {6144, 4096, 0, false},
      {4096, 4096, 0, true},  {1000, 4096, 128, false}, {28672, 4096, 128, false},
      {4096, 14336, 128, true}};
  for (const GemvShape& g : gemvs) {
    for (int m : {1, 3, kGemvMaxM}) {
      cases.push_back({"gemv", DType::kF8E4M3,
                       cat(g.block == 0 ? "row" : "block", g.residual ? "_residual" : "", "_n",
                           g.n, "_k", g.k, "_m", m),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<Fp8GemvRun>(g.n, g.k, m, g.block, g.residual,
                                                             seed);
                       }});
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
