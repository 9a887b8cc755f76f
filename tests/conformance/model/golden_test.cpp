// stories260K (GGUF, F32, llama2.c weights with their interleaved-RoPE Q/K layout): greedy
// decoding from BOS reproduces the publisher's text in GOLDEN.md (256 tokens), decoded with
// SentencePiece and tok512.model by golden_check.py.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/sequence_runner.h"
#include "checkpoint/weights.h"
#include "models/load.h"
#include "support/test_util.h"

namespace kite {
namespace {

const std::string kDir = std::string(KITE_SOURCE_DIR) + "/tests/data/models/stories260k";

TEST(GoldenTest, Stories260KGreedyFromBos) {
  if (!testing::have_python()) GTEST_SKIP() << "no Python at " << KITE_PYTHON_EXECUTABLE;
  auto loaded = load_model(kDir + "/stories260K.gguf");
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  std::shared_ptr<const WeightStore> weights = std::move(*loaded);
  ASSERT_TRUE(weights->config().bos_token_id.has_value());
  auto runner = CpuModelRunner::create(weights, {.num_threads = 2});
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  constexpr int kSteps = 300;  // the golden text is 256 tokens
  ASSERT_TRUE((*runner)->allocate_kv_cache(kSteps / 16 + 2, KvCacheConfig{}).ok());
  SequenceRunner seq(runner->get(), 16, (*runner)->num_kv_blocks());
  const int64_t vocab = weights->config().vocab_size;
  std::vector<int32_t> out;
  int32_t next = *weights->config().bos_token_id;
  for (int s = 0; s < kSteps; ++s) {
    auto logits = seq.feed(std::vector<int32_t>{next});
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    next = cpu::argmax(logits->data(), vocab);
    out.push_back(next);
  }
  testing::TempDir tmp;
  testing::write_text(tmp / "ids.txt", testing::join_ids(out));
  std::string log;
  const int rc =
      testing::run_python(std::string(KITE_CONFORMANCE_DIR) + "/golden_check.py",
                          {kDir + "/GOLDEN.md", kDir + "/tok512.model", tmp / "ids.txt"}, &log);
  EXPECT_EQ(rc, 0) << log;
  std::printf("[ golden   ] %s", log.c_str());
}

}  // namespace
}  // namespace kite
