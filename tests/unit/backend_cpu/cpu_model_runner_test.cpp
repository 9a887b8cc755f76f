// CpuModelRunner on the shipped TinyStories model: the logits of a token do not depend on how
// the sequence was split into steps or what else shares the batch (bit for bit), a step's
// pipeline micro-batches give its logits, bad batches are errors, and the KV sizing follows the
// budget.
#include "backend/cpu/cpu_model_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/sequence_runner.h"
#include "models/load.h"
#include "support/test_util.h"
#include "unit/checkpoint/gguf_builder.h"

namespace kite {
namespace {

const std::string kTiny = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";
const std::vector<int32_t> kPrompt = {1,   80,   875, 303, 1747, 238, 878, 203, 1898,
                                      489, 552,  609, 939, 1387, 202, 307, 790, 265,
                                      747, 1516, 666, 215, 253,  131, 77};

std::shared_ptr<const WeightStore> tiny_weights() {
  static std::shared_ptr<const WeightStore> w = [] {
    auto m = load_model(kTiny);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return std::shared_ptr<const WeightStore>(std::move(*m));
  }();
  return w;
}

std::unique_ptr<CpuModelRunner> runner(int64_t blocks = 16, int threads = 2) {
  auto r = CpuModelRunner::create(tiny_weights(), {.num_threads = threads});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE((*r)->allocate_kv_cache(blocks, KvCacheConfig{}).ok());
  return std::move(*r);
}

// Logits of every prompt position, feeding the prompt in chunks of `chunk` tokens.
std::vector<float> chunked(CpuModelRunner* r, size_t chunk) {
  SequenceRunner seq(r, 16, r->num_kv_blocks());
  std::vector<float> all;
  for (size_t i = 0; i < kPrompt.size(); i += chunk) {
    const size_t n = std::min(chunk, kPrompt.size() - i);
    auto l = seq.feed(std::span<const int32_t>(kPrompt.data() + i, n), /*all_logits=*/true);
    EXPECT_TRUE(l.ok()) << l.status().to_string();
    all.insert(all.end(), l->begin(), l->end());
  }
  return all;
}

TEST(CpuModelRunnerTest, ChunkingAndThreadsDoNotChangeLogits) {
  auto r = runner();
  const std::vector<float> whole = chunked(r.get(), kPrompt.size());
  ASSERT_EQ(whole.size(), kPrompt.size() * 2048);
  for (size_t chunk : {1, 3, 16}) {
    auto r2 = runner();
    EXPECT_EQ(chunked(r2.get(), chunk), whole) << "chunk " << chunk;
  }
  auto single_thread = runner(16, 1);
  EXPECT_EQ(chunked(single_thread.get(), 7), whole);
}

// Appends a sequence to `b`: `tokens` at positions start.., written to the slots of `blocks`.
void add_seq(ForwardBatch* b, const std::vector<int32_t>& tokens, int start,
             const std::vector<int32_t>& blocks) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int pos = start + static_cast<int>(i);
    b->token_ids.push_back(tokens[i]);
    b->positions.push_back(pos);
    b->slot_mapping.push_back(blocks[pos / 16] * 16 + pos % 16);
  }
  if (b->query_start_loc.empty()) b->query_start_loc.push_back(0);
  b->query_start_loc.push_back(b->query_start_loc.back() + static_cast<int32_t>(tokens.size()));
  b->seq_lens.push_back(start + static_cast<int32_t>(tokens.size()));
  if (b->block_table_indptr.empty()) b->block_table_indptr.push_back(0);
  b->block_table.insert(b->block_table.end(), blocks.begin(), blocks.end());
  b->block_table_indptr.push_back(static_cast<int32_t>(b->block_table.size()));
  b->max_query_len = std::max<int32_t>(b->max_query_len, static_cast<int32_t>(tokens.size()));
  b->max_seq_len = std::max(b->max_seq_len, b->seq_lens.back());
}

std::vector<int32_t> prompt_slice(size_t a, size_t b) {
  return std::vector<int32_t>(kPrompt.begin() + static_cast<int64_t>(a),
                              kPrompt.begin() + static_cast<int64_t>(b));
}

// One step holding a decode of sequence A, a prefill chunk of B over its cached prefix, and a
// fresh prefill of C (blocks interleaved in the cache) gives each the logits it gets alone.
TEST(CpuModelRunnerTest, MixedBatchEqualsSequencesAlone) {
  auto alone = runner();
  const std::vector<float> want = chunked(alone.get(), kPrompt.size());
  const int64_t vocab = 2048;
  auto r = runner(32);
  // Step 1: A's first 10 tokens in blocks {3}, {5}; B's first 5 tokens in block {4}.
  ForwardBatch s1;
  auto prefix = prompt_slice;
  add_seq(&s1, prefix(0, 20), 0, {3, 5});
  add_seq(&s1, prefix(0, 5), 0, {4});
  TensorView logits;
  ASSERT_TRUE(r->forward(s1, &logits).ok());
  EXPECT_EQ(logits.dim(0), 0);

  // Step 2: A decodes token 20, B prefills tokens 5..12, C prefills 0..6 in blocks {7}.
  ForwardBatch s2;
  add_seq(&s2, prefix(20, 21), 20, {3, 5});
  add_seq(&s2, prefix(5, 13), 5, {4});
  add_seq(&s2, prefix(0, 7), 0, {7});
  // Logits rows: A's decode (row 0), B's last (row 8), C's every token (rows 9..15).
  s2.logits_indices = {0, 8, 9, 10, 11, 12, 13, 14, 15};
  ASSERT_TRUE(r->forward(s2, &logits).ok());
  ASSERT_EQ(logits.dim(0), 9);
  auto row = [&](int64_t i) { return logits.as<float>() + i * vocab; };
  auto want_row = [&](int64_t pos) { return want.data() + pos * vocab; };
  EXPECT_TRUE(std::equal(row(0), row(0) + vocab, want_row(20))) << "A decode";
  EXPECT_TRUE(std::equal(row(1), row(1) + vocab, want_row(12))) << "B chunk";
  for (int64_t p = 0; p < 7; ++p) {
    EXPECT_TRUE(std::equal(row(2 + p), row(2 + p) + vocab, want_row(p))) << "C position " << p;
  }
}

// Pipeline micro-batches (forward_batch.h): the parts of a mixed step are valid batches of whole
// sequences with about equal token counts, and the parts run one after another give each
// logits row of the whole step, bit for bit, at the row slice_batch names.
TEST(CpuModelRunnerTest, MicroBatchesOfAMixedStepGiveTheStepsLogits) {
  auto r = runner(32);
  ForwardBatch s1;  // A's first 20 tokens, B's first 5
  add_seq(&s1, prompt_slice(0, 20), 0, {3, 5});
  add_seq(&s1, prompt_slice(0, 5), 0, {4});
  TensorView logits;
  ASSERT_TRUE(r->forward(s1, &logits).ok());
  ForwardBatch step;  // A decodes (1 token), B prefills 8, C prefills 7: 16 tokens
  add_seq(&step, prompt_slice(20, 21), 20, {3, 5});
  add_seq(&step, prompt_slice(5, 13), 5, {4});
  add_seq(&step, prompt_slice(0, 7), 0, {7});
  step.logits_indices = {0, 8, 9, 10, 11, 12, 13, 14, 15};
  ASSERT_TRUE(r->forward(step, &logits).ok());
  const int64_t vocab = 2048;
  const std::vector<float> whole(logits.as<float>(), logits.as<float>() + logits.numel());
  // Token-balanced cuts: 2 parts are {A, B} (9 tokens) and {C} (7); more parts than sequences
  // give one sequence each.
  EXPECT_EQ(micro_batch_bounds(step, 1), (std::vector<int32_t>{0, 3}));
  EXPECT_EQ(micro_batch_bounds(step, 2), (std::vector<int32_t>{0, 2, 3}));
  EXPECT_EQ(micro_batch_bounds(step, 3), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(micro_batch_bounds(step, 8), (std::vector<int32_t>{0, 1, 2, 3}));
  BatchLimits limits;
  limits.vocab_size = vocab;
  limits.num_blocks = 32;
  limits.block_size = 16;
  limits.planned = true;  // exact max_query_len / max_seq_len
  for (int parts : {2, 3}) {
    const std::vector<int32_t> bounds = micro_batch_bounds(step, parts);
    std::vector<bool> seen(whole.size() / vocab, false);
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      ForwardBatch part;
      std::vector<int32_t> rows;
      slice_batch(step, bounds[i], bounds[i + 1], &part, &rows);
      ASSERT_TRUE(validate_batch(part, limits).ok()) << parts << " parts, part " << i;
      ASSERT_TRUE(r->forward(part, &logits).ok());
      ASSERT_EQ(logits.dim(0), static_cast<int64_t>(rows.size()));
      for (size_t j = 0; j < rows.size(); ++j) {
        const float* want = whole.data() + rows[j] * vocab;
        EXPECT_TRUE(std::equal(want, want + vocab, logits.as<float>() + j * vocab))
            << parts << " parts, step row " << rows[j];
        seen[static_cast<size_t>(rows[j])] = true;
      }
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), static_cast<int64_t>(seen.size()));
  }
}

TEST(CpuModelRunnerTest, BadBatchesAreErrors) {
  auto r = runner(4);
  auto good = [] {
    ForwardBatch b;
    b.token_ids = {1, 80};
    b.positions = {0, 1};
    b.slot_mapping = {16, 17};
    b.query_start_loc = {0, 2};
    b.seq_lens = {2};
    b.block_table_indptr = {0, 1};
    b.block_table = {1};
    b.logits_indices = {1};
    b.max_query_len = 2;
    return b;
  };
  TensorView logits;
  ASSERT_TRUE(r->forward(good(), &logits).ok());
  auto expect_bad = [&](ForwardBatch b, const std::string& needle) {
    Status s = r->forward(b, &logits);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.to_string();
  };
  ForwardBatch b = good();
  b.token_ids[1] = 2048;
  expect_bad(b, "token id 2048 is outside the vocabulary [0, 2048)");
  b = good();
  b.slot_mapping[0] = 64;
  expect_bad(b, "slot 64 is outside the cache (64 slots)");
  b = good();
  b.block_table[0] = 4;
  expect_bad(b, "block id 4 is outside the cache (4 blocks)");
  b = good();
  b.seq_lens[0] = 17;
  expect_bad(b, "sequence 0: 1 blocks cannot hold 17 tokens");
  b = good();
  b.seq_lens[0] = 1;
  expect_bad(b, "sequence 0: 2 query tokens for a KV length of 1");
  b = good();
  b.logits_indices = {2};
  expect_bad(b, "logits index 2 is not a token row");
  b = good();
  b.positions.pop_back();
  expect_bad(b, "positions and slot_mapping must have one entry per token");
  b = good();
  b.query_start_loc = {0, 1};
  expect_bad(b, "query_start_loc must have num_seqs + 1 entries from 0 to num_tokens");

  auto fresh = CpuModelRunner::create(tiny_weights());
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->forward(good(), &logits).code(), StatusCode::kFailedPrecondition);
}

TEST(CpuModelRunnerTest, KvCacheSizing) {
  auto created = CpuModelRunner::create(tiny_weights());
  ASSERT_TRUE(created.ok());
  CpuModelRunner& r = **created;
  // 2 layers x (K + V) x 16 tokens x 4 kv heads x 16 dims x 4 bytes.
  EXPECT_EQ(r.kv_block_bytes(16), 2 * 2 * 16 * 64 * 4);
  KvCacheConfig cfg;
  EXPECT_EQ(r.determine_num_kv_blocks(cfg).status().code(), StatusCode::kInvalidArgument);
  cfg.memory_budget_bytes = r.kv_block_bytes(16);
  EXPECT_EQ(r.determine_num_kv_blocks(cfg).status().code(), StatusCode::kResourceExhausted);
  cfg.memory_budget_bytes = 10 * r.kv_block_bytes(16) + 5;
  EXPECT_EQ(*r.determine_num_kv_blocks(cfg), 10);
  EXPECT_EQ(r.kv_cache_dtype(), DType::kF32);
  // An FP8 cache: 1 byte per element, so the same budget holds 4x the blocks.
  auto fp8 = CpuModelRunner::create(tiny_weights(), {.kv_cache_dtype = DType::kF8E4M3});
  ASSERT_TRUE(fp8.ok()) << fp8.status().to_string();
  EXPECT_EQ((*fp8)->kv_cache_dtype(), DType::kF8E4M3);
  EXPECT_EQ((*fp8)->kv_block_bytes(16), 2 * 2 * 16 * 64);
  EXPECT_EQ(*(*fp8)->determine_num_kv_blocks(cfg), 40);
  EXPECT_EQ(
      CpuModelRunner::create(tiny_weights(), {.kv_cache_dtype = DType::kBF16}).status().code(),
      StatusCode::kUnimplemented);
}

TEST(CpuModelRunnerTest, SamplesWithTheReferenceSampler) {
  auto r = runner();
  SequenceRunner seq(r.get(), 16, r->num_kv_blocks());
  auto l = seq.feed(kPrompt);
  ASSERT_TRUE(l.ok());
  TensorView view(l->data(), DType::kF32, {1, 2048});
  SamplingBatch greedy;
  greedy.temperature = {0.0f};
  greedy.top_k = {0};
  greedy.top_p = {1.0f};
  greedy.min_p = {0.0f};
  greedy.repetition_penalty = {1.0f};
  greedy.frequency_penalty = {0.0f};
  greedy.presence_penalty = {0.0f};
  greedy.seed = {0};
  greedy.step = {0};
  greedy.num_logprobs = {-1};
  greedy.bias_indptr = {0, 0};
  greedy.banned_indptr = {0, 0};
  greedy.prompt_tokens_indptr = {0, 0};
  greedy.output_tokens_indptr = {0, 0};
  greedy.all_greedy = true;
  SamplerOutput out;
  ASSERT_TRUE(r->sample(view, greedy, &out).ok());
  EXPECT_EQ(out.token_ids[0], cpu::argmax(l->data(), 2048));
  SamplingBatch bad = greedy;
  bad.temperature = {0.0f, 0.0f};
  EXPECT_EQ(r->sample(view, bad, &out).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kite

namespace kite {
namespace {

// A small llama GGUF with random F32 weights; `rope` adds RoPE metadata or rope_freqs.weight.
std::vector<uint8_t> random_llama_gguf(const std::function<void(testing::GgufBuilder*)>& rope) {
  testing::GgufBuilder g;
  g.add_string("general.architecture", "llama");
  g.add_u32("llama.embedding_length", 32);
  g.add_u32("llama.feed_forward_length", 64);
  g.add_u32("llama.block_count", 1);
  g.add_u32("llama.attention.head_count", 2);
  g.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  rope(&g);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> dist(-0.5f, 0.5f);
  auto random_f32 = [&](uint64_t n, float center) {
    std::vector<uint8_t> b(n * 4);
    for (uint64_t i = 0; i < n; ++i) {
      const float v = center + dist(rng);
      std::memcpy(b.data() + 4 * i, &v, 4);
    }
    return b;
  };
  g.add_tensor("token_embd.weight", {32, 10}, 0, random_f32(320, 0));
  g.add_tensor("output_norm.weight", {32}, 0, random_f32(32, 1));
  g.add_tensor("blk.0.attn_norm.weight", {32}, 0, random_f32(32, 1));
  g.add_tensor("blk.0.ffn_norm.weight", {32}, 0, random_f32(32, 1));
  for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
    g.add_tensor(std::string("blk.0.") + n + ".weight", {32, 32}, 0, random_f32(32 * 32, 0));
  }
  g.add_tensor("blk.0.ffn_gate.weight", {32, 64}, 0, random_f32(32 * 64, 0));
  g.add_tensor("blk.0.ffn_up.weight", {32, 64}, 0, random_f32(32 * 64, 0));
  g.add_tensor("blk.0.ffn_down.weight", {64, 32}, 0, random_f32(32 * 64, 0));
  return g.build();
}

std::vector<float> gguf_logits(const std::vector<uint8_t>& bytes) {
  testing::TempDir tmp;
  testing::write_bytes(tmp / "m.gguf", bytes.data(), bytes.size());
  auto m = load_model(tmp / "m.gguf");
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (!m.ok()) return {};
  auto r = CpuModelRunner::create(std::shared_ptr<const WeightStore>(std::move(*m)));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE((*r)->allocate_kv_cache(4, KvCacheConfig{}).ok());
  SequenceRunner seq(r->get(), 16, 4);
  auto l = seq.feed(std::vector<int32_t>{1, 5, 9, 2, 7, 3, 8, 4, 6, 0, 1, 2}, true);
  EXPECT_TRUE(l.ok());
  return l.ok() ? *l : std::vector<float>{};
}

// Llama 3.1 GGUFs carry RoPE scaling as rope_freqs.weight (per-frequency divisors): factors of
// 1 change nothing, and uniform factors f equal linear scaling by f.
TEST(CpuModelRunnerGgufTest, RopeFreqsWeightScalesFrequencies) {
  const auto plain = gguf_logits(random_llama_gguf([](testing::GgufBuilder*) {}));
  auto with_factors = [](float f) {
    return [f](testing::GgufBuilder* g) {
      std::vector<uint8_t> b(8 * 4);  // head_dim 16 -> 8 frequencies
      for (int i = 0; i < 8; ++i) std::memcpy(b.data() + 4 * i, &f, 4);
      g->add_tensor("rope_freqs.weight", {8}, 0, b);
    };
  };
  const auto ones = gguf_logits(random_llama_gguf(with_factors(1.0f)));
  const auto twos = gguf_logits(random_llama_gguf(with_factors(2.0f)));
  const auto linear = gguf_logits(random_llama_gguf([](testing::GgufBuilder* g) {
    g->add_string("llama.rope.scaling.type", "linear");
    g->add_f32("llama.rope.scaling.factor", 2.0f);
  }));
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(ones, plain);
  EXPECT_EQ(twos, linear);
  EXPECT_NE(twos, plain);
}

}  // namespace
}  // namespace kite
