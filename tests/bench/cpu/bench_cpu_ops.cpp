// Micro-benchmarks of the CPU backend, timed in wall-clock (the ops run on a thread pool of all
// cores). Counters: "GB/s" = weight bytes streamed per second, "GFLOP/s" = 2 * m * n * k per
// second (linear), tokens/s for decode steps.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/sequence_runner.h"
#include "checkpoint/weights.h"
#include "core/thread_pool.h"
#include "models/load.h"

namespace kite {
namespace {

ThreadPool& pool() {
  static ThreadPool p(0);
  return p;
}

// A weight matrix [n, k] of `dtype` with random contents: plain types from uniform(-1, 1)
// (never subnormal or NaN, which would time the CPU's slow paths instead of the kernel);
// quantized types random blocks whose F16 scales are set to 0.01.
struct Matrix {
  std::vector<uint8_t> bytes;
  TensorView view;
  Matrix(DType dtype, int64_t n, int64_t k) {
    const int64_t numel = n * k;
    bytes.resize(static_cast<size_t>(dtype_bytes(dtype, numel)));
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const DTypeInfo& info = dtype_info(dtype);
    if (!info.quantized) {
      for (int64_t i = 0; i < numel; ++i) {
        const float v = dist(rng);
        if (dtype == DType::kF32) {
          std::memcpy(bytes.data() + 4 * i, &v, 4);
        } else {
          const uint16_t h = dtype == DType::kBF16 ? f32_to_bf16(v).bits : f32_to_f16_bits(v);
          std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
      }
    } else {
      for (auto& b : bytes) b = static_cast<uint8_t>(rng());
      const uint16_t scale = f32_to_f16_bits(0.01f);
      const int64_t scale_at = dtype == DType::kQ6_K ? info.block_bytes - 2 : 0;
      const bool two_scales =
          dtype == DType::kQ4_1 || dtype == DType::kQ4_K || dtype == DType::kQ5_K;
      for (size_t b = 0; b < bytes.size(); b += static_cast<size_t>(info.block_bytes)) {
        std::memcpy(bytes.data() + b + scale_at, &scale, 2);
        if (two_scales) std::memcpy(bytes.data() + b + 2, &scale, 2);
      }
    }
    view = TensorView(bytes.data(), dtype, {n, k});
  }
};

void linear_bench(benchmark::State& state, DType dtype) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  Matrix w(dtype, n, k);
  std::vector<float> x(static_cast<size_t>(m * k), 0.5f), y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    cpu::linear(x.data(), m, w.view, nullptr, y.data(), &pool());
    benchmark::DoNotOptimize(y.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.bytes.size()) * iters / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k * iters / 1e9, benchmark::Counter::kIsRate);
  state.counters["threads"] = pool().num_threads();
}

// Decode GEMV shapes of Llama-3-8B: q/o (4096 x 4096), gate/up (14336 x 4096), down (4096 x 14336).
void gemv_args(benchmark::internal::Benchmark* b) {
  b->Args({1, 4096, 4096})
      ->Args({1, 14336, 4096})
      ->Args({1, 4096, 14336})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}
// Prefill GEMM: 128 and 512 tokens through a 4096 x 4096 projection.
void gemm_args(benchmark::internal::Benchmark* b) {
  b->Args({128, 4096, 4096})->Args({512, 4096, 4096})->Unit(benchmark::kMillisecond)->UseRealTime();
}

void BM_Gemv_F32(benchmark::State& s) { linear_bench(s, DType::kF32); }
void BM_Gemv_BF16(benchmark::State& s) { linear_bench(s, DType::kBF16); }
void BM_Gemv_F16(benchmark::State& s) { linear_bench(s, DType::kF16); }
void BM_Gemv_Q8_0(benchmark::State& s) { linear_bench(s, DType::kQ8_0); }
void BM_Gemv_Q4_K(benchmark::State& s) { linear_bench(s, DType::kQ4_K); }
void BM_Gemm_F32(benchmark::State& s) { linear_bench(s, DType::kF32); }
void BM_Gemm_BF16(benchmark::State& s) { linear_bench(s, DType::kBF16); }
BENCHMARK(BM_Gemv_F32)->Apply(gemv_args);
BENCHMARK(BM_Gemv_BF16)->Apply(gemv_args);
BENCHMARK(BM_Gemv_F16)->Apply(gemv_args);
BENCHMARK(BM_Gemv_Q8_0)->Apply(gemv_args);
BENCHMARK(BM_Gemv_Q4_K)->Apply(gemv_args);
BENCHMARK(BM_Gemm_F32)->Apply(gemm_args);
BENCHMARK(BM_Gemm_BF16)->Apply(gemm_args);

// One decode step (a single token after a 64-token prompt) of a whole model.
// `active_bytes`: the weight bytes one decode token reads (MoE: only its experts'); 0 = all.
void decode_bench(benchmark::State& state, const std::string& path, const LoadOptions& opts,
                  double active_bytes = 0) {
  auto loaded = load_model(path, opts);
  if (!loaded.ok()) {
    state.SkipWithError(loaded.status().to_string().c_str());
    return;
  }
  std::shared_ptr<const WeightStore> weights = std::move(*loaded);
  auto runner = CpuModelRunner::create(weights);
  if (!runner.ok() || !(*runner)->allocate_kv_cache(64, KvCacheConfig{}).ok()) {
    state.SkipWithError("runner");
    return;
  }
  const int64_t max_len = 63 * 16;
  auto seq = std::make_unique<SequenceRunner>(runner->get(), 16, 64);
  std::vector<int32_t> prompt(64, 1);
  (void)seq->feed(prompt);
  for (auto _ : state) {
    if (seq->length() + 1 > max_len) {
      state.PauseTiming();
      seq = std::make_unique<SequenceRunner>(runner->get(), 16, 64);
      (void)seq->feed(prompt);
      state.ResumeTiming();
    }
    auto l = seq->feed(std::vector<int32_t>{2});
    benchmark::DoNotOptimize(l);
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["weights GB/s"] = benchmark::Counter(
      static_cast<double>(weights->weight_bytes()) * static_cast<double>(state.iterations()) / 1e9,
      benchmark::Counter::kIsRate);
  if (active_bytes > 0) {
    state.counters["active weights GB/s"] = benchmark::Counter(
        active_bytes * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  }
}

void BM_DecodeStep_TinyStories656K(benchmark::State& state) {
  decode_bench(state, std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k", {});
}
BENCHMARK(BM_DecodeStep_TinyStories656K)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Llama-3-8B's layer shapes (BF16, dummy weights) with 2 layers and a 32000 vocabulary, so it
// fits any machine: per-layer decode cost at real shape.
void BM_DecodeStep_Llama8BShape2Layers(benchmark::State& state) {
  const auto dir = std::filesystem::temp_directory_path() / "kite-bench-llama8b-2l";
  std::filesystem::create_directories(dir);
  std::ifstream in(std::string(KITE_SOURCE_DIR) + "/tests/data/configs/llama-3-8b/config.json");
  std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto replace = [&](const std::string& from, const std::string& to) {
    cfg.replace(cfg.find(from), from.size(), to);
  };
  replace("\"num_hidden_layers\": 32", "\"num_hidden_layers\": 2");
  replace("\"vocab_size\": 128256", "\"vocab_size\": 32000");
  replace("\"bos_token_id\": 128000", "\"bos_token_id\": 1");
  replace("\"eos_token_id\": 128001", "\"eos_token_id\": 2");
  std::ofstream(dir / "config.json") << cfg;
  LoadOptions opts;
  opts.load_format = "dummy";
  decode_bench(state, dir.string(), opts);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DecodeStep_Llama8BShape2Layers)->Unit(benchmark::kMillisecond)->UseRealTime();

// Qwen3-30B-A3B's layer shapes (BF16, dummy weights: 128 experts of 768, top 8) with 2 layers
// and a 32000 vocabulary: a decode token reads its 8 experts of each layer, not all 128.
void BM_DecodeStep_Qwen3MoeShape2Layers(benchmark::State& state) {
  const auto dir = std::filesystem::temp_directory_path() / "kite-bench-qwen3moe-2l";
  std::filesystem::create_directories(dir);
  std::ifstream in(std::string(KITE_SOURCE_DIR) + "/tests/data/configs/qwen3-30b-a3b/config.json");
  std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto replace = [&](const std::string& from, const std::string& to) {
    cfg.replace(cfg.find(from), from.size(), to);
  };
  replace("\"num_hidden_layers\": 48", "\"num_hidden_layers\": 2");
  replace("\"vocab_size\": 151936", "\"vocab_size\": 32000");
  replace("\"bos_token_id\": 151643", "\"bos_token_id\": 1");
  replace("\"eos_token_id\": 151645", "\"eos_token_id\": 2");
  std::ofstream(dir / "config.json") << cfg;
  LoadOptions opts;
  opts.load_format = "dummy";
  // Per layer: q/k/v (4096 + 2 * 512 rows), o, the router and 8 experts' gate/up/down; then
  // the LM head; BF16.
  const double hidden = 2048,
               layer = (4096 + 1024) * hidden + hidden * 4096 + 128 * hidden + 8 * 3 * 768 * hidden;
  decode_bench(state, dir.string(), opts, 2 * (2 * layer + 32000 * hidden));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DecodeStep_Qwen3MoeShape2Layers)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace kite

BENCHMARK_MAIN();
