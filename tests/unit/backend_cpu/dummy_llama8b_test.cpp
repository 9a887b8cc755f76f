// A Llama-3-8B-shaped model with random BF16 weights (--load-format dummy) loads and runs a
// prefill step and a decode step on the CPU within a bounded memory footprint: weights stay
// BF16 (16 GB, never an F32 copy) and the activations, KV cache and logits add little.
// Runs alone (RUN_SERIAL): it needs ~16 GB of the machine's memory.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/sequence_runner.h"
#include "checkpoint/weights.h"
#include "models/load.h"

namespace kite {
namespace {

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

TEST(DummyLlama8BTest, LoadsAndRunsOneStep) {
  LoadOptions opts;
  opts.load_format = "dummy";
  opts.seed = 1;
  auto loaded = load_model(std::string(KITE_SOURCE_DIR) + "/tests/data/configs/llama-3-8b", opts);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  std::shared_ptr<const WeightStore> weights = std::move(*loaded);
  const ModelConfig& c = weights->config();
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(weights->find("model.layers.31.mlp.down_proj.weight")->dtype, DType::kBF16);
  const int64_t weight_bytes = weights->weight_bytes();
  EXPECT_EQ(weight_bytes, 2 * int64_t{8030261248});  // 8.03 B parameters in BF16

  auto runner = CpuModelRunner::create(weights);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  KvCacheConfig kv;
  kv.memory_budget_bytes = int64_t{64} << 20;
  auto blocks = (*runner)->determine_num_kv_blocks(kv);
  ASSERT_TRUE(blocks.ok()) << blocks.status().to_string();
  ASSERT_TRUE((*runner)->allocate_kv_cache(*blocks, kv).ok());
  SequenceRunner seq(runner->get(), kv.block_size, *blocks);
  const std::vector<int32_t> prompt = {128000, 791, 6864, 315, 9822, 374, 12366, 13};
  auto prefill = seq.feed(prompt);
  ASSERT_TRUE(prefill.ok()) << prefill.status().to_string();
  auto decode = seq.feed(std::vector<int32_t>{11});
  ASSERT_TRUE(decode.ok()) << decode.status().to_string();
  ASSERT_EQ(static_cast<int64_t>(decode->size()), c.vocab_size);
  for (float v : *decode) ASSERT_TRUE(std::isfinite(v));

  const int64_t peak = peak_rss_bytes();
  std::printf("[ memory   ] weights %.2f GiB, peak RSS %.2f GiB (overhead %.2f GiB)\n",
              static_cast<double>(weight_bytes) / (1 << 30), static_cast<double>(peak) / (1 << 30),
              static_cast<double>(peak - weight_bytes) / (1 << 30));
  // Everything but the weights (KV cache 64 MiB, activations, logits, code) fits in 1 GiB.
  EXPECT_LE(peak, weight_bytes + (int64_t{1} << 30));
}

}  // namespace
}  // namespace kite
