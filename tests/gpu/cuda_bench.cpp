// kite_cuda_bench: kernel-level and single-stream benchmarks of the CUDA backend on the
// Llama-3-8B shape (random data; speed does not depend on the values).
//
//   kite_cuda_bench [--out results.json] [--skip-w5] [--graphs 0|1] [--gemv-max-m N]
//   kite_cuda_bench --ops [SUBSTRING] [--check] [--out results.json]
//   kite_cuda_bench --w5-family qwen3-30b-a3b:4 [--w5-family gemma-3-12b:8] [--out results.json]
//   kite_cuda_bench --step-profile [--profile-batches 1,16,32] [--out results.json]
//   kite_cuda_bench --gemm-plans [--out results.json]
//
// Measures, with CUDA events around warmed-up launches (median of repeats):
//   - ceilings: device-to-device copy (bytes read + written per second)
//   - linear layers at decode shapes (M = 1..16): our GEMV and cuBLASLt, TB/s of weights
//     streamed (weights rotate over > 400 MB so L2 never holds them)
//   - decode attention: TB/s of K/V read; prefill attention: TFLOP/s (causal FLOPs)
//   - W5: batch-1 decode of the full 8B shape (128 prompt tokens, 256 generated), the engine's
//     call sequence (forward, sample) timed on the host: TPOT mean and median.
// --w5-family runs W5 alone on a family shape with fewer layers than published (random weights
// for every tensor its model definition declares): TPOT against the bytes a decode step reads
// (MoE: the router and the top-k experts of each layer only).
// --ops instead times every case of the op table (op_table.h; the cases cuda_ops_test checks),
// or those whose name contains SUBSTRING: GB/s of the bytes a launch must move, or TFLOP/s for
// FLOP-bound cases (GEMM, prefill attention), median of 20 launches; --check also compares each
// case's first launch with the CPU reference. Small cases fit in L2 (50 MB on H100): their GB/s
// are launch- and cache-bound, not HBM numbers (the default mode's linear benchmarks rotate their
// weights for that).
// --step-profile: the 8B shape's steps (decode at batch 1..256 over 192 and 2112 cached tokens,
// W1 (128,128) and (2048,128) at steady state; prefill of 2048 and 4x2048 tokens; a mixed step
// of 128 decodes and 3x2048 prompt tokens) profiled per
// phase (CudaModelRunner::set_step_profiling) against each phase's roofline (--hbm-tbps,
// --bf16-tflops), with the same step's eager and graph-replayed wall time.
// --gemm-plans: first-call vs steady-call host cost and device speed of cuBLASLt GEMMs at the 8B
// linears' shapes over a spread of prefill row counts, algorithms per exact shape and per row
// bucket (gemm.h).
// Prints a table and writes every number as JSON lines.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_model_runner.h"
#include "backend/cuda/device_context.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/step_profiler.h"
#include "checkpoint/config.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "models/registry.h"
#include "op_table.h"

namespace kite::cuda {
namespace {

#define BENCH_CUDA(expr)                                                                         \
  do {                                                                                           \
    cudaError_t e_ = (expr);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

std::FILE* g_json = nullptr;
std::string g_tag;  // appended to W5 names (variants: graphs off, PDL off, ...)

void record(const std::string& name_in, const std::string& metric, double value,
            const std::string& unit, const std::string& extra = "") {
  const std::string name =
      name_in.rfind("W5", 0) == 0 && !g_tag.empty() ? name_in + " [" + g_tag + "]" : name_in;
  std::printf("%-52s %-10s %10.3f %s\n", name.c_str(), metric.c_str(), value, unit.c_str());
  if (g_json != nullptr) {
    std::fprintf(g_json,
                 "{\"engine\":\"kite\",\"gpu\":\"H100\",\"name\":\"%s\",\"metric\":\"%s\","
                 "\"value\":%.6g,\"unit\":\"%s\"%s}\n",
                 name.c_str(), metric.c_str(), value, unit.c_str(), extra.c_str());
    std::fflush(g_json);
  }
}

// Fills n random bf16 values of magnitude in [scale, 2 * scale) with random signs and
// mantissas (parallel; 4 values per 64-bit draw). scale must be a power of two.
void fill_random_bf16(uint16_t* dst, size_t n, float scale, uint64_t seed, ThreadPool& pool) {
  const uint16_t base = f32_to_bf16(scale).bits & 0x7f80;  // the exponent of scale
  pool.parallel_for(static_cast<int64_t>((n + 4095) / 4096), [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      uint64_t s = seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(blk + 1));
      const size_t i0 = static_cast<size_t>(blk) * 4096, i1 = std::min(n, i0 + 4096);
      for (size_t i = i0; i < i1; i += 4) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        for (size_t j = 0; j < 4 && i + j < i1; ++j) {
          const uint16_t r = static_cast<uint16_t>(s >> (16 * j));
          dst[i + j] = static_cast<uint16_t>((r & 0x807f) | base);
        }
      }
    }
  });
}

void* device_random(size_t elems, float scale, uint64_t seed, ThreadPool& pool) {
  std::vector<uint16_t> h(elems);
  fill_random_bf16(h.data(), elems, scale, seed, pool);
  void* d = nullptr;
  BENCH_CUDA(cudaMalloc(&d, elems * 2));
  BENCH_CUDA(cudaMemcpy(d, h.data(), elems * 2, cudaMemcpyHostToDevice));
  return d;
}

// Median milliseconds of `fn` (launch work on stream 0) over `reps` after `warmup`.
double time_ms(const std::function<void(int)>& fn, int warmup = 3, int reps = 20) {
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) fn(i);
  BENCH_CUDA(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    BENCH_CUDA(cudaEventRecord(a));
    fn(warmup + i);
    BENCH_CUDA(cudaEventRecord(b));
    BENCH_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  BENCH_CUDA(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Replays of a captured graph (median ms per replay).
double time_graph_ms(cudaStream_t stream, const std::function<void()>& body, int reps = 10) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  body();
  BENCH_CUDA(cudaStreamEndCapture(stream, &graph));
  BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  std::vector<double> t;
  for (int i = 0; i < reps + 2; ++i) {
    BENCH_CUDA(cudaEventRecord(a, stream));
    BENCH_CUDA(cudaGraphLaunch(exec, stream));
    BENCH_CUDA(cudaEventRecord(b, stream));
    BENCH_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
    if (i >= 2) t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void bench_copy() {
  const size_t bytes = 4ull << 30;
  void *a = nullptr, *b = nullptr;
  BENCH_CUDA(cudaMalloc(&a, bytes));
  BENCH_CUDA(cudaMalloc(&b, bytes));
  BENCH_CUDA(cudaMemset(a, 0x5a, bytes));
  const double ms =
      time_ms([&](int) { BENCH_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  record("ceiling: device-to-device copy 4 GiB", "TB/s", 2.0 * bytes / ms / 1e9, "TB/s");
  cudaFree(a);
  cudaFree(b);
}

void bench_linear(const DeviceContext& dev, ThreadPool& pool) {
  struct Shape {
    const char* name;
    int n, k;
    bool gated, f32;
  };
  const Shape shapes[] = {{"qkv 6144x4096", 6144, 4096, false, false},
                          {"o 4096x4096", 4096, 4096, false, false},
                          {"gate_up+silu 28672x4096", 28672, 4096, true, false},
                          {"down 4096x14336", 4096, 14336, false, false},
                          {"lm_head 128256x4096 f32", 128256, 4096, false, true}};
  auto gemm = GemmRunner::create();
  if (!gemm.ok()) std::exit(1);
  for (const Shape& s : shapes) {
    const size_t w_elems = static_cast<size_t>(s.n) * s.k;
    const int copies = static_cast<int>(std::max<size_t>(1, (400ull << 20) / (w_elems * 2) + 1));
    uint16_t* w = static_cast<uint16_t*>(device_random(w_elems * copies, 1.f / 32, 1, pool));
    uint16_t* x = static_cast<uint16_t*>(device_random(16ull * s.k, 0.5f, 2, pool));
    void* y = nullptr;
    BENCH_CUDA(cudaMalloc(&y, 16ull * s.n * 4));
    void* gu = nullptr;
    BENCH_CUDA(cudaMalloc(&gu, 16ull * s.n * 2));
    for (int m : {1, 2, 4, 8, 16}) {
      const double bytes = static_cast<double>(w_elems) * 2;
      if (m <= kGemvMaxM) {
        const double ms = time_ms([&](int i) {
          GemvParams p;
          p.x = x;
          p.w = w + (i % copies) * w_elems;
          p.y = y;
          p.m = m;
          p.n = s.n;
          p.k = s.k;
          p.x_stride = s.k;
          p.y_stride = s.gated ? s.n / 2 : s.n;
          p.epilogue = s.gated ? GemvEpilogue::kSiluMul : GemvEpilogue::kNone;
          p.out_dtype = s.f32 ? DType::kF32 : DType::kBF16;
          gemv(p, dev, nullptr);
        });
        record(std::string("gemv ") + s.name + " M=" + std::to_string(m), "TB/s", bytes / ms / 1e9,
               "TB/s", ",\"ms\":" + std::to_string(ms));
      }
      const double ms = time_ms([&](int i) {
        GemmArgs a;
        a.x = x;
        a.ldx = s.k;
        a.w = w + (i % copies) * w_elems;
        a.ldw = s.k;
        a.y = s.gated ? gu : y;
        a.ldy = s.n;
        a.m = m;
        a.n = s.n;
        a.k = s.k;
        a.out_dtype = s.f32 ? DType::kF32 : DType::kBF16;
        if (!(*gemm)->gemm(a, nullptr).ok()) std::exit(1);
      });
      record(std::string("cublasLt ") + s.name + " M=" + std::to_string(m), "TB/s",
             bytes / ms / 1e9, "TB/s", ",\"ms\":" + std::to_string(ms));
    }
    // The decode path's fused forms (M = 1): norm prologue, residual epilogue.
    if (!s.f32) {
      const double ms = time_ms([&](int i) {
        GemvParams p;
        p.x = x;
        p.w = w + (i % copies) * w_elems;
        p.m = 1;
        p.n = s.n;
        p.k = s.k;
        p.x_stride = s.k;
        p.epilogue = s.gated ? GemvEpilogue::kSiluMul : GemvEpilogue::kNone;
        p.y_stride = s.gated ? s.n / 2 : s.n;
        p.y = gu;
        if (s.gated || s.n == 6144) {
          p.norm_weight = x;  // any [k] bf16 vector
        } else {
          p.residual = gu;
        }
        gemv(p, dev, nullptr);
      });
      record(std::string("gemv fused ") + (s.gated || s.n == 6144 ? "norm+" : "residual+") +
                 s.name + " M=1",
             "TB/s", static_cast<double>(w_elems) * 2 / ms / 1e9, "TB/s",
             ",\"ms\":" + std::to_string(ms));
    }
    cudaFree(w);
    cudaFree(x);
    cudaFree(y);
    cudaFree(gu);
  }
}

struct AttnSetup {
  std::vector<int32_t> qsl, sl, indptr, table;
  int tokens = 0;
};

AttnSetup make_batch(const std::vector<int>& seq_lens, const std::vector<int>& q_lens, int bs) {
  AttnSetup s;
  s.qsl = {0};
  s.indptr = {0};
  int next = 1;
  for (size_t i = 0; i < seq_lens.size(); ++i) {
    for (int b = 0; b < (seq_lens[i] + bs - 1) / bs; ++b) s.table.push_back(next++);
    s.indptr.push_back(static_cast<int32_t>(s.table.size()));
    s.qsl.push_back(s.qsl.back() + q_lens[i]);
    s.sl.push_back(seq_lens[i]);
  }
  s.tokens = s.qsl.back();
  return s;
}

template <typename T>
T* to_device(const std::vector<T>& v) {
  T* d = nullptr;
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&d), std::max<size_t>(1, v.size()) * sizeof(T)));
  if (!v.empty()) BENCH_CUDA(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Max |a - b| over n bf16 values (device), and max |a|.
std::pair<double, double> max_abs_diff(const void* a, const void* b, size_t n) {
  std::vector<uint16_t> ha(n), hb(n);
  BENCH_CUDA(cudaMemcpy(ha.data(), a, n * 2, cudaMemcpyDeviceToHost));
  BENCH_CUDA(cudaMemcpy(hb.data(), b, n * 2, cudaMemcpyDeviceToHost));
  auto f = [](uint16_t v) {
    uint32_t u = static_cast<uint32_t>(v) << 16;
    float x;
    std::memcpy(&x, &u, 4);
    return static_cast<double>(x);
  };
  double d = 0, m = 0;
  for (size_t i = 0; i < n; ++i) {
    d = std::max(d, std::abs(f(ha[i]) - f(hb[i])));
    m = std::max(m, std::abs(f(ha[i])));
  }
  return {d, m};
}

// Paged attention at the 8B shapes (32 q / 8 kv heads, block 16): `batch` sequences of `ctx`
// tokens; prefill computes the last `qlen` of them (qlen < ctx: a chunk over a cached prefix),
// decode one. Prefill also runs FlashInfer's sm90 kernel on the same inputs when the build has
// it (outputs compared, both timed).
void bench_attention(const DeviceContext& dev, ThreadPool& pool, bool prefill, int batch, int ctx,
                     int qlen = 0, int hd = 128) {
  const int nq = 32, nkv = 8, bs = 16;
  if (qlen == 0) qlen = prefill ? ctx : 1;
  std::vector<int> sl(batch, ctx), ql(batch, qlen);
  AttnSetup s = make_batch(sl, ql, bs);
  const size_t blocks = s.table.size() + 1;
  const size_t cache_elems = blocks * bs * nkv * hd;
  void* kc = device_random(cache_elems, 0.5f, 3, pool);
  void* vc = device_random(cache_elems, 0.5f, 4, pool);
  const int64_t q_stride = (nq + 2 * nkv) * hd;
  void* q = device_random(static_cast<size_t>(s.tokens) * q_stride, 0.5f, 5, pool);
  void* out = nullptr;
  const size_t out_elems = static_cast<size_t>(s.tokens) * nq * hd;
  BENCH_CUDA(cudaMalloc(&out, out_elems * 2));
  AttentionPlan plan =
      plan_attention(s.qsl.data(), s.sl.data(), batch, ctx, nq, nkv, dev.num_sms());
  int32_t *qsl = to_device(s.qsl), *sld = to_device(s.sl), *ind = to_device(s.indptr),
          *tab = to_device(s.table), *tseq = to_device(plan.prefill_tile_seq),
          *tq = to_device(plan.prefill_tile_q_start);
  float* ws = nullptr;
  BENCH_CUDA(
      cudaMalloc(reinterpret_cast<void**>(&ws), decode_workspace_bytes(kMaxSplitRows, nq, hd)));
  int32_t* cnt = nullptr;
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&cnt), decode_counter_bytes(batch, nkv)));
  BENCH_CUDA(cudaMemset(cnt, 0, decode_counter_bytes(batch, nkv)));
  AttentionParams p;
  p.q = q;
  p.q_stride = q_stride;
  p.out = out;
  p.k_cache = kc;
  p.v_cache = vc;
  p.query_start_loc = qsl;
  p.seq_lens = sld;
  p.block_table_indptr = ind;
  p.block_table = tab;
  p.num_tokens = s.tokens;
  p.num_seqs = batch;
  p.num_q_heads = nq;
  p.num_kv_heads = nkv;
  p.head_dim = hd;
  p.block_size = bs;
  p.scale = 1.f / std::sqrt(static_cast<float>(hd));
  p.prefill_tile_seq = tseq;
  p.prefill_tile_q_start = tq;
  p.num_prefill_tiles = static_cast<int>(plan.prefill_tile_seq.size());
  p.num_decode = plan.num_decode;
  p.num_splits = plan.num_splits;
  p.split_out = ws;
  p.split_lse = ws + static_cast<size_t>(kMaxSplitRows) * nq * hd;
  p.split_counters = cnt;
  const double ms = time_ms([&](int) { attention(p, AttentionPath::kTensorCore, dev, nullptr); });
  std::string shape = "b" + std::to_string(batch) + " ctx" + std::to_string(ctx);
  if (prefill && qlen != ctx) shape += " q" + std::to_string(qlen);
  shape += " (32/8 heads, hd" + std::to_string(hd) + ")";
  const std::string name = std::string(prefill ? "prefill" : "decode") + " attention " + shape;
  if (prefill) {
    // Causal: the query at position i attends to i + 1 keys; QK^T and PV are 2 FLOP per MAC.
    const double prefix = ctx - qlen;
    const double macs = static_cast<double>(batch) * nq * hd *
                        (qlen * prefix + static_cast<double>(qlen) * (qlen + 1) / 2.0);
    record(name, "TFLOP/s", 4.0 * macs / ms / 1e9, "TFLOP/s", ",\"ms\":" + std::to_string(ms));
    if (flashinfer_prefill_available(dev) && flashinfer_prefill_supports(hd)) {
      std::vector<int32_t> seqs(batch);
      for (int i = 0; i < batch; ++i) seqs[i] = i;
      const double t0 = now_s();
      FlashInferPlan fplan = plan_flashinfer_prefill(s.qsl.data(), s.sl.data(), s.indptr.data(),
                                                     seqs, nq, hd, dev.num_sms());
      const double plan_us = (now_s() - t0) * 1e6;
      int32_t* work = to_device(fplan.work);
      void* out2 = nullptr;
      BENCH_CUDA(cudaMalloc(&out2, out_elems * 2));
      BENCH_CUDA(cudaMemset(out2, 0, out_elems * 2));
      AttentionParams pf = p;
      pf.out = out2;
      flashinfer_prefill(pf, work, fplan.num_ctas, fplan.num_works, dev, nullptr);
      BENCH_CUDA(cudaDeviceSynchronize());
      const auto [diff, mag] = max_abs_diff(out, out2, out_elems);
      const double fms = time_ms([&](int) {
        flashinfer_prefill(pf, work, fplan.num_ctas, fplan.num_works, dev, nullptr);
      });
      record("flashinfer " + name, "TFLOP/s", 4.0 * macs / fms / 1e9, "TFLOP/s",
             ",\"ms\":" + std::to_string(fms) + ",\"max_abs_diff_vs_ours\":" +
                 std::to_string(diff) + ",\"max_abs_out\":" + std::to_string(mag) +
                 ",\"plan_us\":" + std::to_string(plan_us));
      std::printf("  flashinfer vs ours: max |diff| %.3g (max |out| %.3g), plan %.0f us\n", diff,
                  mag, plan_us);
      cudaFree(work);
      cudaFree(out2);
    }
  } else {
    const double bytes = static_cast<double>(batch) * ctx * nkv * hd * 2 * 2;
    record(name, "TB/s", bytes / ms / 1e9, "TB/s",
           ",\"ms\":" + std::to_string(ms) + ",\"splits\":" + std::to_string(plan.num_splits));
    // Back to back in a CUDA graph, as in a decode step (launch latency overlapped).
    cudaStream_t st;
    BENCH_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    const double gms = time_graph_ms(st, [&] {
      for (int i = 0; i < 32; ++i) attention(p, AttentionPath::kTensorCore, dev, st);
    });
    record(name + " x32 in a graph, per launch", "us", gms * 1000.0 / 32, "us");
    cudaStreamDestroy(st);
  }
  for (void* ptr : {kc, vc, q, out, static_cast<void*>(ws), static_cast<void*>(cnt),
                    static_cast<void*>(qsl), static_cast<void*>(sld), static_cast<void*>(ind),
                    static_cast<void*>(tab), static_cast<void*>(tseq), static_cast<void*>(tq)}) {
    cudaFree(ptr);
  }
}

// The decode step's GEMV stream alone (32 layers of fused qkv/o/gate-up/down GEMVs + lm_head,
// M = 1, weights rotating over 4 layer sets so L2 never holds them) and 32 batch-1 decode
// attentions, each captured in a CUDA graph: what W5 would be with nothing else in the step.
void bench_decode_stream(const DeviceContext& dev, ThreadPool& pool) {
  cudaStream_t st;
  BENCH_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const int H = 4096, I = 14336, QKV = 6144, V = 128256, kSets = 4;
  struct Layer {
    uint16_t *qkv, *o, *gu, *down;
  };
  std::vector<Layer> sets;
  for (int i = 0; i < kSets; ++i) {
    sets.push_back(
        {static_cast<uint16_t*>(device_random(size_t{QKV} * H, 1.f / 64, 10 + i, pool)),
         static_cast<uint16_t*>(device_random(size_t{H} * H, 1.f / 64, 20 + i, pool)),
         static_cast<uint16_t*>(device_random(size_t{2} * I * H, 1.f / 64, 30 + i, pool)),
         static_cast<uint16_t*>(device_random(size_t{H} * I, 1.f / 64, 40 + i, pool))});
  }
  uint16_t* lm = static_cast<uint16_t*>(device_random(size_t{V} * H, 1.f / 64, 50, pool));
  uint16_t* h = static_cast<uint16_t*>(device_random(H, 0.5f, 51, pool));
  uint16_t* nw = static_cast<uint16_t*>(device_random(H, 1.f, 52, pool));
  uint16_t* attn = static_cast<uint16_t*>(device_random(H, 0.5f, 53, pool));
  void *qkv = nullptr, *act = nullptr, *logits = nullptr;
  BENCH_CUDA(cudaMalloc(&qkv, QKV * 2));
  BENCH_CUDA(cudaMalloc(&act, I * 2));
  BENCH_CUDA(cudaMalloc(&logits, size_t{V} * 4));
  auto gemv1 = [&](const void* x, const void* w, void* y, int n, int k, GemvEpilogue e,
                   const void* norm, const void* res, bool f32) {
    GemvParams p;
    p.x = x;
    p.w = w;
    p.y = y;
    p.m = 1;
    p.n = n;
    p.k = k;
    p.x_stride = k;
    p.y_stride = e == GemvEpilogue::kSiluMul ? n / 2 : n;
    p.epilogue = e;
    p.norm_weight = norm;
    p.residual = res;
    p.out_dtype = f32 ? DType::kF32 : DType::kBF16;
    gemv(p, dev, st);
  };
  const double ms = time_graph_ms(st, [&] {
    for (int l = 0; l < 32; ++l) {
      const Layer& w = sets[l % kSets];
      gemv1(h, w.qkv, qkv, QKV, H, GemvEpilogue::kNone, nw, nullptr, false);
      gemv1(attn, w.o, h, H, H, GemvEpilogue::kNone, nullptr, h, false);
      gemv1(h, w.gu, act, 2 * I, H, GemvEpilogue::kSiluMul, nw, nullptr, false);
      gemv1(act, w.down, h, H, I, GemvEpilogue::kNone, nullptr, h, false);
    }
    gemv1(h, lm, logits, V, H, GemvEpilogue::kNone, nullptr, nullptr, true);
  });
  const double bytes =
      2.0 * (32.0 * (4096.0 * 6144 + 4096.0 * 4096 + 3 * 4096.0 * 14336) + 128256.0 * 4096);
  record("decode GEMV stream in a graph (32 layers + lm_head, M=1)", "ms", ms, "ms",
         ",\"tbps\":" + std::to_string(bytes / ms / 1e9));
  record("decode GEMV stream in a graph: weight bytes / time", "TB/s", bytes / ms / 1e9, "TB/s");
  for (Layer& w : sets) {
    cudaFree(w.qkv);
    cudaFree(w.o);
    cudaFree(w.gu);
    cudaFree(w.down);
  }
  for (void* ptr : {static_cast<void*>(lm), static_cast<void*>(h), static_cast<void*>(nw),
                    static_cast<void*>(attn), qkv, act, logits}) {
    cudaFree(ptr);
  }
  cudaStreamDestroy(st);
}

// The W5 measurement on a runner already set up: 128-token prefill (TTFT), 256 greedy decode
// steps timed on the host (TPOT), the device time of one decode step, and `bytes_per_step` (the
// weights one decode step reads) over TPOT. `prefix` starts every record's name; `shape` names
// the model in the TPOT record. times: host weights start/end, device weights end, KV + graphs end.
void run_w5(CudaModelRunner& r, const std::string& prefix, const std::string& shape, int64_t vocab,
            double bytes_per_step,
            const std::array<std::chrono::steady_clock::time_point, 4>& times, int64_t kv_blocks) {
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  record(prefix + " setup: random weights on host (s)", "s", secs(times[0], times[1]), "s");
  record(prefix + " setup: weights to device (s)", "s", secs(times[1], times[2]), "s");
  record(prefix + " setup: profile + KV + graphs (s)", "s", secs(times[2], times[3]), "s",
         ",\"kv_blocks\":" + std::to_string(kv_blocks));

  const int prompt = 128, gen = 256;
  const auto token = [&](int i) {
    return static_cast<int32_t>((i * 7919) % std::min<int64_t>(vocab, 128000));
  };
  std::vector<int32_t> blocks;
  for (int i = 0; i < (prompt + gen) / 16 + 1; ++i) blocks.push_back(i + 1);
  SamplingBatch sb;
  sb.temperature = {0.f};
  sb.top_k = {0};
  sb.top_p = {1.f};
  sb.min_p = {0.f};
  sb.repetition_penalty = {1.f};
  sb.frequency_penalty = {0.f};
  sb.presence_penalty = {0.f};
  sb.seed = {0};
  sb.step = {0};
  sb.num_logprobs = {-1};
  sb.all_greedy = true;
  for (int trial = 0; trial < 2; ++trial) {
    ForwardBatch b;
    for (int i = 0; i < prompt; ++i) {
      b.token_ids.push_back(token(i));
      b.positions.push_back(i);
      b.slot_mapping.push_back(16 + i);
    }
    b.query_start_loc = {0, prompt};
    b.seq_lens = {prompt};
    b.block_table_indptr = {0, prompt / 16};
    b.block_table.assign(blocks.begin(), blocks.begin() + prompt / 16);
    b.logits_indices = {prompt - 1};
    b.max_query_len = prompt;
    b.max_seq_len = prompt;
    TensorView logits;
    SamplerOutput so;
    const auto p0 = std::chrono::steady_clock::now();
    if (!r.forward(b, &logits).ok() || !r.sample(logits, sb, &so).ok()) std::exit(1);
    const auto p1 = std::chrono::steady_clock::now();
    std::vector<double> tpot;
    int graphs = 0;
    for (int st = 0; st < gen; ++st) {
      const int pos = prompt + st;
      ForwardBatch d;
      d.token_ids = {so.token_ids[0]};
      d.positions = {pos};
      d.slot_mapping = {16 + pos};
      d.query_start_loc = {0, 1};
      d.seq_lens = {pos + 1};
      const int nblk = pos / 16 + 1;
      d.block_table_indptr = {0, nblk};
      d.block_table.assign(blocks.begin(), blocks.begin() + nblk);
      d.logits_indices = {0};
      d.max_query_len = 1;
      d.max_seq_len = pos + 1;
      const auto s0 = std::chrono::steady_clock::now();
      if (!r.forward(d, &logits).ok() || !r.sample(logits, sb, &so).ok()) std::exit(1);
      const auto s1 = std::chrono::steady_clock::now();
      graphs += r.last_forward_used_graph() ? 1 : 0;
      tpot.push_back(secs(s0, s1) * 1000.0);
    }
    double mean = 0;
    for (double t : tpot) mean += t;
    mean /= static_cast<double>(tpot.size());
    std::sort(tpot.begin(), tpot.end());
    if (trial == 1) {
      record(prefix + " prefill 128 tokens (TTFT, ms)", "ms", secs(p0, p1) * 1000.0, "ms");
      record(prefix + " TPOT mean (" + shape + ", bs1, 128 in/256 out)", "ms", mean, "ms",
             ",\"graph_steps\":" + std::to_string(graphs));
      record(prefix + " TPOT median", "ms", tpot[tpot.size() / 2], "ms");
      record(prefix + " TPOT p99", "ms", tpot[tpot.size() * 99 / 100], "ms");
      // Device time of one decode step: the same step's forward() 100 times back to back (no
      // sampling, no host sync in between), then one sync.
      ForwardBatch d;
      const int pos = prompt + gen - 1;
      d.token_ids = {so.token_ids[0]};
      d.positions = {pos};
      d.slot_mapping = {16 + pos};
      d.query_start_loc = {0, 1};
      d.seq_lens = {pos + 1};
      d.block_table_indptr = {0, pos / 16 + 1};
      d.block_table.assign(blocks.begin(), blocks.begin() + pos / 16 + 1);
      d.logits_indices = {0};
      d.max_query_len = 1;
      d.max_seq_len = pos + 1;
      std::vector<float> row(static_cast<size_t>(vocab));
      if (!r.forward(d, &logits).ok() || !r.logits_to_host(logits, row.data()).ok()) std::exit(1);
      const auto f0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 100; ++i) {
        if (!r.forward(d, &logits).ok()) std::exit(1);
      }
      if (!r.logits_to_host(logits, row.data()).ok()) std::exit(1);
      const double fwd = secs(f0, std::chrono::steady_clock::now()) * 1000.0 / 100;
      record(prefix + " device time per decode step (forward only)", "ms", fwd, "ms");
      record(prefix + " weight bytes / TPOT", "TB/s", bytes_per_step / (mean / 1000.0) / 1e12,
             "TB/s");
    }
  }
}

// Configs of the family W5 shapes (config.json as published; num_hidden_layers replaced).
std::string family_config(const std::string& name) {
  if (name == "qwen3-30b-a3b") {
    return R"({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
      "attention_bias": false, "decoder_sparse_step": 1, "head_dim": 128, "hidden_act": "silu",
      "hidden_size": 2048, "intermediate_size": 6144, "max_position_embeddings": 40960,
      "mlp_only_layers": [], "moe_intermediate_size": 768, "norm_topk_prob": true,
      "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8,
      "num_hidden_layers": LAYERS, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
      "rope_scaling": null, "rope_theta": 1000000.0, "sliding_window": null,
      "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_sliding_window": false,
      "vocab_size": 151936})";
  }
  if (name == "gemma-3-12b" || name == "gemma-3-27b") {
    const bool big = name == "gemma-3-27b";
    return std::string(R"({"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
      "hidden_activation": "gelu_pytorch_tanh", "head_dim": )") +
           (big ? "128" : "256") + R"(, "hidden_size": )" + (big ? "5376" : "3840") +
           R"(, "intermediate_size": )" + (big ? "21504" : "15360") +
           R"(, "num_attention_heads": )" + (big ? "32" : "16") + R"(, "num_key_value_heads": )" +
           (big ? "16" : "8") + R"(, "query_pre_attn_scalar": )" + (big ? "168" : "256") +
           R"(, "num_hidden_layers": LAYERS, "max_position_embeddings": 131072,
      "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
      "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "sliding_window": 1024,
      "sliding_window_pattern": 6, "attn_logit_softcapping": null,
      "final_logit_softcapping": null, "torch_dtype": "bfloat16", "vocab_size": 262208})";
  }
  return "";
}

// W5 on a family shape (qwen3-30b-a3b, gemma-3-12b, gemma-3-27b) with `layers` decoder layers
// (fewer than published to fit host memory and time: say so in the numbers), random weights for
// every tensor the model definition declares. The roofline bytes of a decode step: every dense
// linear's weights once, and per MoE layer the router plus top_k experts' gate/up/down.
void bench_family_w5(ThreadPool& pool, const CudaRunnerOptions& opts, const std::string& name,
                     int layers) {
  std::string json = family_config(name);
  if (json.empty()) {
    std::fprintf(stderr, "W5 family: unknown shape %s\n", name.c_str());
    return;
  }
  json.replace(json.find("LAYERS"), 6, std::to_string(layers));
  auto cfg = parse_hf_config(json);
  if (!cfg.ok()) {
    std::fprintf(stderr, "W5 %s: %s\n", name.c_str(), cfg.status().to_string().c_str());
    return;
  }
  const ModelConfig& c = *cfg;
  auto graph = build_model_graph(c);
  if (!graph.ok()) {
    std::fprintf(stderr, "W5 %s: %s\n", name.c_str(), graph.status().to_string().c_str());
    return;
  }
  struct Owned {
    std::vector<uint16_t> data;
    std::vector<int64_t> shape;
  };
  std::map<std::string, Owned> tensors;
  // Optional weights (GGUF's rope_freqs.weight) are absent from a Hugging Face checkpoint, as
  // here: writing them as bf16 would present a tensor the loader expects in F32.
  std::set<std::string> optional;
  for (const WeightDecl& w : graph->weights) {
    if (!w.optional) continue;
    for (const TensorDecl& t : w.parts) optional.insert(t.name);
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (const TensorDecl* t : graph->tensors()) {
    if (optional.count(t->name) != 0) continue;
    int64_t n = 1;
    for (int64_t d : t->shape) n *= d;
    Owned& o = tensors[t->name];
    o.data.resize(static_cast<size_t>(n));
    o.shape = t->shape;
    const float scale =
        t->shape.size() == 1 ? 0.1f : 1.f / std::sqrt(static_cast<float>(t->shape.back()));
    fill_random_bf16(o.data.data(), o.data.size(), scale, std::hash<std::string>()(t->name), pool);
  }
  double params = 0;
  for (const Op& op : graph->ops) {
    if (op.kind == OpKind::kLinear) {
      const WeightDecl& w = graph->weight(op.weight);
      params += static_cast<double>(w.rows) * static_cast<double>(w.cols);
    } else if (op.kind == OpKind::kMoe) {
      const MoeDecl& m = graph->moes[static_cast<size_t>(op.moe)];
      const WeightDecl& router = graph->weight(m.router);
      const WeightDecl& gu = graph->weight(m.gate_up[0]);
      const WeightDecl& down = graph->weight(m.down[0]);
      params += static_cast<double>(router.rows) * static_cast<double>(router.cols) +
                m.top_k * (static_cast<double>(gu.rows) * static_cast<double>(gu.cols) +
                           static_cast<double>(down.rows) * static_cast<double>(down.cols));
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  WeightLookup lookup = [&](std::string_view tn) -> Result<TensorView> {
    auto it = tensors.find(std::string(tn));
    if (it == tensors.end()) return not_found(std::string(tn));
    return TensorView::contiguous(it->second.data.data(), DType::kBF16, it->second.shape.data(),
                                  static_cast<int>(it->second.shape.size()));
  };
  const std::string prefix = "W5 " + name + " " + std::to_string(layers) + "L";
  auto runner = CudaModelRunner::create(c, lookup, opts);
  if (!runner.ok()) {
    std::fprintf(stderr, "%s: %s\n", prefix.c_str(), runner.status().to_string().c_str());
    return;
  }
  const auto t2 = std::chrono::steady_clock::now();
  tensors.clear();
  CudaModelRunner& r = **runner;
  KvCacheConfig kc;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 256;
  kc.max_num_batched_tokens = 8192;
  kc.gpu_memory_utilization = 0.9;
  auto nb = r.determine_num_kv_blocks(kc);
  if (!nb.ok() || !r.allocate_kv_cache(*nb, kc).ok()) {
    std::fprintf(stderr, "%s: KV cache setup failed\n", prefix.c_str());
    return;
  }
  const auto t3 = std::chrono::steady_clock::now();
  run_w5(r, prefix, name + " shape, " + std::to_string(layers) + " layers", c.vocab_size,
         2.0 * params, {t0, t1, t2, t3}, *nb);
}

// The Llama-3-8B shape with random weights on a runner with its KV cache (max_num_seqs 256,
// max_num_batched_tokens 8192, gpu_memory_utilization 0.9); times as run_w5 takes them.
struct Llama8B {
  ModelConfig cfg;
  std::unique_ptr<CudaModelRunner> runner;
  int64_t kv_blocks = 0;
  std::array<std::chrono::steady_clock::time_point, 4> times;
};

ModelConfig llama8b_config() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.family = ModelFamily::kLlama;
  c.vocab_size = 128256;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.max_position_embeddings = 8192;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.torch_dtype = DType::kBF16;
  return c;
}

bool make_llama8b(ThreadPool& pool, const CudaRunnerOptions& opts, const char* what, Llama8B* out) {
  out->cfg = llama8b_config();
  const ModelConfig& c = out->cfg;
  struct Owned {
    std::vector<uint16_t> data;
    std::vector<int64_t> shape;
  };
  std::map<std::string, Owned> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    Owned& o = tensors[name];
    o.data.resize(static_cast<size_t>(n));
    o.shape = shape;
    fill_random_bf16(o.data.data(), o.data.size(), scale, std::hash<std::string>()(name), pool);
  };
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t H = 4096, I = 14336, kv = 1024;
  add("model.embed_tokens.weight", {c.vocab_size, H}, 0.5f);
  add("lm_head.weight", {c.vocab_size, H}, 1.f / 64);
  add("model.norm.weight", {H}, 1.f);
  for (int l = 0; l < 32; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {H}, 1.f);
    add(p + "post_attention_layernorm.weight", {H}, 1.f);
    add(p + "self_attn.q_proj.weight", {H, H}, 1.f / 64);
    add(p + "self_attn.k_proj.weight", {kv, H}, 1.f / 64);
    add(p + "self_attn.v_proj.weight", {kv, H}, 1.f / 64);
    add(p + "self_attn.o_proj.weight", {H, H}, 1.f / 64);
    add(p + "mlp.gate_proj.weight", {I, H}, 1.f / 64);
    add(p + "mlp.up_proj.weight", {I, H}, 1.f / 64);
    add(p + "mlp.down_proj.weight", {H, I}, 1.f / 64);
  }
  const auto t1 = std::chrono::steady_clock::now();
  WeightLookup lookup = [&](std::string_view name) -> Result<TensorView> {
    auto it = tensors.find(std::string(name));
    if (it == tensors.end()) return not_found(std::string(name));
    return TensorView::contiguous(it->second.data.data(), DType::kBF16, it->second.shape.data(),
                                  static_cast<int>(it->second.shape.size()));
  };
  auto runner = CudaModelRunner::create(c, lookup, opts);
  if (!runner.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, runner.status().to_string().c_str());
    return false;
  }
  const auto t2 = std::chrono::steady_clock::now();
  tensors.clear();
  CudaModelRunner& r = **runner;
  KvCacheConfig kc;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 256;
  kc.max_num_batched_tokens = 8192;
  kc.gpu_memory_utilization = 0.9;
  auto nb = r.determine_num_kv_blocks(kc);
  if (!nb.ok() || !r.allocate_kv_cache(*nb, kc).ok()) {
    std::fprintf(stderr, "%s: KV cache setup failed\n", what);
    return false;
  }
  out->runner = std::move(*runner);
  out->kv_blocks = *nb;
  out->times = {t0, t1, t2, std::chrono::steady_clock::now()};
  return true;
}

// W5: single stream on the Llama-3-8B shape with random weights.
void bench_w5(ThreadPool& pool, const CudaRunnerOptions& opts) {
  Llama8B m;
  if (!make_llama8b(pool, opts, "W5", &m)) return;
  // 8.03e9 parameters, minus the embedding table that decode never reads.
  const double bytes =
      2.0 * (32.0 * (4096.0 * 6144 + 4096.0 * 4096 + 3 * 4096.0 * 14336) + 128256.0 * 4096);
  run_w5(*m.runner, "W5", "8B shape", m.cfg.vocab_size, bytes, m.times, m.kv_blocks);
}

// ---- --step-profile: per-step phase times of the 8B shape against their rooflines ----------

struct ProfileOptions {
  int warmup = 3;
  int steps = 10;
  int lead_us = 20000;       // the profiler's delay kernel (StepProfiler)
  double hbm_tbps = 3.35;    // H100 SXM HBM3
  double bf16_tflops = 989;  // H100 SXM dense BF16
  std::vector<int> batches = {1, 16, 32, 64, 128, 256};
  std::vector<int> contexts = {192, 2112};  // W1 (128,128) and (2048,128) at steady state
  bool prefill = true;
};

// One step's shape: `decodes` sequences of one new token after `ctx` cached tokens each, then
// `prefills` prompts of `prefill_len` tokens (nothing cached).
struct StepCase {
  std::string name;
  int decodes = 0, ctx = 0;
  int prefills = 0, prefill_len = 0;
  int seqs() const { return decodes + prefills; }
  int tokens() const { return decodes + prefills * prefill_len; }
};

// The batch of a StepCase. Block ids run through the cache in order (wrapping when the case
// needs more blocks than the cache has: the KV read per layer then still far exceeds L2, so no
// sequence reads another's blocks from cache); `*wrapped` says so.
ForwardBatch make_case_batch(const StepCase& sc, int64_t num_blocks, int64_t vocab, bool* wrapped) {
  ForwardBatch b;
  const int bs = 16;
  int64_t next = 1;
  *wrapped = false;
  b.query_start_loc.push_back(0);
  b.block_table_indptr.push_back(0);
  for (int s = 0; s < sc.seqs(); ++s) {
    const bool decode = s < sc.decodes;
    const int q_len = decode ? 1 : sc.prefill_len;
    const int cached = decode ? sc.ctx : 0;
    const int len = cached + q_len;
    const int nblk = (len + bs - 1) / bs;
    const size_t first = b.block_table.size();
    for (int i = 0; i < nblk; ++i) {
      if (next >= num_blocks) next = 1, *wrapped = true;
      b.block_table.push_back(static_cast<int32_t>(next++));
    }
    for (int t = 0; t < q_len; ++t) {
      const int pos = cached + t;
      b.token_ids.push_back(
          static_cast<int32_t>((s * 7919 + pos * 104729) % std::min<int64_t>(vocab, 128000)));
      b.positions.push_back(pos);
      b.slot_mapping.push_back(b.block_table[first + pos / bs] * bs + pos % bs);
    }
    b.query_start_loc.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.block_table_indptr.push_back(static_cast<int32_t>(b.block_table.size()));
    b.seq_lens.push_back(len);
    b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
    b.max_seq_len = std::max(b.max_seq_len, len);
    b.max_query_len = std::max(b.max_query_len, q_len);
  }
  return b;
}

SamplingBatch greedy_batch(int rows) {
  SamplingBatch sb;
  sb.temperature.assign(rows, 0.f);
  sb.top_k.assign(rows, 0);
  sb.top_p.assign(rows, 1.f);
  sb.min_p.assign(rows, 0.f);
  sb.repetition_penalty.assign(rows, 1.f);
  sb.frequency_penalty.assign(rows, 0.f);
  sb.presence_penalty.assign(rows, 0.f);
  sb.seed.assign(rows, 0);
  sb.step.assign(rows, 0);
  sb.num_logprobs.assign(rows, -1);
  sb.all_greedy = true;
  return sb;
}

// The work of each phase of one step on the Llama-3-8B shape (bytes it must move at least,
// FLOPs it must do), from the shapes alone: weights once, activations in and out once, KV read
// once.
struct PhaseWork {
  std::array<double, kNumStepPhases> bytes{}, flops{};
};

PhaseWork llama8b_work(const ModelConfig& c, const StepCase& sc, int gemv_max_m) {
  const double H = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size);
  const double L = static_cast<double>(c.num_hidden_layers), V = static_cast<double>(c.vocab_size);
  const double hd = static_cast<double>(c.head_dim);
  const double q = static_cast<double>(c.num_attention_heads) * hd;
  const double kv = static_cast<double>(c.num_key_value_heads) * hd;
  const double T = sc.tokens(), R = sc.seqs();
  PhaseWork w;
  auto at = [&](std::array<double, kNumStepPhases>& a, StepPhase p) -> double& {
    return a[static_cast<size_t>(p)];
  };
  // Linears: [n, k] weights, T rows (R for the LM head, F32 logits).
  const double layer_params = (q + 2 * kv) * H + q * H + 2 * I * H + I * H;
  const double layer_act = (H + q + 2 * kv) + (q + H) + (H + 2 * I) + (I + H);
  at(w.bytes, StepPhase::kGemm) =
      2 * (L * layer_params + V * H) + 2 * T * L * layer_act + R * (2 * H + 4 * V);
  at(w.flops, StepPhase::kGemm) = 2 * T * L * layer_params + 2 * R * V * H;
  // Attention: every query row against its context (causal within the new tokens); K and V of
  // the context read once per sequence, q read and the output written.
  const double P = sc.prefill_len;
  const double pairs =
      static_cast<double>(sc.decodes) * (sc.ctx + 1) + sc.prefills * P * (P + 1) / 2;
  const double kv_tokens = static_cast<double>(sc.decodes) * (sc.ctx + 1) + sc.prefills * P;
  at(w.bytes, StepPhase::kAttention) = L * (kv_tokens * 2 * kv * 2 + T * 2 * q * 2);
  at(w.flops, StepPhase::kAttention) =
      L * 4 * static_cast<double>(c.num_attention_heads) * hd * pairs;
  const bool fused = T <= gemv_max_m;  // norms, RoPE + KV write in the GEMV
  // RMSNorm with its residual add: residual and delta read, residual and output written.
  at(w.bytes, StepPhase::kNorm) = fused ? 0 : (2 * L * T + R) * H * 2 * 4;
  // RoPE + KV write: q, k, v read, q and k written back, k and v written to the cache.
  at(w.bytes, StepPhase::kRopeKv) = fused ? 0 : L * T * ((q + 2 * kv) + (q + kv) + 2 * kv) * 2;
  // SiLU·mul (the GEMV's epilogue up to gemv_max_m rows).
  at(w.bytes, StepPhase::kActivation) = fused ? 0 : L * T * 3 * I * 2;
  at(w.bytes, StepPhase::kEmbedding) = T * H * 2 * 2;
  at(w.bytes, StepPhase::kSampling) = R * V * 4;  // greedy: the logits read once
  return w;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Host wall time of forward() + sample() (sample() waits for the step), median of `steps`.
double step_wall_ms(CudaModelRunner& r, const ForwardBatch& b, const SamplingBatch& sb,
                    const ProfileOptions& po, bool* used_graph) {
  std::vector<double> t;
  for (int i = 0; i < po.warmup + po.steps; ++i) {
    TensorView logits;
    SamplerOutput so;
    const auto s0 = std::chrono::steady_clock::now();
    if (!r.forward(b, &logits).ok() || !r.sample(logits, sb, &so).ok()) std::exit(1);
    const auto s1 = std::chrono::steady_clock::now();
    *used_graph = r.last_forward_used_graph();
    if (i >= po.warmup) t.push_back(std::chrono::duration<double, std::milli>(s1 - s0).count());
  }
  return median_of(t);
}

void profile_case(CudaModelRunner& r, const ModelConfig& c, int64_t num_blocks, const StepCase& sc,
                  const CudaRunnerOptions& opts, const ProfileOptions& po) {
  bool wrapped = false;
  const ForwardBatch b = make_case_batch(sc, num_blocks, c.vocab_size, &wrapped);
  const SamplingBatch sb = greedy_batch(sc.seqs());
  // Eager (no events) and, for decode, graph-replayed step times.
  bool used_graph = false;
  r.set_graph_replay(false);
  const double eager_ms = step_wall_ms(r, b, sb, po, &used_graph);
  double graph_ms = 0;
  if (sc.prefills == 0 && opts.use_cuda_graphs) {
    r.set_graph_replay(true);
    graph_ms = step_wall_ms(r, b, sb, po, &used_graph);
    if (!used_graph) graph_ms = 0;
  }
  r.set_graph_replay(true);
  // Profiled steps.
  if (!r.set_step_profiling(true, po.lead_us).ok()) std::exit(1);
  std::vector<StepProfile> profs;
  for (int i = 0; i < po.warmup + po.steps; ++i) {
    TensorView logits;
    SamplerOutput so;
    if (!r.forward(b, &logits).ok() || !r.sample(logits, sb, &so).ok()) std::exit(1);
    Result<StepProfile> p = r.take_step_profile();
    if (!p.ok()) {
      std::fprintf(stderr, "%s: %s\n", sc.name.c_str(), p.status().to_string().c_str());
      std::exit(1);
    }
    if (i >= po.warmup) profs.push_back(*p);
  }
  if (!r.set_step_profiling(false).ok()) std::exit(1);
  const StepProfile m = median_profile(profs);
  const PhaseWork work = llama8b_work(c, sc, opts.gemv_max_m);

  std::printf(
      "\n== %s: %d decodes after %d cached tokens, %d prompts of %d tokens%s; "
      "median of %d steps ==\n",
      sc.name.c_str(), sc.decodes, sc.ctx, sc.prefills, sc.prefill_len,
      wrapped ? " (KV blocks reused: the case needs more than the cache)" : "", po.steps);
  std::printf("%-12s %9s %7s %11s %9s %14s %7s\n", "phase", "ms", "share", "roofline ms", "bound",
              "achieved", "% roof");
  const std::string base = "profile " + sc.name;
  for (int p = 0; p < kNumStepPhases; ++p) {
    const size_t i = static_cast<size_t>(p);
    const double ms = m.phase_ms[i];
    const double t_bytes = work.bytes[i] / (po.hbm_tbps * 1e9);     // ms
    const double t_flops = work.flops[i] / (po.bf16_tflops * 1e9);  // ms
    const bool flop_bound = t_flops > t_bytes;
    const double roof = std::max(t_bytes, t_flops);
    const double share = m.device_ms > 0 ? ms / m.device_ms : 0;
    char achieved[32] = "-";
    if (ms > 0 && roof > 0) {
      if (flop_bound) {
        std::snprintf(achieved, sizeof(achieved), "%.1f TFLOP/s", work.flops[i] / ms / 1e9);
      } else {
        std::snprintf(achieved, sizeof(achieved), "%.0f GB/s", work.bytes[i] / ms / 1e6);
      }
    }
    const double pct = ms > 0 && roof > 0 ? 100.0 * roof / ms : 0;
    std::printf("%-12s %9.3f %6.1f%% %11.3f %9s %14s %6.1f%%\n",
                step_phase_name(static_cast<StepPhase>(p)), ms, 100 * share, roof,
                roof <= 0    ? "-"
                : flop_bound ? "FLOP"
                             : "HBM",
                achieved, pct);
    if (g_json != nullptr) {
      char extra[256];
      std::snprintf(extra, sizeof(extra),
                    ",\"share\":%.4f,\"roofline_ms\":%.6g,\"bound\":\"%s\",\"bytes\":%.6g,"
                    "\"flops\":%.6g,\"pct_roofline\":%.2f",
                    share, roof, flop_bound ? "flops" : "hbm", work.bytes[i], work.flops[i], pct);
      std::fprintf(g_json,
                   "{\"engine\":\"kite\",\"name\":\"%s %s\",\"metric\":\"ms\",\"value\":%.6g,"
                   "\"unit\":\"ms\"%s}\n",
                   base.c_str(), step_phase_name(static_cast<StepPhase>(p)), ms, extra);
    }
  }
  for (const auto& [label, ms] : m.detail_ms) {
    std::printf("  %-28s %9.3f\n", label.c_str(), ms);
    if (g_json != nullptr) {
      std::fprintf(g_json,
                   "{\"engine\":\"kite\",\"name\":\"%s detail %s\",\"metric\":\"ms\","
                   "\"value\":%.6g,\"unit\":\"ms\"}\n",
                   base.c_str(), label.c_str(), ms);
    }
  }
  double roof_total = 0;
  for (int p = 0; p < kNumStepPhases; ++p) {
    const size_t i = static_cast<size_t>(p);
    roof_total +=
        std::max(work.bytes[i] / (po.hbm_tbps * 1e9), work.flops[i] / (po.bf16_tflops * 1e9));
  }
  record(base + " device busy (sum of phases)", "ms", m.device_ms, "ms",
         ",\"intervals\":" + std::to_string(m.num_intervals));
  record(base + " roofline (sum of phases)", "ms", roof_total, "ms");
  record(base + " host forward() enqueue (profiled)", "ms", m.host_forward_ms, "ms");
  record(base + " eager step wall (forward+sample)", "ms", eager_ms, "ms");
  record(base + " host exposed (eager wall - device busy)", "ms",
         std::max(0.0, eager_ms - m.device_ms), "ms");
  if (graph_ms > 0) record(base + " graph step wall (forward+sample)", "ms", graph_ms, "ms");
  if (g_json != nullptr) std::fflush(g_json);
}

std::vector<StepCase> profile_cases(const ProfileOptions& po) {
  std::vector<StepCase> cases;
  for (int ctx : po.contexts) {
    for (int bsz : po.batches) {
      cases.push_back(
          {"decode B=" + std::to_string(bsz) + " ctx=" + std::to_string(ctx), bsz, ctx, 0, 0});
    }
  }
  if (po.prefill) {
    cases.push_back({"prefill 1x2048", 0, 0, 1, 2048});
    cases.push_back({"prefill 4x2048 (8192-token chunk)", 0, 0, 4, 2048});
    // W1 (2048,128) while prompts still arrive: decodes first, prompts fill the 8192 budget.
    cases.push_back({"mixed 128 decodes ctx=2112 + 3x2048 prefill", 128, 2112, 3, 2048});
  }
  return cases;
}

void bench_step_profile(ThreadPool& pool, const CudaRunnerOptions& opts, const ProfileOptions& po) {
  Llama8B m;
  if (!make_llama8b(pool, opts, "step profile", &m)) return;
  std::printf(
      "step profile: Llama-3-8B shape, random weights, %lld KV blocks of 16 tokens, "
      "graphs %s, gemv_max_m %d, peaks %.2f TB/s HBM, %.0f TFLOP/s BF16\n",
      static_cast<long long>(m.kv_blocks), opts.use_cuda_graphs ? "on" : "off", opts.gemv_max_m,
      po.hbm_tbps, po.bf16_tflops);
  for (const StepCase& sc : profile_cases(po)) {
    profile_case(*m.runner, m.cfg, m.kv_blocks, sc, opts, po);
  }
}

// --step-profile-dry-run (no GPU): every case's batch checked as the runner checks it (a cache
// of `num_blocks` blocks, the 8B runner's capacities) and its per-phase roofline printed.
int step_profile_dry_run(const CudaRunnerOptions& opts, const ProfileOptions& po,
                         int64_t num_blocks) {
  const ModelConfig c = llama8b_config();
  BatchLimits lim;
  lim.vocab_size = c.vocab_size;
  lim.num_blocks = num_blocks;
  lim.block_size = 16;
  lim.max_tokens = 8192;
  lim.max_seqs = 256;
  lim.max_block_table = 513 * 256;  // allocate_kv_cache: (8192 / 16 + 1) blocks per sequence
  lim.planned = true;
  int bad = 0;
  for (const StepCase& sc : profile_cases(po)) {
    bool wrapped = false;
    const ForwardBatch b = make_case_batch(sc, num_blocks, c.vocab_size, &wrapped);
    const Status st = validate_batch(b, lim);
    bad += st.ok() ? 0 : 1;
    const PhaseWork w = llama8b_work(c, sc, opts.gemv_max_m);
    std::printf("%-46s %5d tokens %4d seqs %s%s\n", sc.name.c_str(), b.num_tokens(), b.num_seqs(),
                st.ok() ? "valid" : st.to_string().c_str(), wrapped ? " (blocks reused)" : "");
    for (int p = 0; p < kNumStepPhases; ++p) {
      const size_t i = static_cast<size_t>(p);
      if (w.bytes[i] == 0 && w.flops[i] == 0) continue;
      std::printf("    %-11s %10.3f GB %10.3f TFLOP  roofline %8.3f ms\n",
                  step_phase_name(static_cast<StepPhase>(p)), w.bytes[i] / 1e9, w.flops[i] / 1e12,
                  std::max(w.bytes[i] / (po.hbm_tbps * 1e9), w.flops[i] / (po.bf16_tflops * 1e9)));
    }
  }
  return bad == 0 ? 0 : 3;
}

// ---- --gemm-plans: first-call vs steady-call cost of cuBLASLt plans per prefill row count ----

void bench_gemm_plans(ThreadPool& pool) {
  const std::vector<std::pair<int, int>> shapes = {
      {6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}};  // qkv, o, gate_up, down
  const std::vector<int> rows = {129,  200,  333,  500,  777,  1000, 1500,
                                 2047, 2048, 3000, 4096, 5000, 6000, 8191};
  const int max_m = 8192;
  void* x = device_random(static_cast<size_t>(max_m) * 14336, 1.f, 1, pool);
  void* w = device_random(static_cast<size_t>(28672) * 4096, 1.f / 64, 2, pool);
  void* y = nullptr;
  BENCH_CUDA(cudaMalloc(&y, static_cast<size_t>(max_m) * 28672 * 2));
  // cuBLASLt's own heuristics cache off, so neither mode finds the other's queries there: a new
  // row count costs what it costs on a fresh server.
  size_t cache_capacity = 0;
  const bool cache_known =
      cublasLtHeuristicsCacheGetCapacity(&cache_capacity) == CUBLAS_STATUS_SUCCESS;
  cublasLtHeuristicsCacheSetCapacity(0);
  // Two rounds of both modes, each on a fresh GemmRunner; the first round loads the kernels
  // (lazy module loading would otherwise bill them to whichever mode ran first) and is not
  // recorded.
  for (int round = 0; round < 4; ++round) {
    const bool buckets = round % 2 == 1, recorded = round >= 2;
    auto g = GemmRunner::create();
    if (!g.ok()) {
      std::fprintf(stderr, "gemm plans: %s\n", g.status().to_string().c_str());
      std::exit(1);
    }
    GemmRunner& runner = **g;
    runner.set_algo_buckets(buckets);
    const std::string mode = buckets ? "buckets" : "exact";
    double first_total = 0;
    for (const auto& [n, k] : shapes) {
      for (int m : rows) {
        GemmArgs a;
        a.x = x;
        a.ldx = k;
        a.w = w;
        a.ldw = k;
        a.y = y;
        a.ldy = n;
        a.m = m;
        a.n = n;
        a.k = k;
        BENCH_CUDA(cudaDeviceSynchronize());
        // Host time of the call (plan + enqueue), first and then steady (median of 5).
        auto host_us = [&] {
          const auto t0 = std::chrono::steady_clock::now();
          if (!runner.gemm(a, nullptr).ok()) std::exit(1);
          const auto t1 = std::chrono::steady_clock::now();
          BENCH_CUDA(cudaDeviceSynchronize());
          return std::chrono::duration<double, std::micro>(t1 - t0).count();
        };
        const double first = host_us();
        first_total += first;
        if (!recorded) continue;
        std::vector<double> steady;
        for (int i = 0; i < 5; ++i) steady.push_back(host_us());
        const double dev_ms = time_ms([&](int) {
          if (!runner.gemm(a, nullptr).ok()) std::exit(1);
        });
        const double tflops = 2.0 * m * n * k / dev_ms / 1e9;
        const std::string name = "gemm plans [" + mode + "] m=" + std::to_string(m) +
                                 " n=" + std::to_string(n) + " k=" + std::to_string(k);
        std::printf("%-52s first %9.1f us  steady %7.1f us  device %8.3f ms %6.1f TFLOP/s\n",
                    name.c_str(), first, median_of(steady), dev_ms, tflops);
        if (g_json != nullptr) {
          std::fprintf(g_json,
                       "{\"engine\":\"kite\",\"name\":\"%s first call\",\"metric\":\"us\","
                       "\"value\":%.6g,\"unit\":\"us\",\"steady_us\":%.6g,\"device_ms\":%.6g,"
                       "\"tflops\":%.6g}\n",
                       name.c_str(), first, median_of(steady), dev_ms, tflops);
        }
      }
    }
    if (!recorded) continue;
    record("gemm plans [" + mode + "] first calls total", "ms", first_total / 1000, "ms",
           ",\"heuristic_queries\":" + std::to_string(runner.num_heuristic_queries()) +
               ",\"algo_reuses\":" + std::to_string(runner.num_algo_reuses()));
  }
  if (cache_known) cublasLtHeuristicsCacheSetCapacity(cache_capacity);
  cudaFree(x);
  cudaFree(w);
  cudaFree(y);
}

// Every op-table case whose name contains `filter`: one timed row each.
int bench_ops(const DeviceContext& dev, const std::string& filter, bool check) {
  int failed = 0;
  for (const test::OpCase& c : test::op_table()) {
    const std::string name = c.name();
    if (name.find(filter) == std::string::npos) continue;
    if (c.skip && !c.skip(dev).empty()) {
      std::printf("%-52s skipped: %s\n", name.c_str(), c.skip(dev).c_str());
      continue;
    }
    std::unique_ptr<test::OpRun> run = c.make(dev, 1234);
    run->launch(dev, nullptr);
    BENCH_CUDA(cudaDeviceSynchronize());
    std::string extra;
    if (check) {
      const test::OpCheck r = run->check();
      extra = std::string(",\"check\":\"") + (r.ok ? "ok" : "FAILED") + "\"";
      if (!r.ok) {
        ++failed;
        std::printf("%-52s CHECK FAILED: %s\n", name.c_str(), r.detail.c_str());
      }
    }
    const double ms = time_ms([&](int) { run->launch(dev, nullptr); });
    extra += ",\"ms\":" + std::to_string(ms);
    if (run->flops() > 0) {
      record("op " + name, "TFLOP/s", run->flops() / ms / 1e9, "TFLOP/s", extra);
    } else {
      record("op " + name, "GB/s", run->bytes() / ms / 1e6, "GB/s", extra);
    }
  }
  return failed == 0 ? 0 : 3;
}

}  // namespace
}  // namespace kite::cuda

int main(int argc, char** argv) {
  using namespace kite::cuda;
  std::string out;
  bool w5 = true, kernels = true, ops = false, check = false;
  bool step_profile = false, gemm_plans = false, dry_run = false;
  ProfileOptions po;
  auto int_list = [](const std::string& v) {
    std::vector<int> list;
    for (size_t i = 0; i < v.size();) {
      const size_t comma = v.find(',', i);
      list.push_back(std::atoi(v.substr(i, comma - i).c_str()));
      i = comma == std::string::npos ? v.size() : comma + 1;
    }
    return list;
  };
  std::vector<std::pair<std::string, int>> families;  // --w5-family NAME:LAYERS
  std::string tag, ops_filter;
  CudaRunnerOptions opts;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc)
      out = argv[++i];
    else if (a == "--skip-w5")
      w5 = false;
    else if (a == "--only-w5")
      kernels = false;
    else if (a == "--ops") {
      ops = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') ops_filter = argv[++i];
    } else if (a == "--check")
      check = true;
    else if (a == "--tag" && i + 1 < argc)
      tag = argv[++i];
    else if (a == "--step-profile")
      step_profile = true;
    else if (a == "--step-profile-dry-run")
      dry_run = true;
    else if (a == "--gemm-plans")
      gemm_plans = true;
    else if (a == "--profile-steps" && i + 1 < argc)
      po.steps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--profile-warmup" && i + 1 < argc)
      po.warmup = std::max(0, std::atoi(argv[++i]));
    else if (a == "--profile-lead-us" && i + 1 < argc)
      po.lead_us = std::max(0, std::atoi(argv[++i]));
    else if (a == "--profile-batches" && i + 1 < argc)
      po.batches = int_list(argv[++i]);
    else if (a == "--profile-contexts" && i + 1 < argc)
      po.contexts = int_list(argv[++i]);
    else if (a == "--profile-no-prefill")
      po.prefill = false;
    else if (a == "--hbm-tbps" && i + 1 < argc)
      po.hbm_tbps = std::atof(argv[++i]);
    else if (a == "--bf16-tflops" && i + 1 < argc)
      po.bf16_tflops = std::atof(argv[++i]);
    else if (a == "--graphs" && i + 1 < argc)
      opts.use_cuda_graphs = std::atoi(argv[++i]) != 0;
    else if (a == "--gemv-max-m" && i + 1 < argc)
      opts.gemv_max_m = std::atoi(argv[++i]);
    else if (a == "--kv-cache-dtype" && i + 1 < argc) {
      // The W5 runners' KV cache: fp8 (E4M3, scales 1.0) or the compute dtype (auto).
      const std::string kv = argv[++i];
      if (kv != "fp8" && kv != "auto") {
        std::fprintf(stderr, "kite_cuda_bench: --kv-cache-dtype takes fp8 or auto\n");
        return 2;
      }
      if (kv == "fp8") opts.kv_cache_dtype = kite::DType::kF8E4M3;
    } else if (a == "--w5-family" && i + 1 < argc) {
      const std::string f = argv[++i];
      const size_t colon = f.find(':');
      families.emplace_back(f.substr(0, colon),
                            colon == std::string::npos ? 4 : std::atoi(f.c_str() + colon + 1));
      kernels = false;
      w5 = false;
    } else {
      std::fprintf(
          stderr,
          "usage: kite_cuda_bench [--out F] [--skip-w5] [--only-w5] "
          "[--graphs 0|1] [--gemv-max-m N] [--kv-cache-dtype fp8|auto] [--tag T]\n"
          "       kite_cuda_bench --w5-family qwen3-30b-a3b|gemma-3-12b|gemma-3-27b[:LAYERS] "
          "[--w5-family ...]\n"
          "       kite_cuda_bench --ops [SUBSTRING] [--check] [--out F]\n"
          "       kite_cuda_bench --step-profile [--profile-batches 1,16,...] "
          "[--profile-contexts 192,2112] [--profile-no-prefill] [--profile-steps N] "
          "[--profile-warmup N] [--profile-lead-us US] [--hbm-tbps X] [--bf16-tflops X] "
          "[--graphs 0|1] [--gemv-max-m N] [--out F]\n"
          "       kite_cuda_bench --step-profile-dry-run [profile flags]   (no GPU: the cases' "
          "batches checked, their rooflines)\n"
          "       kite_cuda_bench --gemm-plans [--out F]\n");
      return 2;
    }
  }
  if (dry_run) return step_profile_dry_run(opts, po, /*num_blocks=*/27000);
  if (!out.empty()) g_json = std::fopen(out.c_str(), "a");
  kite::ThreadPool pool(0);
  auto dev_or = DeviceContext::create(0, /*make_stream=*/false);
  if (!dev_or.ok()) {
    std::fprintf(stderr, "kite_cuda_bench: %s\n", dev_or.status().to_string().c_str());
    return 1;
  }
  const DeviceContext& dev = **dev_or;
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, %.0f MB L2, PDL %s\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize / 1e6, dev.pdl() ? "on" : "off");
  if (ops) {
    const int rc = bench_ops(dev, ops_filter, check);
    if (g_json != nullptr) std::fclose(g_json);
    return rc;
  }
  if (step_profile || gemm_plans) {
    if (gemm_plans) bench_gemm_plans(pool);
    if (step_profile) bench_step_profile(pool, opts, po);
    if (g_json != nullptr) std::fclose(g_json);
    return 0;
  }
  if (kernels) {
    bench_copy();
    bench_linear(dev, pool);
    bench_attention(dev, pool, false, 1, 384);
    bench_attention(dev, pool, false, 1, 8192);
    bench_attention(dev, pool, false, 64, 4096);
    bench_attention(dev, pool, false, 256, 1024);
    bench_attention(dev, pool, true, 1, 4096);
    bench_attention(dev, pool, true, 8, 2048);
    bench_attention(dev, pool, true, 1, 16384);
    bench_attention(dev, pool, true, 8, 2048, 512);  // 512-token chunks over 1536 cached tokens
    bench_attention(dev, pool, true, 16, 512);
    bench_attention(dev, pool, true, 1, 4096, 0, 64);
    bench_attention(dev, pool, true, 8, 2048, 512, 64);
    bench_decode_stream(dev, pool);
  }
  g_tag = tag;
  if (w5) bench_w5(pool, opts);
  for (const auto& [name, layers] : families) bench_family_w5(pool, opts, name, layers);
  if (g_json != nullptr) std::fclose(g_json);
  return 0;
}
