// The op table's attention cases: the step's attention as the runner calls it (attention(): the
// split-KV decode kernel for single-token sequences, the mma.sync prefill kernel for the rest, or
// the generic kernel for small head dims, bf16 and f32) and FlashInfer's prefill, on batches that
// mix prefill chunks over cached prefixes with decodes, scattered blocks, block-boundary lengths,
// GQA groups, forced split counts and sliding windows; against cpu::paged_attention.
//
// Bound, per output element o = sum_j p_j v_j / sum_j p_j:
//   bf16: 2^-8 |o| (the output's rounding) + 2^-8 a (the prefill kernels round p to bf16 before
//         P.V; a = sum_j p_j |v_j| / sum_j p_j, the same attention over |V|) + 2^-16 a (fp32
//         accumulation order and exp2f); relative L2 <= 2 * 2^-8.
//   f32:  kF32Bound (|o| + a); relative L2 <= kF32Bound.
// FP8 KV cache cases (shape names "fp8kv_..."): the caches hold the E4M3 bytes of the CPU
// emulation (cpu::quantize_kv_fp8) with per-layer scales, the reference reads their values
// (byte * scale, exact); the kernels' reads are exact too, so the bound is the dtype's.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <thread>

#include "backend/cpu/ops.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "op_table.h"

namespace kite::cuda::test {
namespace {

ThreadPool& pool() {
  static ThreadPool p(std::max(1u, std::thread::hardware_concurrency()));
  return p;
}

struct AttnShape {
  int nq, nkv, hd, block_size;
  std::vector<int> seq_lens, q_lens;
  int force_splits = 0;     // 0: the planner's choice
  int window = 0;           // sliding_window (0: full causal)
  bool flashinfer = false;  // every sequence through FlashInfer's prefill instead
  bool fp8 = false;         // an FP8 KV cache (k_scale 0.37, v_scale 2.5)
};

constexpr float kFp8KScale = 0.37f, kFp8VScale = 2.5f;

// The cache as E4M3 bytes of 4 * its values (spread over the format's range) at `scale`, on the
// device; t.host becomes the values those bytes stand for.
DeviceBuffer quantize_cache(HostDeviceTensor& t, float scale) {
  std::vector<uint8_t> bytes(t.host.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = cpu::quantize_kv_fp8(4 * t.host[i] * scale, scale);
    t.host[i] = fp8e4m3_to_f32(bytes[i]) * scale;
  }
  Result<DeviceBuffer> d = DeviceBuffer::allocate(bytes.size(), "fp8 KV cache");
  KITE_CHECK(d.ok()) << d.status().to_string();
  KITE_CUDA_CHECK(cudaMemcpy(d->data(), bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
  return std::move(*d);
}

class AttentionRun : public OpRun {
 public:
  AttentionRun(DType dtype, const AttnShape& c, const DeviceContext& dev, uint32_t seed)
      : dtype_(dtype), c_(c) {
    std::mt19937 rng(seed);
    const int ns = static_cast<int>(c.seq_lens.size());
    const int hd = c.hd, bs = c.block_size;
    kv_dim_ = static_cast<int64_t>(c.nkv) * hd;
    q_dim_ = static_cast<int64_t>(c.nq) * hd;
    total_blocks_ = 1 + 2;
    for (int s : c.seq_lens) total_blocks_ += (s + bs - 1) / bs;
    std::vector<int32_t> ids(static_cast<size_t>(total_blocks_ - 1));
    std::iota(ids.begin(), ids.end(), 1);
    std::shuffle(ids.begin(), ids.end(), rng);
    qsl_ = {0};
    indptr_ = {0};
    for (int s = 0; s < ns; ++s) {
      for (int b = 0; b < (c.seq_lens[s] + bs - 1) / bs; ++b) table_.push_back(ids[table_.size()]);
      indptr_.push_back(static_cast<int32_t>(table_.size()));
      qsl_.push_back(qsl_.back() + c.q_lens[s]);
      seq_lens_.push_back(c.seq_lens[s]);
    }
    tokens_ = qsl_.back();
    // Caches hold random values everywhere (garbage beyond each sequence's length); q has a row
    // stride wider than its heads (as inside the fused qkv row).
    cache_elems_ = static_cast<size_t>(total_blocks_) * bs * kv_dim_;
    kc_ = random_tensor(dtype, cache_elems_, rng);
    vc_ = random_tensor(dtype, cache_elems_, rng);
    if (c.fp8) {
      kc8_ = quantize_cache(kc_, kFp8KScale);
      vc8_ = quantize_cache(vc_, kFp8VScale);
    }
    q_stride_ = q_dim_ + 2 * kv_dim_;
    q_ = random_tensor(dtype, static_cast<size_t>(tokens_) * q_stride_, rng);
    out_ = poisoned(dtype, static_cast<size_t>(tokens_) * q_dim_);
    qsl_d_ = device_ints(qsl_);
    sl_d_ = device_ints(seq_lens_);
    ind_d_ = device_ints(indptr_);
    tab_d_ = device_ints(table_);

    Result<AttentionPath> path = attention_path(hd, c.nq, c.nkv);
    KITE_CHECK(path.ok()) << path.status().to_string();
    path_ = *path;
    const int max_seq = *std::max_element(seq_lens_.begin(), seq_lens_.end());
    plan_ = plan_attention(qsl_.data(), seq_lens_.data(), ns, max_seq, c.nq, c.nkv, dev.num_sms());
    if (c.force_splits > 0) plan_.num_splits = c.force_splits;
    tseq_d_ = device_ints(plan_.prefill_tile_seq);
    tq_d_ = device_ints(plan_.prefill_tile_q_start);
    dec_d_ = device_ints(plan_.decode_seqs);
    Result<DeviceBuffer> ws =
        DeviceBuffer::allocate(decode_workspace_bytes(kMaxSplitRows, c.nq, hd), "split-KV");
    Result<DeviceBuffer> cnt = DeviceBuffer::allocate(decode_counter_bytes(ns, c.nkv), "counters");
    KITE_CHECK(ws.ok() && cnt.ok());
    ws_ = std::move(*ws);
    cnt_ = std::move(*cnt);
    KITE_CUDA_CHECK(cudaMemset(cnt_.data(), 0, cnt_.size()));
    if (c.flashinfer) {
      std::vector<int32_t> all(ns);
      std::iota(all.begin(), all.end(), 0);
      const FlashInferPlan fp = plan_flashinfer_prefill(
          qsl_.data(), seq_lens_.data(), indptr_.data(), all, c.nq, hd, dev.num_sms());
      fi_ctas_ = fp.num_ctas;
      fi_works_ = fp.num_works;
      fi_work_d_ = device_ints(fp.work);
    }
  }

  void launch(const DeviceContext& dev, cudaStream_t stream) override {
    AttentionParams p;
    p.q = q_.ptr();
    p.q_stride = q_stride_;
    p.out = out_.data();
    p.k_cache = kc_.ptr();
    p.v_cache = vc_.ptr();
    p.query_start_loc = qsl_d_.as<int32_t>();
    p.seq_lens = sl_d_.as<int32_t>();
    p.block_table_indptr = ind_d_.as<int32_t>();
    p.block_table = tab_d_.as<int32_t>();
    p.num_tokens = tokens_;
    p.num_seqs = static_cast<int>(seq_lens_.size());
    p.num_q_heads = c_.nq;
    p.num_kv_heads = c_.nkv;
    p.head_dim = c_.hd;
    p.block_size = c_.block_size;
    p.scale = scale();
    p.sliding_window = c_.window;
    p.dtype = dtype_;
    p.prefill_tile_seq = tseq_d_.as<int32_t>();
    p.prefill_tile_q_start = tq_d_.as<int32_t>();
    p.num_prefill_tiles = static_cast<int>(plan_.prefill_tile_seq.size());
    p.decode_seqs = plan_.all_decode ? nullptr : dec_d_.as<int32_t>();
    p.num_decode = plan_.num_decode;
    p.num_splits = plan_.num_splits;
    p.split_out = ws_.as<float>();
    p.split_lse = ws_.as<float>() + static_cast<size_t>(kMaxSplitRows) * c_.nq * c_.hd;
    p.split_counters = cnt_.as<int32_t>();
    if (c_.fp8) {
      p.k_cache = kc8_.data();
      p.v_cache = vc8_.data();
      p.kv_fp8 = true;
      p.k_scale = kFp8KScale;
      p.v_scale = kFp8VScale;
    }
    if (c_.flashinfer) {
      flashinfer_prefill(p, fi_work_d_.as<int32_t>(), fi_ctas_, fi_works_, dev, stream);
    } else {
      attention(p, path_, dev, stream);
    }
  }

  OpCheck check() override {
    const int hd = c_.hd, bs = c_.block_size;
    // The CPU reference reads the NHD layout [slot, kv_head, d].
    std::vector<float> kf(cache_elems_), vf(cache_elems_);
    for (int64_t blk = 0; blk < total_blocks_; ++blk) {
      for (int h = 0; h < c_.nkv; ++h) {
        for (int off = 0; off < bs; ++off) {
          for (int d = 0; d < hd; ++d) {
            const int64_t mine = ((blk * c_.nkv + h) * bs + off) * hd + d;
            const int64_t theirs = ((blk * bs + off) * c_.nkv + h) * hd + d;
            kf[theirs] = kc_.host[mine];
            vf[theirs] = vc_.host[mine];
          }
        }
      }
    }
    std::vector<float> ref(static_cast<size_t>(tokens_) * q_dim_);
    cpu::PagedAttentionParams cp;
    cp.q = q_.host.data();
    cp.q_stride = q_stride_;
    cp.k_cache = kf.data();
    cp.v_cache = vf.data();
    cp.out = ref.data();
    cp.out_stride = q_dim_;
    cp.num_blocks = total_blocks_;
    cp.num_heads = c_.nq;
    cp.num_kv_heads = c_.nkv;
    cp.head_dim = hd;
    cp.block_size = bs;
    cp.scale = scale();
    cp.num_seqs = static_cast<int>(seq_lens_.size());
    cp.query_start_loc = qsl_.data();
    cp.seq_lens = seq_lens_.data();
    cp.block_table_indptr = indptr_.data();
    cp.block_table = table_.data();
    cp.sliding_window = c_.window;
    cpu::paged_attention(cp, &pool());
    std::vector<float> abs_ref(ref.size());
    for (float& v : vf) v = std::abs(v);
    cp.out = abs_ref.data();
    cpu::paged_attention(cp, &pool());
    const bool f32 = dtype_ == DType::kF32;
    std::vector<double> allowed(ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      allowed[i] = f32 ? kF32Bound * (std::abs(ref[i]) + abs_ref[i])
                       : kBf16Unit * (std::abs(ref[i]) + abs_ref[i]) + std::ldexp(abs_ref[i], -16);
    }
    const std::vector<float> got = download(out_.data(), dtype_, ref.size());
    const std::string what = cat(c_.flashinfer ? "flashinfer" : "attention", " (",
                                 path_ == AttentionPath::kGeneric ? "generic" : "tensor-core",
                                 ", decode ", plan_.num_decode, " splits ", plan_.num_splits,
                                 " tiles ", plan_.prefill_tile_seq.size(), ")");
    OpCheck c = check_each(got, ref, allowed, what);
    c = both(c, check_rel_l2(got, ref, f32 ? kF32Bound : 2 * kBf16Unit, "out"));
    // The split-KV counters are back to zero for the next launch (graph replays rely on it).
    const std::vector<int32_t> cnt = download_ints(cnt_.data(), cnt_.size() / 4);
    if (!std::all_of(cnt.begin(), cnt.end(), [](int32_t v) { return v == 0; })) {
      c.ok = false;
      c.detail += "; split-KV counters not reset";
    }
    return c;
  }

  // Decode: K and V bytes read; prefill: causal FLOPs (QK^T and PV, 2 per multiply-add).
  double bytes() const override {
    double b = 0;
    for (size_t s = 0; s < seq_lens_.size(); ++s) b += seq_lens_[s];
    return b * kv_dim_ * (c_.fp8 ? 1 : dtype_size(dtype_)) * 2;
  }
  double flops() const override {
    if (plan_.prefill_tile_seq.empty() && !c_.flashinfer) return 0;
    double macs = 0;
    for (size_t s = 0; s < seq_lens_.size(); ++s) {
      const double q = c_.q_lens[s], prefix = seq_lens_[s] - q;
      macs += static_cast<double>(c_.nq) * c_.hd * (q * prefix + q * (q + 1) / 2.0);
    }
    return 4.0 * macs;
  }

 private:
  float scale() const { return 1.f / std::sqrt(static_cast<float>(c_.hd)); }

  DType dtype_;
  AttnShape c_;
  int64_t kv_dim_ = 0, q_dim_ = 0, q_stride_ = 0;
  int total_blocks_ = 0, tokens_ = 0;
  size_t cache_elems_ = 0;
  std::vector<int32_t> qsl_, seq_lens_, indptr_, table_;
  HostDeviceTensor kc_, vc_, q_;
  DeviceBuffer out_, qsl_d_, sl_d_, ind_d_, tab_d_, tseq_d_, tq_d_, dec_d_, ws_, cnt_, fi_work_d_;
  DeviceBuffer kc8_, vc8_;  // fp8: the caches' E4M3 bytes
  AttentionPath path_ = AttentionPath::kTensorCore;
  AttentionPlan plan_;
  int fi_ctas_ = 0, fi_works_ = 0;
};

std::vector<int> repeat(const std::vector<int>& pattern, int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(pattern[i % pattern.size()]);
  return v;
}

void add(std::vector<OpCase>& cases, DType dtype, const std::string& shape, AttnShape s) {
  OpCase c{s.flashinfer ? "flashinfer_prefill" : "attention", dtype, shape,
           [=](const DeviceContext& dev, uint32_t seed) -> std::unique_ptr<OpRun> {
             return std::make_unique<AttentionRun>(dtype, s, dev, seed);
           }};
  if (s.flashinfer) {
    c.skip = [](const DeviceContext& dev) -> std::string {
      return flashinfer_prefill_available(dev)
                 ? ""
                 : "this build has no FlashInfer (KITE_FLASHINFER_INCLUDE) or no sm_90 device";
    };
  }
  cases.push_back(std::move(c));
}

std::string hd_name(int hd) { return cat("hd", hd); }

}  // namespace

void add_attention_cases(std::vector<OpCase>& cases) {
  const DType bf16 = DType::kBF16;
  // Decode batches of mixed lengths (split-KV; block and tile boundaries), every head dim.
  const std::vector<int> lens = {1, 15, 16, 17, 1000, 4097};
  for (int batch : {1, 3, 17, 128}) {
    for (int hd : {64, 128, 256}) {
      add(cases, bf16, cat("decode_b", batch, "_", hd_name(hd)),
          {32, 8, hd, 16, batch == 1 ? std::vector<int>{4097} : repeat(lens, batch),
           std::vector<int>(batch, 1)});
    }
  }
  // The 8B decode shapes of the benchmark: 64 x 4096 and 256 x 1024 tokens of context.
  add(cases, bf16, "decode_b64_ctx4096_hd128",
      {32, 8, 128, 16, std::vector<int>(64, 4096), std::vector<int>(64, 1)});
  add(cases, bf16, "decode_b256_ctx1024_hd128",
      {32, 8, 128, 16, std::vector<int>(256, 1024), std::vector<int>(256, 1)});
  // The step profile's W1 (2048,128) decode shapes (docs/benchmarks.md: attention at 64% of HBM
  // inside a profiled step): the kernel alone at the same batch and context.
  for (int batch : {64, 128}) {
    add(cases, bf16, cat("decode_b", batch, "_ctx2112_hd128"),
        {32, 8, 128, 16, std::vector<int>(batch, 2112), std::vector<int>(batch, 1)});
  }
  // GQA groups (1, 2, 4 on the 4-kernel, 7 on the 8-kernel) x forced split counts.
  const std::vector<int> glens = {1, 17, 4097, 1000, 16};
  for (auto [nq, nkv] :
       std::vector<std::pair<int, int>>{{28, 4}, {8, 8}, {16, 2}, {12, 6}, {12, 4}}) {
    for (int splits : {1, 3, kMaxDecodeSplits}) {
      add(cases, bf16, cat("decode_q", nq, "_kv", nkv, "_splits", splits),
          {nq, nkv, 128, 16, repeat(glens, 5), std::vector<int>(5, 1), splits});
    }
  }
  add(cases, bf16, "decode_bs32", {32, 8, 128, 32, repeat(glens, 5), std::vector<int>(5, 1)});
  add(cases, bf16, "decode_bs8_hd64", {32, 8, 64, 8, repeat(glens, 5), std::vector<int>(5, 1)});
  // Prefill chunks over cached prefixes mixed with decodes, every head dim; GQA 7, MHA, a group
  // of 16 (no decode kernel: its decodes go to the prefill kernel), block size 32.
  for (int hd : {64, 128, 256}) {
    add(cases, bf16, cat("prefill_mixed_", hd_name(hd)),
        {32, 8, hd, 16, {15, 16, 17, 1000, 1017, 4097, 80, 5}, {15, 16, 17, 1000, 17, 1, 64, 1}});
  }
  add(cases, bf16, "prefill_group7", {28, 4, 128, 16, {1000, 300, 33}, {1000, 100, 33}});
  add(cases, bf16, "prefill_mha", {8, 8, 128, 16, {4097, 17}, {97, 17}});
  add(cases, bf16, "prefill_group16", {32, 2, 128, 16, {17, 40, 1}, {1, 40, 1}});
  add(cases, bf16, "prefill_bs32", {16, 4, 128, 32, {100, 64, 33}, {100, 31, 1}});
  // 8B prefill shapes for the benchmark: 4 x 2048 fresh tokens, 512-token chunks over 1536.
  add(cases, bf16, "prefill_b4_ctx2048_hd128",
      {32, 8, 128, 16, std::vector<int>(4, 2048), std::vector<int>(4, 2048)});
  add(cases, bf16, "prefill_b4_ctx2048_q512_hd128",
      {32, 8, 128, 16, std::vector<int>(4, 2048), std::vector<int>(4, 512)});
  // Sliding windows smaller than the sequences (not multiples of the block or tile sizes), forced
  // splits, a window larger than every sequence.
  for (int hd : {64, 128}) {
    add(cases, bf16, cat("window37_", hd_name(hd)),
        {32, 8, hd, 16, {15, 200, 1000, 1017, 4097, 80, 300}, {15, 200, 17, 1, 1, 64, 1}, 0, 37});
  }
  add(cases, bf16, "window100_splits7", {32, 8, 128, 16, {1000, 4097, 33}, {1, 1, 1}, 7, 100});
  add(cases, bf16, "window256_group7", {28, 4, 128, 16, {1000, 300}, {1000, 100}, 0, 256});
  add(cases, bf16, "window4096_larger", {32, 8, 128, 16, {100, 17}, {100, 1}, 0, 4096});
  // The generic kernel (head_dim <= 32), bf16 and the float32 compute mode.
  for (DType d : {DType::kBF16, DType::kF32}) {
    for (int hd : {8, 16, 32}) {
      add(cases, d, cat("generic_", hd_name(hd)),
          {8, 4, hd, 16, {1, 15, 16, 17, 300, 50}, {1, 15, 16, 1, 300, 7}});
    }
    add(cases, d, "generic_window5_hd16", {8, 2, 16, 16, {40, 33}, {40, 1}, 0, 5});
    add(cases, d, "generic_group7_hd32", {7, 1, 32, 16, {100, 9}, {60, 1}});
  }
  // FlashInfer's sm90 prefill (skipped, visibly, in builds without it).
  for (int hd : {64, 128}) {
    add(cases, bf16, cat("mixed_", hd_name(hd)),
        {32,
         8,
         hd,
         16,
         {15, 16, 17, 1000, 1017, 4097, 80, 5, 300},
         {15, 16, 17, 1000, 17, 1, 64, 1, 300},
         0,
         0,
         true});
    add(cases, bf16, cat("window37_", hd_name(hd)),
        {32, 8, hd, 16, {200, 1017, 4097}, {200, 17, 300}, 0, 37, true});
  }
  add(cases, bf16, "group7", {28, 4, 128, 16, {1000, 300, 33}, {1000, 100, 33}, 0, 0, true});
  // The FP8 KV cache through every kernel: the benchmark's decode and prefill shapes (bytes read
  // halve against their bf16 cases above), mixed batches, a window, the generic kernel.
  add(cases, bf16, "fp8kv_decode_b64_ctx4096_hd128",
      {32, 8, 128, 16, std::vector<int>(64, 4096), std::vector<int>(64, 1), 0, 0, false, true});
  add(cases, bf16, "fp8kv_decode_b256_ctx1024_hd128",
      {32, 8, 128, 16, std::vector<int>(256, 1024), std::vector<int>(256, 1), 0, 0, false, true});
  add(cases, bf16, "fp8kv_prefill_b4_ctx2048_hd128",
      {32, 8, 128, 16, std::vector<int>(4, 2048), std::vector<int>(4, 2048), 0, 0, false, true});
  for (int hd : {64, 128, 256}) {
    add(cases, bf16, cat("fp8kv_prefill_mixed_", hd_name(hd)),
        {32,
         8,
         hd,
         16,
         {15, 16, 17, 1000, 1017, 4097, 80, 5},
         {15, 16, 17, 1000, 17, 1, 64, 1},
         0,
         0,
         false,
         true});
  }
  add(cases, bf16, "fp8kv_decode_q28_kv4_splits3",
      {28, 4, 128, 16, repeat(glens, 5), std::vector<int>(5, 1), 3, 0, false, true});
  add(cases, bf16, "fp8kv_window37_hd128",
      {32, 8, 128, 16, {15, 200, 1000, 4097, 80}, {15, 200, 17, 1, 64}, 0, 37, false, true});
  for (DType d : {DType::kBF16, DType::kF32}) {
    add(cases, d, "fp8kv_generic_hd16",
        {8, 4, 16, 16, {1, 15, 16, 17, 300, 50}, {1, 15, 16, 1, 300, 7}, 0, 0, false, true});
  }
}

}  // namespace kite::cuda::test
