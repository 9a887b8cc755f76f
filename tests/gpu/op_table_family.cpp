// The op table's cases of the ops the Gemma 2/3 and mixture-of-experts families add: GeLU-tanh·mul
// (Gemma's GeGLU), final-logit soft-capping, and the MoE block (route, permute, the two grouped
// expert GEMMs with SiLU·mul between, combine) at Qwen3-30B-A3B's shape for decode-sized token
// counts and at small awkward shapes, and the grouped expert GEMM alone on both of its multi-row
// kernels (CUDA-core and tensor-core). The MoE cases' bytes are those of the experts the routing
// actually touches (plus activations): the decode roofline the issue asks for.
#include <algorithm>
#include <cmath>
#include <set>

#include "backend/cpu/moe.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/activation.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe.h"
#include "core/check.h"
#include "op_table.h"

namespace kite::cuda::test {
namespace {

// bf16: 2 roundings (gelu(g), then the product). f32: kF32Bound.
class GeluTanhMulRun : public OpRun {
 public:
  GeluTanhMulRun(DType dtype, int inter, int n, uint32_t seed)
      : dtype_(dtype), inter_(inter), n_(n) {
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
    gelu_tanh_mul(p, dev, stream);
  }
  OpCheck check() override {
    std::vector<float> ref(static_cast<size_t>(n_) * inter_);
    cpu::gelu_tanh_mul(gu_.host.data(), n_, inter_, ref.data(), nullptr);
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

// In place on F32 logits: kF32Bound (tanhf vs std::tanh).
class SoftcapRun : public OpRun {
 public:
  SoftcapRun(int64_t n, float cap, uint32_t seed) : n_(n), cap_(cap) {
    std::mt19937 rng(seed);
    x_ = random_tensor(DType::kF32, static_cast<size_t>(n), rng, -100.f, 100.f);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    softcap_inplace(static_cast<float*>(x_.ptr()), n_, cap_, dev, stream);
  }
  OpCheck check() override {
    std::vector<float> ref(x_.host.size());
    cpu::softcap(x_.host.data(), n_, cap_, ref.data());
    return check_within(download(x_.ptr(), DType::kF32, ref.size()), ref, kF32Bound, "logits");
  }
  double bytes() const override { return 8.0 * static_cast<double>(n_); }

 private:
  int64_t n_;
  float cap_;
  HostDeviceTensor x_;
};

struct MoeShape {
  int tokens, experts, top_k, hidden, inter;
};

// The MoE block from router logits on: bf16 5 roundings (gate_up, silu, product, down, combine);
// f32 kF32Bound * 8 (sums of a few thousand products in another order). The reference walks each
// token's choices with cpu::linear, as cpu::moe does per expert.
class MoeRun : public OpRun {
 public:
  MoeRun(DType dtype, MoeShape s, MoeGemmPath path, uint32_t seed)
      : dtype_(dtype), s_(s), path_(path) {
    std::mt19937 rng(seed);
    const int n = s.tokens, E = s.experts, H = s.hidden, I = s.inter, k = s.top_k;
    x_ = random_tensor(dtype, static_cast<size_t>(n) * H, rng);
    logits_ = random_tensor(DType::kF32, static_cast<size_t>(n) * E, rng, -4.f, 4.f);
    const float gs = 1.7f / std::sqrt(static_cast<float>(H)),
                ds = 1.7f / std::sqrt(static_cast<float>(I));
    std::vector<const void*> ptrs;
    for (int e = 0; e < E; ++e) {
      gate_up_.push_back(random_tensor(dtype, static_cast<size_t>(2) * I * H, rng, -gs, gs));
    }
    for (int e = 0; e < E; ++e) {
      down_.push_back(random_tensor(dtype, static_cast<size_t>(H) * I, rng, -ds, ds));
    }
    for (const auto& t : gate_up_) ptrs.push_back(t.ptr());
    for (const auto& t : down_) ptrs.push_back(t.ptr());
    Result<DeviceBuffer> p = DeviceBuffer::allocate(ptrs.size() * sizeof(void*), "moe ptrs");
    KITE_CHECK(p.ok());
    ptrs_ = std::move(*p);
    KITE_CUDA_CHECK(
        cudaMemcpy(ptrs_.data(), ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice));
    const size_t rows = static_cast<size_t>(n) * k;
    experts_ = poisoned(DType::kI32, rows);
    weights_ = poisoned(DType::kF32, rows);
    offsets_ = poisoned(DType::kI32, static_cast<size_t>(E) + 1);
    row_token_ = poisoned(DType::kI32, rows);
    slot_row_ = poisoned(DType::kI32, rows);
    gu_out_ = poisoned(dtype, rows * 2 * I);
    act_ = poisoned(dtype, rows * I);
    y_ = poisoned(dtype, rows * H);
    out_ = poisoned(dtype, static_cast<size_t>(n) * H);
    // The experts the routing touches (the bytes a launch must read).
    std::vector<int32_t> chosen(rows);
    std::vector<float> w(rows);
    cpu::moe_route(logits_.host.data(), n, E, k, true, chosen.data(), w.data());
    touched_ = static_cast<int>(std::set<int32_t>(chosen.begin(), chosen.end()).size());
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    const int n = s_.tokens, E = s_.experts, H = s_.hidden, I = s_.inter, k = s_.top_k;
    MoeRouteParams rp;
    rp.router_logits = static_cast<const float*>(logits_.ptr());
    rp.topk_experts = experts_.as<int32_t>();
    rp.topk_weights = weights_.as<float>();
    rp.num_tokens = n;
    rp.num_experts = E;
    rp.top_k = k;
    rp.renormalize = true;
    moe_route(rp, dev, stream);
    MoePermuteParams pp;
    pp.topk_experts = experts_.as<int32_t>();
    pp.expert_offsets = offsets_.as<int32_t>();
    pp.row_token = row_token_.as<int32_t>();
    pp.slot_row = slot_row_.as<int32_t>();
    pp.num_rows = n * k;
    pp.num_experts = E;
    pp.top_k = k;
    moe_permute(pp, dev, stream);
    MoeGemmParams gp;
    gp.x = x_.ptr();
    gp.x_stride = H;
    gp.x_rows = row_token_.as<int32_t>();
    gp.weights = ptrs_.as<const void*>();
    gp.expert_offsets = offsets_.as<int32_t>();
    gp.y = gu_out_.data();
    gp.y_stride = 2 * I;
    gp.num_experts = E;
    gp.n = 2 * I;
    gp.k = H;
    gp.dtype = dtype_;
    gp.path = path_;
    moe_grouped_gemm(gp, dev, stream);
    SiluMulParams sp;
    sp.gate_up = gu_out_.data();
    sp.out = act_.data();
    sp.num_tokens = n * k;
    sp.inter = I;
    sp.dtype = dtype_;
    silu_mul(sp, dev, stream);
    gp.x = act_.data();
    gp.x_stride = I;
    gp.x_rows = nullptr;
    gp.weights = ptrs_.as<const void*>() + E;
    gp.y = y_.data();
    gp.y_stride = H;
    gp.n = H;
    gp.k = I;
    moe_grouped_gemm(gp, dev, stream);
    MoeCombineParams cp;
    cp.y = y_.data();
    cp.slot_row = slot_row_.as<int32_t>();
    cp.topk_weights = weights_.as<float>();
    cp.out = out_.data();
    cp.num_tokens = n;
    cp.hidden = H;
    cp.top_k = k;
    cp.dtype = dtype_;
    moe_combine(cp, dev, stream);
  }
  OpCheck check() override {
    const int n = s_.tokens, E = s_.experts, H = s_.hidden, I = s_.inter, k = s_.top_k;
    std::vector<int32_t> chosen(static_cast<size_t>(n) * k);
    std::vector<float> w(chosen.size());
    cpu::moe_route(logits_.host.data(), n, E, k, true, chosen.data(), w.data());
    std::vector<float> ref(static_cast<size_t>(n) * H, 0.f), gu(2 * static_cast<size_t>(I)),
        act(static_cast<size_t>(I)), y(static_cast<size_t>(H));
    for (int t = 0; t < n; ++t) {
      for (int j = 0; j < k; ++j) {
        const auto e = static_cast<size_t>(chosen[static_cast<size_t>(t) * k + j]);
        const TensorView wgu(const_cast<float*>(gate_up_[e].host.data()), DType::kF32,
                             {2 * static_cast<int64_t>(I), H});
        const TensorView wd(const_cast<float*>(down_[e].host.data()), DType::kF32, {H, I});
        cpu::linear(x_.host.data() + static_cast<size_t>(t) * H, 1, wgu, nullptr, gu.data(),
                    nullptr);
        cpu::silu_mul(gu.data(), 1, I, act.data(), nullptr);
        cpu::linear(act.data(), 1, wd, nullptr, y.data(), nullptr);
        const float wt = w[static_cast<size_t>(t) * k + j];
        for (int d = 0; d < H; ++d) ref[static_cast<size_t>(t) * H + d] += wt * y[d];
      }
    }
    return check_rel_l2(download(out_.data(), dtype_, ref.size()), ref,
                        dtype_ == DType::kF32 ? 8 * kF32Bound : 5 * kBf16Unit, "moe out");
  }
  double bytes() const override {
    const double es = static_cast<double>(dtype_size(dtype_));
    const double expert = 3.0 * s_.inter * s_.hidden * es;
    return touched_ * expert + 2.0 * s_.tokens * s_.hidden * es;
  }

 private:
  DType dtype_;
  MoeShape s_;
  MoeGemmPath path_;
  int touched_ = 0;
  HostDeviceTensor x_, logits_;
  std::vector<HostDeviceTensor> gate_up_, down_;
  DeviceBuffer ptrs_, experts_, weights_, offsets_, row_token_, slot_row_, gu_out_, act_, y_, out_;
};

// One grouped expert GEMM (moe_grouped_gemm) on a routing fixed on the host: `counts` rows per
// expert (or, with counts empty, `tokens` tokens routed top_k of `experts` by random logits, as
// moe_block), x rows gathered through x_rows as the gate_up GEMM does. bf16: 1 rounding (each
// output rounded once from its F32 sum). The path names the multi-row kernel (the "_tc" cases:
// tensor cores; "_cc": CUDA-core FMA tiles), so one `kite_cuda_bench --ops moe_grouped_gemm`
// times both. Bytes: the touched experts' weights, the gathered x rows and y.
class MoeGemmRun : public OpRun {
 public:
  MoeGemmRun(int n, int k, int experts, int tokens, int top_k, std::vector<int> counts,
             MoeGemmPath path, uint32_t seed)
      : n_(n), k_(k), experts_(experts), path_(path) {
    std::mt19937 rng(seed);
    if (counts.empty()) {
      std::vector<float> logits(static_cast<size_t>(tokens) * experts);
      std::uniform_real_distribution<float> d(-4.f, 4.f);
      for (auto& l : logits) l = d(rng);
      std::vector<int32_t> chosen(static_cast<size_t>(tokens) * top_k);
      std::vector<float> w(chosen.size());
      cpu::moe_route(logits.data(), tokens, experts, top_k, true, chosen.data(), w.data());
      counts.assign(static_cast<size_t>(experts), 0);
      for (int32_t e : chosen) ++counts[static_cast<size_t>(e)];
    } else {
      tokens = 37;
    }
    offsets_host_.assign(static_cast<size_t>(experts) + 1, 0);
    for (int e = 0; e < experts; ++e) {
      offsets_host_[e + 1] = offsets_host_[e] + counts[static_cast<size_t>(e)];
      if (counts[static_cast<size_t>(e)] > 0) ++touched_;
    }
    rows_ = offsets_host_[experts];
    x_ = random_tensor(DType::kBF16, static_cast<size_t>(tokens) * k, rng);
    x_rows_host_.resize(static_cast<size_t>(rows_));
    for (auto& r : x_rows_host_) r = std::uniform_int_distribution<int>(0, tokens - 1)(rng);
    const float ws = 1.7f / std::sqrt(static_cast<float>(k));
    std::vector<const void*> ptrs;
    for (int e = 0; e < experts; ++e) {
      // Untouched experts' weights are never read: one shared buffer stands in for them.
      if (counts[static_cast<size_t>(e)] > 0 || w_.empty()) {
        w_.push_back(random_tensor(DType::kBF16, static_cast<size_t>(n) * k, rng, -ws, ws));
        w_index_.push_back(static_cast<int>(w_.size()) - 1);
      } else {
        w_index_.push_back(0);
      }
      ptrs.push_back(w_[static_cast<size_t>(w_index_.back())].ptr());
    }
    Result<DeviceBuffer> p = DeviceBuffer::allocate(ptrs.size() * sizeof(void*), "moe ptrs");
    KITE_CHECK(p.ok());
    ptrs_ = std::move(*p);
    KITE_CUDA_CHECK(
        cudaMemcpy(ptrs_.data(), ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice));
    offsets_ = device_ints(offsets_host_);
    x_rows_ = device_ints(x_rows_host_);
    y_ = poisoned(DType::kBF16, static_cast<size_t>(std::max(rows_, 1)) * n);
  }
  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    MoeGemmParams gp;
    gp.x = x_.ptr();
    gp.x_stride = k_;
    gp.x_rows = x_rows_.as<int32_t>();
    gp.weights = ptrs_.as<const void*>();
    gp.expert_offsets = offsets_.as<int32_t>();
    gp.y = y_.data();
    gp.y_stride = n_;
    gp.num_experts = experts_;
    gp.n = n_;
    gp.k = k_;
    gp.dtype = DType::kBF16;
    gp.path = path_;
    moe_grouped_gemm(gp, dev, stream);
  }
  OpCheck check() override {
    // Per expert: its gathered x rows times its weight (cpu::linear, F32 sums).
    std::vector<float> ref(static_cast<size_t>(rows_) * n_), xe;
    for (int e = 0; e < experts_; ++e) {
      const int begin = offsets_host_[e], count = offsets_host_[e + 1] - begin;
      if (count == 0) continue;
      xe.resize(static_cast<size_t>(count) * k_);
      for (int r = 0; r < count; ++r) {
        const float* src =
            x_.host.data() + static_cast<size_t>(x_rows_host_[static_cast<size_t>(begin + r)]) * k_;
        std::copy(src, src + k_, xe.begin() + static_cast<int64_t>(r) * k_);
      }
      const TensorView w(
          const_cast<float*>(w_[static_cast<size_t>(w_index_[static_cast<size_t>(e)])].host.data()),
          DType::kF32, {n_, k_});
      cpu::linear(xe.data(), count, w, nullptr, ref.data() + static_cast<size_t>(begin) * n_,
                  nullptr);
    }
    return check_within(download(y_.data(), DType::kBF16, ref.size()), ref, kBf16Unit, "y");
  }
  double bytes() const override {
    return 2.0 * (static_cast<double>(touched_) * n_ * k_ + static_cast<double>(rows_) * (k_ + n_));
  }

 private:
  int n_, k_, experts_;
  MoeGemmPath path_;
  int rows_ = 0, touched_ = 0;
  std::vector<int32_t> offsets_host_, x_rows_host_;
  std::vector<int> w_index_;
  HostDeviceTensor x_;
  std::vector<HostDeviceTensor> w_;
  DeviceBuffer ptrs_, offsets_, x_rows_, y_;
};
}  // namespace

void add_family_cases(std::vector<OpCase>& cases) {
  for (DType d : {DType::kBF16, DType::kF32}) {
    for (auto [inter, n] :
         std::vector<std::pair<int, int>>{{15360, 1}, {15360, 17}, {21504, 3}, {100, 17}}) {
      cases.push_back({"gelu_tanh_mul", d, cat("i", inter, "_n", n),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<GeluTanhMulRun>(d, inter, n, seed);
                       }});
    }
  }
  for (auto [vocab, rows] : std::vector<std::pair<int64_t, int>>{{262208, 1}, {256000, 17}}) {
    cases.push_back({"softcap", DType::kF32, cat("v", vocab, "_r", rows),
                     [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                       return std::make_unique<SoftcapRun>(vocab * rows, 30.f, seed);
                     }});
  }
  // Qwen3-30B-A3B's experts (128 of 768, top 8, hidden 2048) at decode token counts; Mixtral-like
  // and tiny awkward shapes (rows not multiples of the 64-row tile, experts with many rows).
  const MoeShape bf16_shapes[] = {{1, 128, 8, 2048, 768},  {8, 128, 8, 2048, 768},
                                  {64, 128, 8, 2048, 768}, {33, 8, 2, 1024, 1792},
                                  {7, 8, 2, 64, 40},       {300, 4, 2, 48, 72}};
  // Each bf16 shape twice: the path the context picks (KITE_MOE_TC=1: tensor cores, else CUDA
  // cores) and "_tc", the tensor-core grouped GEMM whatever the context says.
  for (const MoeShape& s : bf16_shapes) {
    for (MoeGemmPath path : {MoeGemmPath::kDefault, MoeGemmPath::kTensorCore}) {
      cases.push_back({"moe_block", DType::kBF16,
                       cat("t", s.tokens, "_e", s.experts, "_k", s.top_k, "_h", s.hidden, "_i",
                           s.inter, path == MoeGemmPath::kTensorCore ? "_tc" : ""),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<MoeRun>(DType::kBF16, s, path, seed);
                       }});
    }
  }
  const MoeShape f32_shapes[] = {{7, 8, 2, 64, 40}, {33, 6, 2, 32, 16}, {300, 4, 2, 48, 72}};
  for (const MoeShape& s : f32_shapes) {
    cases.push_back(
        {"moe_block", DType::kF32,
         cat("t", s.tokens, "_e", s.experts, "_k", s.top_k, "_h", s.hidden, "_i", s.inter),
         [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
           return std::make_unique<MoeRun>(DType::kF32, s, MoeGemmPath::kDefault, seed);
         }});
  }
  // The grouped expert GEMM alone, both multi-row kernels: Qwen3-30B-A3B's gate_up (n 1536,
  // k 2048) and down (n 2048, k 768) GEMMs over 128 experts top 8 at 16 and 64 tokens (decode
  // batches: a few rows per expert) and 512 (prefill: ~32), and an awkward fixed routing (experts
  // of 0, 1, 5, 17, 64, 65, 200 rows; n and k not multiples of the tile).
  struct GemmShape {
    int n, k, tokens;
    const char* what;
  };
  const GemmShape gemm_shapes[] = {{1536, 2048, 16, "gate_up"},
                                   {1536, 2048, 64, "gate_up"},
                                   {1536, 2048, 512, "gate_up"},
                                   {2048, 768, 64, "down"},
                                   {2048, 768, 512, "down"}};
  for (MoeGemmPath path : {MoeGemmPath::kCudaCore, MoeGemmPath::kTensorCore}) {
    const char* tag = path == MoeGemmPath::kTensorCore ? "_tc" : "_cc";
    for (const GemmShape& g : gemm_shapes) {
      cases.push_back({"moe_grouped_gemm", DType::kBF16,
                       cat(g.what, "_t", g.tokens, "_e128_top8_n", g.n, "_k", g.k, tag),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<MoeGemmRun>(g.n, g.k, 128, g.tokens, 8,
                                                             std::vector<int>{}, path, seed);
                       }});
    }
    for (auto [n, k] : std::vector<std::pair<int, int>>{{100, 72}, {130, 264}}) {
      cases.push_back({"moe_grouped_gemm", DType::kBF16,
                       cat("rows0_1_5_17_64_65_200_n", n, "_k", k, tag),
                       [=](const DeviceContext&, uint32_t seed) -> std::unique_ptr<OpRun> {
                         return std::make_unique<MoeGemmRun>(
                             n, k, 7, 0, 0, std::vector<int>{0, 1, 5, 17, 64, 65, 200}, path, seed);
                       }});
    }
  }
}

}  // namespace kite::cuda::test
