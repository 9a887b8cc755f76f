// CudaModelRunner on the small random model of every family make_tiny_models.py writes (Phi-3
// fused / LongRoPE, Gemma 2 / 3, Qwen3-MoE, Mixtral, and the Llama-like ones) against the CPU
// runner, whose logits tests/conformance checks against float64 numpy oracles. Two sequences:
// a chunked prompt (two steps, the second mixed with the other sequence's first decode) and a
// short prompt, then 24 decode steps of both (CUDA-graph replays); both runners are fed the CPU's
// greedy tokens, so every step compares the same inputs. The windows (5 to 12), LongRoPE's
// switch (past 20 positions) and soft-caps all bend inside these lengths.
//
// Bounds. Models the CUDA runner computes in float32 (F32 checkpoints on the generic attention
// path: phi3-*, gemma3-f32, qwen3-f32, qwen3moe-step2-f32, ...): summation order and the last ulp
// of exp/tanh only — logits within 1e-4 relative L2 per row and the same greedy tokens. bf16
// models (gemma2-bf16, qwen3moe-bf16, mixtral-f16, ...): about six bf16 roundings a layer
// (runner_test.cpp) — 0.1 relative L2 per row (0.25 for MoE models: a router near a tie may pick
// another expert in bf16 than in float32, which moves that row's logits), and the greedy token
// must agree wherever the CPU's top-2 gap exceeds four times the row's largest logit error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_model_runner.h"
#include "gpu_test_util.h"
#include "models/load.h"
#include "support/test_util.h"

namespace kite::cuda::test {
namespace {

const std::string kMakeTiny = std::string(KITE_CONFORMANCE_DIR) + "/make_tiny_models.py";

// The models: KITE_TINY_FAMILY_DIR when set (scripts/gpu-check.sh writes them there with the
// GPU machine's python3), else written now by make_tiny_models.py with the pinned venv.
class CudaFamilyRunnerTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (const char* d = std::getenv("KITE_TINY_FAMILY_DIR"); d != nullptr && *d != '\0') {
      models_ = d;
      made_ = true;
      return;
    }
    dir_ = std::make_unique<kite::testing::TempDir>();
    models_ = dir_->path();
    if (!kite::testing::have_python()) return;
    std::string log;
    made_ = kite::testing::run_python(kMakeTiny, {dir_->path(), "--no-gguf"}, &log) == 0;
    if (!made_) std::fprintf(stderr, "%s\n", log.c_str());
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::unique_ptr<kite::testing::TempDir> dir_;
  static std::string models_;
  static bool made_;
};
std::unique_ptr<kite::testing::TempDir> CudaFamilyRunnerTest::dir_;
std::string CudaFamilyRunnerTest::models_;
bool CudaFamilyRunnerTest::made_ = false;

// One sequence of the test: its tokens so far and its KV blocks.
struct Seq {
  std::vector<int32_t> ids;
  int first_block = 0;
};

constexpr int kBlockSize = 16;

// A step: for each (sequence, [start, end)) the tokens start..end-1, one logits row at the last.
ForwardBatch make_step(const std::vector<std::pair<const Seq*, std::pair<int, int>>>& parts) {
  ForwardBatch fb;
  fb.query_start_loc.push_back(0);
  fb.block_table_indptr.push_back(0);
  for (const auto& [s, range] : parts) {
    const auto [start, end] = range;
    for (int pos = start; pos < end; ++pos) {
      fb.token_ids.push_back(s->ids[static_cast<size_t>(pos)]);
      fb.positions.push_back(pos);
      fb.slot_mapping.push_back((s->first_block + pos / kBlockSize) * kBlockSize +
                                pos % kBlockSize);
    }
    fb.query_start_loc.push_back(fb.num_tokens());
    fb.seq_lens.push_back(end);
    for (int k = 0; k < (end + kBlockSize - 1) / kBlockSize; ++k) {
      fb.block_table.push_back(s->first_block + k);
    }
    fb.block_table_indptr.push_back(static_cast<int32_t>(fb.block_table.size()));
    fb.logits_indices.push_back(fb.num_tokens() - 1);
    fb.max_query_len = std::max(fb.max_query_len, end - start);
    fb.max_seq_len = std::max(fb.max_seq_len, end);
  }
  return fb;
}

TEST_P(CudaFamilyRunnerTest, MatchesCpuRunnerThroughChunkedPrefillAndGraphDecode) {
  KITE_REQUIRE_GPU();
  if (!made_ && !kite::testing::have_python()) {
    GTEST_SKIP() << "no KITE_TINY_FAMILY_DIR and no Python at " << KITE_PYTHON_EXECUTABLE;
  }
  ASSERT_TRUE(made_) << "make_tiny_models.py failed";
  auto store = load_model(models_ + "/" + GetParam(), LoadOptions{});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  const ModelConfig& cfg = ws->config();
  const int64_t V = cfg.vocab_size;

  KvCacheConfig kc;
  kc.block_size = kBlockSize;
  kc.max_num_seqs = 4;
  kc.max_num_batched_tokens = 64;
  kc.memory_budget_bytes = 16ll << 20;
  auto cpu = CpuModelRunner::create(ws);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  ASSERT_TRUE((*cpu)->allocate_kv_cache(32, kc).ok());
  WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  auto dtype = choose_compute_dtype(cfg, lookup, "auto");
  ASSERT_TRUE(dtype.ok()) << dtype.status().to_string();
  CudaRunnerOptions opts;
  opts.dtype = *dtype;
  auto gpu = CudaModelRunner::create(cfg, lookup, opts);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  kc.dtype = *dtype;
  ASSERT_TRUE((*gpu)->allocate_kv_cache(32, kc).ok());
  const bool f32 = *dtype == DType::kF32;
  // bf16 MoE: a router near a tie may take another expert than the float32 CPU (0.25).
  const double bf16_bound = cfg.is_moe() ? 0.25 : 0.1;
  std::printf("[ family   ] %s: %s compute, attention path %s\n", GetParam().c_str(),
              f32 ? "float32" : "bfloat16", (*gpu)->attention_path_name());

  Seq a{{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8}, 1};
  Seq b{{1, 5, 9, 33}, 10};
  double worst_rel = 0;
  int rows = 0;
  // Runs a step on both runners, compares its logits rows and appends the CPU's greedy tokens.
  auto step = [&](const ForwardBatch& fb, const std::vector<Seq*>& owners, bool decode_only) {
    TensorView lc, lg;
    ASSERT_TRUE((*cpu)->forward(fb, &lc).ok());
    const Status st = (*gpu)->forward(fb, &lg);
    ASSERT_TRUE(st.ok()) << st.to_string();
    if (decode_only) {
      EXPECT_TRUE((*gpu)->last_forward_used_graph()) << "decode without a graph";
    }
    const int64_t n = fb.num_logits();
    std::vector<float> gc(static_cast<size_t>(n * V)), gg(gc.size());
    ASSERT_TRUE((*cpu)->logits_to_host(lc, gc.data()).ok());
    ASSERT_TRUE((*gpu)->logits_to_host(lg, gg.data()).ok());
    for (int64_t r = 0; r < n; ++r) {
      const std::vector<float> c(gc.begin() + r * V, gc.begin() + (r + 1) * V);
      const std::vector<float> g(gg.begin() + r * V, gg.begin() + (r + 1) * V);
      const ErrorStats e = compare(g, c);
      ASSERT_EQ(e.nan, 0u) << "row " << r;
      worst_rel = std::max(worst_rel, e.rel_l2);
      ++rows;
      EXPECT_LT(e.rel_l2, f32 ? 1e-4 : bf16_bound) << "row " << r << " " << e.to_string();
      const int32_t want = cpu::argmax(c.data(), V);
      const int32_t got = cpu::argmax(g.data(), V);
      double max_err = 0;
      for (int64_t t = 0; t < V; ++t) {
        max_err = std::max(max_err, std::abs(static_cast<double>(g[t]) - c[t]));
      }
      std::vector<float> sorted = c;
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
      if (f32 || sorted[0] - sorted[1] > 4 * max_err) {
        EXPECT_EQ(got, want) << "row " << r << ": greedy tokens differ (top-2 gap "
                             << sorted[0] - sorted[1] << ", max logit error " << max_err << ")";
      }
      owners[static_cast<size_t>(r)]->ids.push_back(want);
    }
  };
  // Step 1: a's first 12 tokens and b's prompt; step 2: the rest of a and b's first decode.
  step(make_step({{&a, {0, 12}}, {&b, {0, 4}}}), {&a, &b}, false);
  a.ids.pop_back();  // a's row at position 11 is not a continuation: a's prompt goes on
  step(make_step({{&a, {12, 19}}, {&b, {4, 5}}}), {&a, &b}, false);
  for (int i = 0; i < 24; ++i) {
    const int la = static_cast<int>(a.ids.size()), lb = static_cast<int>(b.ids.size());
    step(make_step({{&a, {la - 1, la}}, {&b, {lb - 1, lb}}}), {&a, &b}, true);
  }
  std::printf("[ family   ] %s: %d logits rows, worst relative L2 %.3g\n", GetParam().c_str(), rows,
              worst_rel);
}

// A Qwen3-MoE of 256-byte rows (hidden 128, experts of 128, bf16; head_dim 64: the tensor-core
// attention path) with dummy weights, four ways: the CPU runner, a CUDA runner whose MoE layers
// always take the grouped kernel, one whose prefill steps (more than 0 tokens) take the
// per-expert cuBLASLt path, and the first again with KITE_MOE_TC=1 when its DeviceContext is
// made (the grouped kernel's multi-row experts — the prefill step's ~28 rows each — on tensor
// cores). Every CUDA runner stays within the bf16 MoE bound of the CPU, and the other paths agree
// with the grouped CUDA-core one within 0.1 (the same roundings, other summation orders).
TEST(CudaMoeRunner, PerExpertPrefillPathAndTensorCoresEqualGroupedKernelAndCpu) {
  KITE_REQUIRE_GPU();
  kite::testing::TempDir dir;
  {
    std::ofstream f(dir / "config.json");
    f << R"({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
      "hidden_size": 128, "intermediate_size": 256, "moe_intermediate_size": 128,
      "num_experts": 8, "num_experts_per_tok": 2, "norm_topk_prob": true,
      "decoder_sparse_step": 1, "mlp_only_layers": [], "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 512,
      "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 1024,
      "torch_dtype": "bfloat16", "tie_word_embeddings": false})";
  }
  LoadOptions lo;
  lo.load_format = "dummy";
  lo.seed = 7;
  auto store = load_model(dir.path(), lo);
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  const ModelConfig& cfg = ws->config();
  const int64_t V = cfg.vocab_size;
  KvCacheConfig kc;
  kc.block_size = kBlockSize;
  kc.max_num_seqs = 4;
  kc.max_num_batched_tokens = 128;
  kc.memory_budget_bytes = 16ll << 20;
  auto cpu = CpuModelRunner::create(ws);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  ASSERT_TRUE((*cpu)->allocate_kv_cache(32, kc).ok());
  WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  kc.dtype = DType::kBF16;
  std::vector<std::unique_ptr<CudaModelRunner>> gpus;
  for (auto [max_tokens, tensor_cores] :
       std::vector<std::pair<int, bool>>{{1 << 20, false}, {0, false}, {1 << 20, true}}) {
    CudaRunnerOptions opts;
    opts.moe_grouped_max_tokens = max_tokens;
    // The switch is read once, when the runner makes its DeviceContext.
    const char* was = std::getenv("KITE_MOE_TC");
    const std::string saved = was != nullptr ? was : "";
    setenv("KITE_MOE_TC", tensor_cores ? "1" : "0", 1);
    auto gpu = CudaModelRunner::create(cfg, lookup, opts);
    if (was != nullptr) {
      setenv("KITE_MOE_TC", saved.c_str(), 1);
    } else {
      unsetenv("KITE_MOE_TC");
    }
    ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
    ASSERT_STREQ((*gpu)->attention_path_name(), "tensor-core");
    ASSERT_TRUE((*gpu)->allocate_kv_cache(32, kc).ok());
    gpus.push_back(std::move(*gpu));
  }
  // A 100-token prompt and an 11-token one in one prefill step, then 8 decode steps.
  Seq a{{}, 1}, b{{}, 20};
  for (int i = 0; i < 100; ++i) a.ids.push_back((i * 37 + 5) % static_cast<int>(V));
  for (int i = 0; i < 11; ++i) b.ids.push_back((i * 101 + 3) % static_cast<int>(V));
  for (int s = 0; s < 9; ++s) {
    const int la = static_cast<int>(a.ids.size()), lb = static_cast<int>(b.ids.size());
    const ForwardBatch fb = s == 0 ? make_step({{&a, {0, la}}, {&b, {0, lb}}})
                                   : make_step({{&a, {la - 1, la}}, {&b, {lb - 1, lb}}});
    TensorView lc;
    ASSERT_TRUE((*cpu)->forward(fb, &lc).ok());
    std::vector<float> want(static_cast<size_t>(2 * V));
    ASSERT_TRUE((*cpu)->logits_to_host(lc, want.data()).ok());
    std::vector<std::vector<float>> got;
    for (auto& g : gpus) {
      TensorView lg;
      const Status st = g->forward(fb, &lg);
      ASSERT_TRUE(st.ok()) << st.to_string();
      got.emplace_back(want.size());
      ASSERT_TRUE(g->logits_to_host(lg, got.back().data()).ok());
      const ErrorStats e = compare(got.back(), want);
      EXPECT_EQ(e.nan, 0u);
      EXPECT_LT(e.rel_l2, 0.25) << "step " << s << " " << e.to_string();
    }
    const ErrorStats between = compare(got[1], got[0]);
    EXPECT_LT(between.rel_l2, 0.1)
        << "step " << s << " grouped vs per-expert " << between.to_string();
    const ErrorStats tc = compare(got[2], got[0]);
    EXPECT_LT(tc.rel_l2, 0.1) << "step " << s << " grouped: tensor cores vs CUDA cores "
                              << tc.to_string();
    a.ids.push_back(cpu::argmax(want.data(), V));
    b.ids.push_back(cpu::argmax(want.data() + V, V));
  }
}

INSTANTIATE_TEST_SUITE_P(Families, CudaFamilyRunnerTest,
                         ::testing::Values("llama31-bf16", "qwen3-f32", "mistral-mqa", "phi3-fused",
                                           "phi3-longrope", "gemma2-bf16", "gemma3-f32",
                                           "qwen3moe-bf16", "qwen3moe-step2-f32", "mixtral-f16"),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace kite::cuda::test
