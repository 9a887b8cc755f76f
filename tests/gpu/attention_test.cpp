// Paged attention kernels (decode split-KV, tensor-core prefill, generic small-head path)
// against cpu::paged_attention on batches that mix prefill chunks over cached prefixes and
// decodes, with scattered blocks, block-boundary lengths and every supported head dim.
//
// Bound, per output element o = sum_j p_j v_j / sum_j p_j (p from fp32 scores):
//   2^-8 * |o|                        the output's bf16 rounding
// + 2^-8 * sum_j p_j |v_j| / sum_j p_j  the prefill kernel rounds p to bf16 before the P.V
//                                     product (relative error 2^-8 per term; the decode and
//                                     generic kernels keep p in fp32)
// + 2^-16 * sum_j p_j |v_j| / sum_j p_j  fp32 accumulation order and exp2f (a few ulp)
// The second term is computed by the CPU op itself, run on |V|. Relative L2 error <= 2 * 2^-8.
//
// FP8 KV cache cases: the caches hold E4M3 bytes written by the CPU emulation
// (cpu::quantize_kv_fp8) and the reference reads them as the CPU's FP8 cache does (byte value *
// scale, exact in float); the bound is the same, since the kernels' reads are exact too (decode
// and generic: float(e4m3) * scale; prefill: exact bf16 of e4m3, k_scale folded into the softmax
// scale and v_scale into the output, one fp32 rounding each).
#include "backend/cuda/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "core/thread_pool.h"
#include "gpu_test_util.h"

namespace kite::cuda::test {
namespace {

ThreadPool& pool() {
  static ThreadPool p(std::max(1u, std::thread::hardware_concurrency()));
  return p;
}

struct Case {
  std::string name;
  int nq, nkv, hd, block_size;
  std::vector<int> seq_lens, q_lens;
  int force_splits = 0;     // 0: the planner's choice
  int window = 0;           // sliding_window (0: full causal)
  bool flashinfer = false;  // every sequence through FlashInfer's prefill kernel instead
  float softcap = 0.f;      // attention logit soft-capping (Gemma 2; 0: none)
  bool fp8 = false;         // an FP8 KV cache with these layer scales
  float k_scale = 1.f;
  float v_scale = 1.f;
};

void run_case(const Case& c, uint32_t seed) {
  SCOPED_TRACE(c.name);
  std::mt19937 rng(seed);
  const int ns = static_cast<int>(c.seq_lens.size());
  const int hd = c.hd, bs = c.block_size;
  const int64_t kv_dim = static_cast<int64_t>(c.nkv) * hd, q_dim = static_cast<int64_t>(c.nq) * hd;
  int total_blocks = 1 + 2;
  for (int s : c.seq_lens) total_blocks += (s + bs - 1) / bs;
  std::vector<int32_t> ids(static_cast<size_t>(total_blocks - 1));
  std::iota(ids.begin(), ids.end(), 1);
  std::shuffle(ids.begin(), ids.end(), rng);

  std::vector<int32_t> qsl{0}, seq_lens, indptr{0}, table;
  for (int s = 0; s < ns; ++s) {
    for (int b = 0; b < (c.seq_lens[s] + bs - 1) / bs; ++b) table.push_back(ids[table.size()]);
    indptr.push_back(static_cast<int32_t>(table.size()));
    qsl.push_back(qsl.back() + c.q_lens[s]);
    seq_lens.push_back(c.seq_lens[s]);
  }
  const int T = qsl.back();
  // Caches hold random values everywhere (garbage beyond each sequence's length).
  const size_t cache_elems = static_cast<size_t>(total_blocks) * bs * kv_dim;
  auto kc = random_bf16(cache_elems, rng, -1.f, 1.f);
  auto vc = random_bf16(cache_elems, rng, -1.f, 1.f);
  // FP8: E4M3 bytes of values spread over the format's range at these scales (a few saturate).
  std::vector<uint8_t> k8, v8;
  std::vector<float> kt = to_float(kc), vt = to_float(vc);
  if (c.fp8) {
    std::uniform_real_distribution<float> wide(-300.f, 300.f);
    k8.resize(cache_elems);
    v8.resize(cache_elems);
    for (size_t i = 0; i < cache_elems; ++i) {
      const float kx = (i % 7 == 0 ? wide(rng) : 4 * kt[i]) * c.k_scale;
      const float vx = (i % 11 == 0 ? 2 * wide(rng) : 4 * vt[i]) * c.v_scale;
      k8[i] = cpu::quantize_kv_fp8(kx, c.k_scale);
      v8[i] = cpu::quantize_kv_fp8(vx, c.v_scale);
      kt[i] = fp8e4m3_to_f32(k8[i]) * c.k_scale;
      vt[i] = fp8e4m3_to_f32(v8[i]) * c.v_scale;
    }
  }
  // q with a row stride wider than the heads (as inside the fused qkv row).
  const int64_t q_stride = q_dim + 2 * kv_dim;
  auto q = random_bf16(static_cast<size_t>(T) * q_stride, rng, -1.f, 1.f);

  // CPU reference over the NHD layout [slot, kv_head, d].
  std::vector<float> kf(cache_elems), vf(cache_elems);
  {
    for (int64_t blk = 0; blk < total_blocks; ++blk) {
      for (int h = 0; h < c.nkv; ++h) {
        for (int off = 0; off < bs; ++off) {
          for (int d = 0; d < hd; ++d) {
            const int64_t mine = ((blk * c.nkv + h) * bs + off) * hd + d;
            const int64_t theirs = ((blk * bs + off) * c.nkv + h) * hd + d;
            kf[theirs] = kt[mine];
            vf[theirs] = vt[mine];
          }
        }
      }
    }
  }
  const auto qf = to_float(q);
  std::vector<float> ref(static_cast<size_t>(T) * q_dim);
  cpu::PagedAttentionParams cp;
  cp.q = qf.data();
  cp.q_stride = q_stride;
  cp.k_cache = kf.data();
  cp.v_cache = vf.data();
  cp.out = ref.data();
  cp.out_stride = q_dim;
  cp.num_blocks = total_blocks;
  cp.num_heads = c.nq;
  cp.num_kv_heads = c.nkv;
  cp.head_dim = hd;
  cp.block_size = bs;
  cp.scale = 1.f / std::sqrt(static_cast<float>(hd));
  cp.num_seqs = ns;
  cp.query_start_loc = qsl.data();
  cp.seq_lens = seq_lens.data();
  cp.block_table_indptr = indptr.data();
  cp.block_table = table.data();
  cp.sliding_window = c.window;
  cp.softcap = c.softcap;
  cpu::paged_attention(cp, &pool());
  // sum_j p_j |v_j| / sum_j p_j: the same attention over |V|.
  std::vector<float> abs_ref(ref.size());
  {
    std::vector<float> vabs(vf.size());
    for (size_t i = 0; i < vf.size(); ++i) vabs[i] = std::abs(vf[i]);
    cpu::PagedAttentionParams ca = cp;
    ca.v_cache = vabs.data();
    ca.out = abs_ref.data();
    cpu::paged_attention(ca, &pool());
  }
  // The GPU flushes float subnormals to zero: a probability below FLT_MIN (a score far below the
  // row's maximum, as the FP8 cases' wide keys give) contributes nothing there, so an output can
  // be 0 where the CPU has 1e-42. Bound: every key's dropped p_j |v_j| with p_j < FLT_MIN.
  float v_max = 0.f;
  for (float v : vf) v_max = std::max(v_max, std::abs(v));
  const double ftz_floor = static_cast<double>(std::numeric_limits<float>::min()) *
                           *std::max_element(seq_lens.begin(), seq_lens.end()) * v_max;
  std::vector<double> allowed(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    allowed[i] = kBf16Roundoff * (std::abs(ref[i]) + abs_ref[i]) + std::ldexp(abs_ref[i], -16) +
                 ftz_floor;
  }

  auto path = attention_path(hd, c.nq, c.nkv);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  const int max_seq = *std::max_element(seq_lens.begin(), seq_lens.end());
  AttentionPlan plan = plan_attention(qsl.data(), seq_lens.data(), ns, max_seq, c.nq, c.nkv,
                                      test_device().num_sms());
  if (c.force_splits > 0) plan.num_splits = c.force_splits;

  DeviceArray<uint16_t> d_q(q), d_k(kc), d_v(vc), d_out(static_cast<size_t>(T) * q_dim);
  DeviceArray<uint8_t> d_k8(c.fp8 ? k8 : std::vector<uint8_t>(1)),
      d_v8(c.fp8 ? v8 : std::vector<uint8_t>(1));
  DeviceArray<int32_t> d_qsl(qsl), d_sl(seq_lens), d_ind(indptr), d_tab(table);
  DeviceArray<int32_t> d_tseq(plan.prefill_tile_seq), d_tq(plan.prefill_tile_q_start),
      d_dec(plan.decode_seqs);
  DeviceArray<float> d_ws(decode_workspace_bytes(kMaxSplitRows, c.nq, hd) / 4);
  DeviceArray<int32_t> d_cnt(decode_counter_bytes(ns, c.nkv) / 4);
  KITE_TEST_CUDA(cudaMemset(d_cnt.get(), 0, d_cnt.size() * 4));
  AttentionParams p;
  p.q = d_q.get();
  p.q_stride = q_stride;
  p.out = d_out.get();
  p.k_cache = d_k.get();
  p.v_cache = d_v.get();
  p.query_start_loc = d_qsl.get();
  p.seq_lens = d_sl.get();
  p.block_table_indptr = d_ind.get();
  p.block_table = d_tab.get();
  p.num_tokens = T;
  p.num_seqs = ns;
  p.num_q_heads = c.nq;
  p.num_kv_heads = c.nkv;
  p.head_dim = hd;
  p.block_size = bs;
  p.scale = cp.scale;
  p.prefill_tile_seq = d_tseq.get();
  p.prefill_tile_q_start = d_tq.get();
  p.num_prefill_tiles = static_cast<int>(plan.prefill_tile_seq.size());
  p.decode_seqs = plan.all_decode ? nullptr : d_dec.get();
  p.num_decode = plan.num_decode;
  p.num_splits = plan.num_splits;
  p.split_out = d_ws.get();
  p.split_lse = d_ws.get() + static_cast<size_t>(kMaxSplitRows) * c.nq * hd;
  p.split_counters = d_cnt.get();
  p.sliding_window = c.window;
  if (c.fp8) {
    p.k_cache = d_k8.get();
    p.v_cache = d_v8.get();
    p.kv_fp8 = true;
    p.k_scale = c.k_scale;
    p.v_scale = c.v_scale;
  }
  p.softcap = c.softcap;
  if (c.flashinfer) {
    std::vector<int32_t> all(ns);
    std::iota(all.begin(), all.end(), 0);
    const FlashInferPlan fp = plan_flashinfer_prefill(qsl.data(), seq_lens.data(), indptr.data(),
                                                      all, c.nq, hd, test_device().num_sms());
    DeviceArray<int32_t> d_work(fp.work);
    d_out.poison();
    flashinfer_prefill(p, d_work.get(), fp.num_ctas, fp.num_works, test_device(), nullptr);
    const std::vector<float> got = to_float(d_out.download());
    EXPECT_LE(compare(got, ref).rel_l2, 2 * kBf16Roundoff);
    EXPECT_TRUE(within_each(got, ref, allowed)) << "flashinfer, " << fp.num_works << " works";
    return;
  }
  // Twice: the split-KV counters must come back to zero for the next launch.
  for (int rep = 0; rep < 2; ++rep) {
    d_out.poison();
    attention(p, *path, test_device(), nullptr);
    const std::vector<float> got = to_float(d_out.download());
    EXPECT_LE(compare(got, ref).rel_l2, 2 * kBf16Roundoff);
    EXPECT_TRUE(within_each(got, ref, allowed))
        << "run " << rep << " path " << (*path == AttentionPath::kGeneric ? "generic" : "tc")
        << " decode " << plan.num_decode << " splits " << plan.num_splits << " tiles "
        << p.num_prefill_tiles;
  }
  const auto cnt = d_cnt.download();
  EXPECT_TRUE(std::all_of(cnt.begin(), cnt.end(), [](int32_t v) { return v == 0; }));
}

std::vector<int> repeat(const std::vector<int>& pattern, int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(pattern[i % pattern.size()]);
  return v;
}

TEST(CudaAttention, DecodeBatchesAndLengths) {
  KITE_REQUIRE_GPU();
  const std::vector<int> lens = {1, 15, 16, 17, 1000, 4097};
  uint32_t seed = 10;
  for (int batch : {1, 3, 17, 128}) {
    for (int hd : {64, 128, 256}) {
      Case c{"decode b" + std::to_string(batch) + " hd" + std::to_string(hd),
             32,
             8,
             hd,
             16,
             repeat(lens, batch),
             std::vector<int>(batch, 1)};
      if (batch == 1) c.seq_lens = {4097};
      run_case(c, seed++);
    }
  }
}

TEST(CudaAttention, DecodeGroupsAndForcedSplits) {
  KITE_REQUIRE_GPU();
  const std::vector<int> lens = {1, 17, 4097, 1000, 16};
  uint32_t seed = 30;
  for (auto [nq, nkv] : std::vector<std::pair<int, int>>{{28, 4}, {8, 8}, {16, 2}, {12, 6}}) {
    for (int splits : {1, 3, kMaxDecodeSplits}) {
      run_case({"group " + std::to_string(nq / nkv) + " splits " + std::to_string(splits), nq, nkv,
                128, 16, repeat(lens, 5), std::vector<int>(5, 1), splits},
               seed++);
    }
  }
  // Block size 32 and 8 (not the default 16).
  run_case({"bs32", 32, 8, 128, 32, repeat(lens, 5), std::vector<int>(5, 1)}, seed++);
  run_case({"bs8", 32, 8, 64, 8, repeat(lens, 5), std::vector<int>(5, 1)}, seed++);
}

TEST(CudaAttention, PrefillChunksOverCachedPrefixes) {
  KITE_REQUIRE_GPU();
  uint32_t seed = 50;
  for (int hd : {64, 128, 256}) {
    // (seq_len, q_len): fresh prompts, chunks after a prefix, tile/block boundaries, decodes.
    run_case({"prefill hd" + std::to_string(hd),
              32,
              8,
              hd,
              16,
              {15, 16, 17, 1000, 1017, 4097, 80, 5},
              {15, 16, 17, 1000, 17, 1, 64, 1}},
             seed++);
  }
  run_case({"prefill group7", 28, 4, 128, 16, {1000, 300, 33}, {1000, 100, 33}}, seed++);
  run_case({"prefill mha", 8, 8, 128, 16, {4097, 17}, {97, 17}}, seed++);
  run_case({"prefill group16 (no decode kernel)", 32, 2, 128, 16, {17, 40, 1}, {1, 40, 1}}, seed++);
  run_case({"prefill bs32", 16, 4, 128, 32, {100, 64, 33}, {100, 31, 1}}, seed++);
}

TEST(CudaAttention, SlidingWindowMatchesCpu) {
  KITE_REQUIRE_GPU();
  uint32_t seed = 70;
  // Windows smaller than the sequences, not multiples of the block or tile sizes; decodes,
  // fresh prompts and chunks over a cached prefix; a window larger than every sequence.
  for (int hd : {64, 128}) {
    run_case({"window 37 hd" + std::to_string(hd),
              32,
              8,
              hd,
              16,
              {15, 200, 1000, 1017, 4097, 80, 300},
              {15, 200, 17, 1, 1, 64, 1},
              0,
              37},
             seed++);
  }
  run_case({"window 100 forced splits", 32, 8, 128, 16, {1000, 4097, 33}, {1, 1, 1}, 7, 100},
           seed++);
  run_case({"window 256 group7", 28, 4, 128, 16, {1000, 300}, {1000, 100}, 0, 256}, seed++);
  run_case({"window larger than all", 32, 8, 128, 16, {100, 17}, {100, 1}, 0, 4096}, seed++);
  run_case({"window 5 generic hd16", 8, 2, 16, 16, {40, 33}, {40, 1}, 0, 5}, seed++);
}

// The FP8 KV cache (E4M3 bytes, per-layer scales) through every kernel: split-KV decode,
// tensor-core prefill chunks over cached prefixes, GQA groups, block sizes 8/16/32 (and 5, not a
// power of two), sliding windows, and the generic small-head path; scales above and below 1.
Case fp8_case(Case c, float k_scale, float v_scale) {
  c.name = "fp8 " + c.name;
  c.fp8 = true;
  c.k_scale = k_scale;
  c.v_scale = v_scale;
  return c;
}

TEST(CudaAttention, Fp8KvCacheMatchesCpuEmulation) {
  KITE_REQUIRE_GPU();
  uint32_t seed = 110;
  const std::vector<int> lens = {1, 15, 16, 17, 1000, 4097};
  for (int hd : {64, 128, 256}) {
    run_case(fp8_case({"decode hd" + std::to_string(hd), 32, 8, hd, 16, repeat(lens, 17),
                       std::vector<int>(17, 1)},
                      0.37f, 2.5f),
             seed++);
    run_case(fp8_case({"prefill hd" + std::to_string(hd),
                       32,
                       8,
                       hd,
                       16,
                       {15, 16, 17, 1000, 1017, 4097, 80, 5},
                       {15, 16, 17, 1000, 17, 1, 64, 1}},
                      1.f, 1.f),
             seed++);
  }
  run_case(fp8_case({"decode group7 splits 3", 28, 4, 128, 16, repeat(lens, 5),
                     std::vector<int>(5, 1), 3},
                    0.02f, 0.5f),
           seed++);
  run_case(
      fp8_case({"prefill group7", 28, 4, 128, 16, {1000, 300, 33}, {1000, 100, 33}}, 3.f, 0.125f),
      seed++);
  run_case(fp8_case({"prefill group16 (no decode kernel)", 32, 2, 128, 16, {17, 40, 1}, {1, 40, 1}},
                    0.7f, 0.7f),
           seed++);
  run_case(fp8_case({"bs32", 16, 4, 128, 32, {100, 64, 33}, {100, 31, 1}}, 0.37f, 1.3f), seed++);
  run_case(fp8_case({"bs8", 32, 8, 64, 8, repeat(lens, 5), std::vector<int>(5, 1)}, 1.f, 0.25f),
           seed++);
  run_case(fp8_case({"bs5", 16, 4, 128, 5, {33, 71, 5}, {33, 1, 5}}, 0.9f, 1.1f), seed++);
  run_case(
      fp8_case(
          {"window 37", 32, 8, 128, 16, {15, 200, 1000, 4097, 80}, {15, 200, 17, 1, 64}, 0, 37},
          0.37f, 2.5f),
      seed++);
  run_case(fp8_case({"generic hd16", 8, 2, 16, 16, {40, 33, 1}, {40, 1, 1}}, 0.37f, 2.5f), seed++);
  run_case(fp8_case({"generic hd8 window 5", 8, 4, 8, 8, {40, 33}, {40, 1}, 0, 5}, 2.f, 0.5f),
           seed++);
  // Soft-capping reads the true score: the prefill kernel applies k_scale before the cap.
  for (int hd : {256, 16}) {
    Case c = fp8_case({"softcap 0.5 hd" + std::to_string(hd), 16, 8, hd, 16, {300, 40, 1000},
                       {300, 1, 17}},
                      0.37f, 2.5f);
    c.softcap = 0.5f;
    run_case(c, seed++);
  }
}

// Gemma 2's logit soft-capping on every kernel of ours (FlashInfer's is not used for such models):
// a cap of 0.5, well inside the scores' range (|scale q.k| reaches ~1.5 here), so tanh bends;
// with and without a window, decode (planner's and forced splits), prefill chunks over cached
// prefixes, head dims 256 (Gemma 2), 128 and the generic path's 16.
TEST(CudaAttention, SoftcapMatchesCpu) {
  KITE_REQUIRE_GPU();
  uint32_t seed = 90;
  for (int hd : {128, 256}) {
    run_case({"softcap hd" + std::to_string(hd),
              16,
              8,
              hd,
              16,
              {15, 200, 1000, 1017, 4097, 80, 300},
              {15, 200, 17, 1, 1, 64, 1},
              0,
              0,
              false,
              0.5f},
             seed++);
  }
  run_case({"softcap window 37",
            32,
            8,
            128,
            16,
            {15, 200, 1000, 4097, 80},
            {15, 200, 17, 1, 64},
            0,
            37,
            false,
            0.5f},
           seed++);
  run_case(
      {"softcap forced splits", 16, 8, 256, 16, {1000, 4097, 33}, {1, 1, 1}, 7, 0, false, 0.5f},
      seed++);
  run_case(
      {"softcap generic hd16 window 5", 8, 2, 16, 16, {40, 33, 7}, {40, 1, 7}, 0, 5, false, 0.5f},
      seed++);
  run_case({"softcap generic hd32", 4, 1, 32, 16, {40, 1}, {7, 1}, 0, 0, false, 2.f}, seed++);
}

TEST(CudaAttention, FlashInferPrefillMatchesCpu) {
  KITE_REQUIRE_GPU();
  if (!flashinfer_prefill_available(test_device())) {
    GTEST_SKIP() << "this build has no FlashInfer (KITE_FLASHINFER_INCLUDE) or no sm_90 device";
  }
  uint32_t seed = 90;
  for (int hd : {64, 128}) {
    run_case({"flashinfer hd" + std::to_string(hd),
              32,
              8,
              hd,
              16,
              {15, 16, 17, 1000, 1017, 4097, 80, 5, 300},
              {15, 16, 17, 1000, 17, 1, 64, 1, 300},
              0,
              0,
              true},
             seed++);
    run_case({"flashinfer window 37 hd" + std::to_string(hd),
              32,
              8,
              hd,
              16,
              {200, 1017, 4097},
              {200, 17, 300},
              0,
              37,
              true},
             seed++);
  }
  run_case({"flashinfer group7", 28, 4, 128, 16, {1000, 300, 33}, {1000, 100, 33}, 0, 0, true},
           seed++);
  run_case({"flashinfer bs32", 16, 4, 128, 32, {100, 64, 33}, {100, 31, 1}, 0, 0, true}, seed++);
}

TEST(CudaAttention, FlashInferPlanCoversEveryTileOnce) {
  // Host-only: every (sequence, query tile, q head) appears exactly once, CTAs in order.
  const std::vector<int32_t> qsl{0, 300, 301, 1301}, sl{300, 900, 1000}, ind{0, 19, 76, 139};
  const FlashInferPlan fp =
      plan_flashinfer_prefill(qsl.data(), sl.data(), ind.data(), {0, 2}, 32, 128, 132);
  ASSERT_EQ(fp.num_ctas, 132);
  const int tiles = 3 + 8;  // ceil(300 / 128) + ceil(1000 / 128)
  ASSERT_EQ(fp.num_works, tiles * 32);
  const int32_t* indptr = fp.work.data();
  EXPECT_EQ(indptr[0], 0);
  EXPECT_EQ(indptr[132], fp.num_works);
  const size_t n = fp.num_works;
  const int32_t* tile = indptr + 133;
  const int32_t* qo = tile + n;
  const int32_t* kv = qo + n;
  const int32_t* head = kv + 3 * n;
  std::set<std::tuple<int, int, int>> seen;
  for (size_t w = 0; w < n; ++w) {
    const int seq = qo[w] == 0 ? 0 : 2;
    EXPECT_EQ(qo[w], qsl[seq]);
    EXPECT_EQ(kv[w], ind[seq]);
    EXPECT_TRUE(seen.insert({seq, tile[w], head[w]}).second);
  }
  EXPECT_EQ(seen.size(), n);
  EXPECT_EQ(flashinfer_prefill_supports(256), false);
}

TEST(CudaAttention, GenericSmallHeadDims) {
  KITE_REQUIRE_GPU();
  uint32_t seed = 70;
  for (int hd : {8, 16, 32}) {
    run_case({"generic hd" + std::to_string(hd),
              8,
              4,
              hd,
              16,
              {1, 15, 16, 17, 300, 50},
              {1, 15, 16, 1, 300, 7}},
             seed++);
  }
}

TEST(CudaAttention, RejectsUnsupportedShapesLoudly) {
  EXPECT_EQ(attention_path(96, 32, 8).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(attention_path(128, 30, 8).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(attention_path(128, 256, 2).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(*attention_path(16, 8, 4), AttentionPath::kGeneric);
  EXPECT_EQ(*attention_path(128, 32, 8), AttentionPath::kTensorCore);
}

TEST(CudaAttention, PlannerSplitsAndTiles) {
  // Pure decode: no tiles, all_decode, splits fill the GPU and respect the caps.
  const std::vector<int32_t> qsl = {0, 1, 2, 3}, sl = {100, 5000, 1};
  AttentionPlan p = plan_attention(qsl.data(), sl.data(), 3, 5000, 32, 8, 132);
  EXPECT_TRUE(p.all_decode);
  EXPECT_EQ(p.num_decode, 3);
  EXPECT_TRUE(p.prefill_tile_seq.empty());
  EXPECT_EQ(p.num_splits, 11);  // ceil(264 / 24)
  EXPECT_EQ(decode_num_splits(1, 8, 0, 132), kMaxDecodeSplits);
  EXPECT_EQ(decode_num_splits(1, 8, 100, 132), 2);
  EXPECT_EQ(decode_num_splits(512, 8, 0, 132), 1);
  // Mixed: tiles of 64/group tokens, longest KV range first.
  const std::vector<int32_t> qsl2 = {0, 20, 21}, sl2 = {50, 9};
  AttentionPlan m = plan_attention(qsl2.data(), sl2.data(), 2, 50, 32, 8, 132);
  EXPECT_FALSE(m.all_decode);
  EXPECT_EQ(m.decode_seqs, std::vector<int32_t>({1}));
  EXPECT_EQ(m.prefill_tile_seq, std::vector<int32_t>({0, 0}));
  EXPECT_EQ(m.prefill_tile_q_start, std::vector<int32_t>({16, 0}));
}

}  // namespace
}  // namespace kite::cuda::test
