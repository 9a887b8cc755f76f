// The CPU forward pass against an independent float64 numpy implementation of the decoder
// (llama_oracle.py), on the shipped TinyStories-656K and on small random models of every family
// (make_tiny_models.py; Gemma 2/3 against gemma_oracle.py): logits at every position of prompt +
// greedy continuation must agree to 1e-4, and the oracle's argmax at every generated position must
// be kite's greedy token (so the greedy continuations are token-identical).
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/sequence_runner.h"
#include "checkpoint/weights.h"
#include "models/load.h"
#include "support/test_util.h"

namespace kite {
namespace {

using testing::TempDir;

const std::string kOracle = std::string(KITE_CONFORMANCE_DIR) + "/llama_oracle.py";
const std::string kMakeTiny = std::string(KITE_CONFORMANCE_DIR) + "/make_tiny_models.py";
const std::string kTinyStories =
    std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";

struct Run {
  std::vector<int32_t> ids;  // prompt + continuation
  size_t prompt_len = 0;
  std::vector<std::vector<float>> logits;  // kite's logits at positions [0, ids.size() - 1)
};

// Prefill the prompt in one step (logits at every prompt position), then greedy decode.
Run run_kite(CpuModelRunner* runner, const std::vector<int32_t>& prompt, int steps) {
  Run r;
  r.ids = prompt;
  r.prompt_len = prompt.size();
  const int64_t vocab = runner->config().vocab_size;
  SequenceRunner seq(runner, 16, runner->num_kv_blocks());
  auto all = seq.feed(prompt, /*all_logits=*/true);
  EXPECT_TRUE(all.ok()) << all.status().to_string();
  if (!all.ok()) return r;
  for (size_t p = 0; p < prompt.size(); ++p) {
    r.logits.emplace_back(all->begin() + static_cast<int64_t>(p) * vocab,
                          all->begin() + static_cast<int64_t>(p + 1) * vocab);
  }
  for (int s = 0; s < steps; ++s) {
    const std::vector<float>& last = r.logits.back();
    const int32_t next = cpu::argmax(last.data(), vocab);
    r.ids.push_back(next);
    if (s + 1 == steps) break;
    auto l = seq.feed(std::vector<int32_t>{next});
    EXPECT_TRUE(l.ok()) << l.status().to_string();
    if (!l.ok()) return r;
    r.logits.push_back(std::move(*l));
  }
  return r;
}

// Runs kite on `prompts`, then the oracle on the resulting sequences, and compares.
void check_model(const std::string& model_dir, const std::vector<std::vector<int32_t>>& prompts,
                 int steps) {
  if (!testing::have_python()) GTEST_SKIP() << "no Python oracle at " << KITE_PYTHON_EXECUTABLE;
  auto loaded = load_model(model_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  std::shared_ptr<const WeightStore> weights = std::move(*loaded);
  auto runner = CpuModelRunner::create(weights, {.num_threads = 2});
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  ASSERT_TRUE((*runner)->allocate_kv_cache((longest + steps) / 16 + 2, KvCacheConfig{}).ok());

  std::vector<Run> runs;
  std::vector<std::string> args;
  TempDir tmp;
  const std::string out = tmp / "oracle.json";
  args.push_back(model_dir);
  args.push_back(out);
  args.push_back("--prompts");
  for (const auto& p : prompts) {
    runs.push_back(run_kite(runner->get(), p, steps));
    // The oracle needs every position kite has logits for (all but the last token).
    std::vector<int32_t> seq(runs.back().ids.begin(), runs.back().ids.end() - 1);
    args.push_back(testing::join_ids(seq));
  }
  std::string log;
  ASSERT_EQ(testing::run_python(kOracle, args, &log), 0) << log;
  auto doc = boost::json::parse(testing::read_text(out));
  const auto& ref_prompts = doc.at("prompts").as_array();
  ASSERT_EQ(ref_prompts.size(), runs.size());

  const int64_t vocab = weights->config().vocab_size;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    const auto& ref = ref_prompts[i].at("logits").as_array();
    ASSERT_EQ(ref.size(), r.logits.size());
    double max_diff = 0;
    for (size_t p = 0; p < ref.size(); ++p) {
      const auto& row = ref[p].as_array();
      ASSERT_EQ(static_cast<int64_t>(row.size()), vocab);
      double best = -1e300;
      int32_t best_id = 0;
      for (int64_t t = 0; t < vocab; ++t) {
        const double want = row[static_cast<size_t>(t)].to_number<double>();
        max_diff = std::max(max_diff, std::fabs(want - r.logits[p][static_cast<size_t>(t)]));
        if (want > best) {
          best = want;
          best_id = static_cast<int32_t>(t);
        }
      }
      if (p + 1 >= r.prompt_len) {  // a generated position: kite's greedy token
        EXPECT_EQ(best_id, r.ids[p + 1])
            << model_dir << " prompt " << i << ": greedy token at position " << p + 1
            << " differs from the oracle's argmax";
      }
    }
    EXPECT_LE(max_diff, 1e-4) << model_dir << " prompt " << i;
    std::printf("[ conform  ] %s prompt %zu (%zu tokens + %d greedy): max |logit diff| %.3g\n",
                model_dir.substr(model_dir.rfind('/') + 1).c_str(), i, r.prompt_len, steps,
                max_diff);
  }
}

// Prompts of different lengths: BOS only, "Once upon a time", a sentence that crosses KV block
// boundaries (25 tokens), "The cat" (ids from the model's tokenizer.json).
const std::vector<std::vector<int32_t>> kStoryPrompts = {
    {1},
    {1, 80, 147, 201, 282, 57},
    {1,    80,  875, 303, 1747, 238, 878,  203, 1898, 489, 552, 609, 939,
     1387, 202, 307, 790, 265,  747, 1516, 666, 215,  253, 131, 77},
    {1, 80, 247, 476},
};

TEST(ForwardConformanceTest, TinyStories656K) { check_model(kTinyStories, kStoryPrompts, 64); }

class TinyFamilyTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>();
    if (!testing::have_python()) return;
    std::string log;
    made_ = testing::run_python(kMakeTiny, {dir_->path()}, &log) == 0;
    if (!made_) std::fprintf(stderr, "%s\n", log.c_str());
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::unique_ptr<TempDir> dir_;
  static bool made_;
};
std::unique_ptr<TempDir> TinyFamilyTest::dir_;
bool TinyFamilyTest::made_ = false;

TEST_P(TinyFamilyTest, MatchesOracle) {
  if (!testing::have_python()) GTEST_SKIP() << "no Python oracle at " << KITE_PYTHON_EXECUTABLE;
  ASSERT_TRUE(made_) << "make_tiny_models.py failed";
  check_model(*dir_ / GetParam(),
              {{1, 5, 9, 33}, {7}, {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8}}, 24);
}

INSTANTIATE_TEST_SUITE_P(Families, TinyFamilyTest,
                         ::testing::Values("llama31-bf16", "qwen2-f16-sharded", "qwen3-f32",
                                           "mistral-mqa", "phi3-fused", "phi3-longrope",
                                           "gemma2-bf16", "gemma3-f32", "qwen3moe-bf16",
                                           "qwen3moe-step2-f32", "mixtral-f16"),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// Mixture-of-experts GGUFs in llama.cpp's layout (make_tiny_models.py write_moe_gguf: Mixtral as
// "llama" with permuted Q/K rows, Qwen3-MoE as "qwen3moe"; experts stacked into
// ffn_{gate,up,down}_exps, the router as ffn_gate_inp) give the logits of the safetensors model
// they were written from, bit for bit (the same F16/F32 values; for the Q8_0 experts the
// safetensors model holds their dequantized values, and cpu::linear on Q8_0 computes the same
// sums as on the dequantized F32 matrix).
TEST(GgufMoeTest, SameLogitsAsItsSafetensorsModel) {
  if (!testing::have_python()) GTEST_SKIP() << "no Python at " << KITE_PYTHON_EXECUTABLE;
  TempDir dir;
  std::string log;
  ASSERT_EQ(testing::run_python(kMakeTiny, {dir.path()}, &log), 0) << log;
  for (const std::string name : {"mixtral-gguf-f16", "qwen3moe-gguf-f32", "qwen3moe-gguf-q8"}) {
    SCOPED_TRACE(name);
    std::vector<::kite::Run> runs;
    for (const std::string& path : {dir / name, dir / (name + ".gguf")}) {
      auto loaded = load_model(path);
      ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
      EXPECT_EQ((*loaded)->config().family,
                name.starts_with("mixtral") ? ModelFamily::kMixtral : ModelFamily::kQwen3Moe);
      std::shared_ptr<const WeightStore> weights = std::move(*loaded);
      auto runner = CpuModelRunner::create(weights, {.num_threads = 2});
      ASSERT_TRUE(runner.ok()) << runner.status().to_string();
      ASSERT_TRUE((*runner)->allocate_kv_cache(4, KvCacheConfig{}).ok());
      runs.push_back(run_kite(runner->get(), {3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 12));
    }
    ASSERT_EQ(runs[0].logits.size(), runs[1].logits.size());
    EXPECT_EQ(runs[0].ids, runs[1].ids);
    for (size_t p = 0; p < runs[0].logits.size(); ++p) {
      EXPECT_EQ(runs[0].logits[p], runs[1].logits[p]) << "position " << p;
    }
  }
}

}  // namespace
}  // namespace kite
