// The Engine on the CPU backend with the real shipped model (tests/data/models/tinystories-656k,
// Llama architecture, tokenizer.json): batching invariance under chunked prefill and forced
// preemption, prefix caching, seeded sampling, and the text path (tokenizer, detokenizer,
// stop strings).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "kite/engine.h"

namespace kite {
namespace {

using testing::collect;
using testing::Collected;

const std::string kModel = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";

std::unique_ptr<Engine> make(EngineConfig cfg) {
  cfg.model = kModel;
  cfg.num_threads = 2;
  auto e = Engine::create(cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

// Prompts of mixed lengths: story openings, tokenized by the engine, cut or repeated.
std::vector<std::vector<int32_t>> mixed_prompts(Engine& engine, int count, uint32_t seed) {
  const char* openings[] = {
      "Once upon a time, there was a little girl named Lily.",
      "Tom and his dog went to the park to play with a red ball.",
      "The sun was shining and the birds were singing in the big green tree.",
      "One day, a small cat found a shiny key under the bed.",
  };
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < count; ++i) {
    std::string text;
    const int parts = i % 9 == 0 ? 12 : 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < parts; ++k) text += std::string(k ? " " : "") + openings[rng() % 4];
    auto ids = engine.tokenize(text, true);
    EXPECT_TRUE(ids.ok());
    std::vector<int32_t> p = *ids;
    p.resize(std::max<size_t>(1, p.size() - rng() % std::min<size_t>(p.size(), 8)));
    prompts.push_back(std::move(p));
  }
  return prompts;
}

GenerateRequest make_request(std::vector<int32_t> prompt, SamplingParams p) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.params = std::move(p);
  return r;
}

// 64 prompts of mixed lengths run together — with a token budget that chunks prefills and a
// KV cache small enough to force preemption — give exactly the tokens each gives alone.
TEST(EngineModel, BatchingInvarianceWithChunkedPrefillAndPreemption) {
  std::unique_ptr<Engine> solo = make({});
  ASSERT_NE(solo, nullptr);
  const std::vector<std::vector<int32_t>> prompts = mixed_prompts(*solo, 64, 1);
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  ASSERT_GT(longest, 100u);  // some prompts take several chunks
  std::vector<GenerateRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SamplingParams p;
    p.temperature = 0.0;
    p.max_tokens = 24 + static_cast<int>(i % 5) * 8;
    p.ignore_eos = i % 4 == 0;
    reqs.push_back(make_request(prompts[i], p));
  }
  std::vector<Collected> alone;
  for (const GenerateRequest& r : reqs) alone.push_back(collect(**solo->add_request(r)));

  EngineConfig cfg;
  cfg.max_num_batched_tokens = 48;  // chunked prefill
  cfg.max_num_seqs = 64;
  cfg.block_size = 16;
  cfg.max_model_len = 512;
  // 41 usable blocks (656 token slots) for 64 requests: preemption is certain.
  const int64_t block_bytes = 2 /*K,V*/ * 2 /*layers*/ * 16 * 4 /*kv heads*/ * 16 /*head dim*/ * 4;
  cfg.kv_cache_memory_bytes = 42 * block_bytes;
  std::unique_ptr<Engine> batched = make(cfg);
  ASSERT_NE(batched, nullptr);
  ASSERT_EQ(batched->model_info().num_kv_blocks, 42);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const GenerateRequest& r : reqs) streams.push_back(*batched->add_request(r));
  for (size_t i = 0; i < reqs.size(); ++i) {
    Collected c = collect(*streams[i]);
    EXPECT_EQ(c.tokens[0], alone[i].tokens[0]) << "request " << i;
    EXPECT_EQ(c.finish[0], alone[i].finish[0]) << "request " << i;
  }
  EXPECT_GT(batched->stats().num_preemptions, 0);
}

// The TinyStories model served for embeddings (runner "pooling") with sentence-transformers'
// mean pooling: 64 prompts of mixed lengths run together in a small KV cache, their prefills
// chunked over steps and batched with each other, give exactly the embedding each gives alone
// (mean pooling sums over the chunks), unit-norm, and leave no KV block behind. (Prefill-only
// requests are rarely preempted: only the last admitted one is partial at a step's start.)
TEST(EngineModel, EmbeddingsAreBatchInvariantUnderChunking) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "kite-engine-model-mean-pooling";
  fs::remove_all(dir);
  fs::create_directories(dir / "1_Pooling");
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    fs::create_symlink(fs::path(kModel) / f, dir / f);
  }
  std::ofstream(dir / "modules.json")
      << R"([{"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])";
  std::ofstream(dir / "1_Pooling" / "config.json") << R"({"pooling_mode_mean_tokens": true})";
  auto make_pooling = [&](EngineConfig cfg) {
    cfg.model = dir.string();
    cfg.runner = "pooling";
    cfg.num_threads = 2;
    auto e = Engine::create(cfg);
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    return e.ok() ? std::move(*e) : nullptr;
  };
  std::unique_ptr<Engine> solo = make_pooling({});
  ASSERT_NE(solo, nullptr);
  EXPECT_EQ(solo->model_info().pooling.type, "MEAN");
  const std::vector<std::vector<int32_t>> prompts = mixed_prompts(*solo, 64, 3);
  auto embed = [](Engine& e, const std::vector<int32_t>& prompt) {
    GenerateRequest r;
    r.prompt = prompt;
    r.pooling = PoolingParams{};
    return *e.add_request(std::move(r));
  };
  auto last_output = [](RequestStream& s) {
    RequestOutput last;
    while (auto out = s.next()) last = std::move(*out);
    EXPECT_TRUE(last.finished && last.error.ok()) << last.error.to_string();
    return last;
  };
  std::vector<std::vector<float>> alone;
  for (const auto& p : prompts) alone.push_back(last_output(*embed(*solo, p)).embedding);

  EngineConfig cfg;
  cfg.max_num_batched_tokens = 48;
  cfg.max_num_seqs = 64;
  cfg.block_size = 16;
  cfg.max_model_len = 512;
  const int64_t block_bytes = 2 * 2 * 16 * 4 * 16 * 4;  // K,V × layers × tokens × kv heads × dim
  cfg.kv_cache_memory_bytes = 34 * block_bytes;
  std::unique_ptr<Engine> batched = make_pooling(cfg);
  ASSERT_NE(batched, nullptr);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& p : prompts) streams.push_back(embed(*batched, p));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const RequestOutput out = last_output(*streams[i]);
    ASSERT_EQ(out.embedding.size(), 128u);
    EXPECT_EQ(out.embedding, alone[i]) << "request " << i;
    EXPECT_EQ(out.prompt_token_ids, prompts[i]);
    double norm = 0;
    for (float x : out.embedding) norm += static_cast<double>(x) * x;
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
  const EngineStats st = batched->stats();
  EXPECT_EQ(st.num_kv_blocks_used, 0);
  EXPECT_EQ(st.requests_finished_total, 64);
  fs::remove_all(dir);
}

// Seeded sampling gives the same tokens alone and in a batch.
TEST(EngineModel, SeededSamplingIsBatchInvariant) {
  std::unique_ptr<Engine> engine = make({});
  ASSERT_NE(engine, nullptr);
  const std::vector<std::vector<int32_t>> prompts = mixed_prompts(*engine, 16, 2);
  std::vector<GenerateRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SamplingParams p;
    p.temperature = 0.8 + 0.05 * static_cast<double>(i % 4);
    p.top_p = 0.95;
    p.top_k = i % 2 == 0 ? 40 : 0;
    p.seed = 100 + i;
    p.max_tokens = 30;
    p.n = i % 3 == 0 ? 2 : 1;
    reqs.push_back(make_request(prompts[i], p));
  }
  std::vector<Collected> alone;
  for (const GenerateRequest& r : reqs) {
    alone.push_back(collect(**engine->add_request(r), r.params.n));
  }
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const GenerateRequest& r : reqs) streams.push_back(*engine->add_request(r));
  int differing_choices = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    Collected c = collect(*streams[i], reqs[i].params.n);
    EXPECT_EQ(c.tokens, alone[i].tokens) << "request " << i;
    if (c.tokens.size() == 2 && c.tokens[0] != c.tokens[1]) ++differing_choices;
  }
  EXPECT_GT(differing_choices, 0);  // n = 2 choices really sample apart
}

// A second request sharing a long prefix reuses its blocks and matches a cold run.
TEST(EngineModel, PrefixCachingReusesBlocksAndMatchesAColdRun) {
  std::unique_ptr<Engine> engine = make({});
  ASSERT_NE(engine, nullptr);
  std::string story;
  const char* sentences[] = {"Once upon a time, there was a little girl named Lily.",
                             "She had a red ball and a small dog called Max.",
                             "Every morning they ran to the big park near the river.",
                             "The sun was warm and the birds sang happy songs."};
  for (int i = 0; i < 12; ++i) story += std::string(sentences[i % 4]) + " ";
  const std::vector<int32_t> prefix = *engine->tokenize(story, true);
  ASSERT_GT(prefix.size(), 100u);
  std::vector<int32_t> a = prefix, b = prefix;
  const std::vector<int32_t> a_tail = *engine->tokenize("She liked to play.", false);
  const std::vector<int32_t> b_tail = *engine->tokenize("One day she saw a dog.", false);
  a.insert(a.end(), a_tail.begin(), a_tail.end());
  b.insert(b.end(), b_tail.begin(), b_tail.end());
  SamplingParams p;
  p.temperature = 0.0;
  p.max_tokens = 20;
  p.ignore_eos = true;  // a full-length continuation to compare
  collect(**engine->add_request(make_request(a, p)));
  const EngineStats before = engine->stats();
  Collected warm = collect(**engine->add_request(make_request(b, p)));
  const EngineStats after = engine->stats();
  const int64_t shared_blocks = static_cast<int64_t>(prefix.size()) / 16;
  EXPECT_GE(after.prefix_cache_hits - before.prefix_cache_hits, shared_blocks * 16);
  EXPECT_EQ(after.prefix_cache_queries - before.prefix_cache_queries,
            static_cast<int64_t>(b.size()));
  const int64_t hits = after.prefix_cache_hits - before.prefix_cache_hits;
  EXPECT_EQ(warm.metrics.num_cached_tokens, hits);
  // Only the suffix ran through the model: the uncached prompt tokens, then one token per
  // decode step (the last sampled token is never fed back).
  const int64_t computed = after.num_computed_tokens_total - before.num_computed_tokens_total;
  const int64_t outputs = static_cast<int64_t>(warm.tokens[0].size());
  EXPECT_EQ(computed, static_cast<int64_t>(b.size()) - hits + outputs - 1);
  std::printf(
      "[ prefix   ] second request: %zu prompt tokens, %lld from the cache, %lld computed\n",
      b.size(), static_cast<long long>(hits), static_cast<long long>(computed));

  EngineConfig cold_cfg;
  cold_cfg.enable_prefix_caching = false;
  std::unique_ptr<Engine> cold = make(cold_cfg);
  Collected c = collect(**cold->add_request(make_request(b, p)));
  EXPECT_EQ(c.tokens[0], warm.tokens[0]);
  EXPECT_EQ(c.text[0], warm.text[0]);
  EXPECT_EQ(cold->stats().prefix_cache_hits, 0);
  EXPECT_EQ(cold->stats().num_computed_tokens_total,
            static_cast<int64_t>(b.size()) + static_cast<int64_t>(c.tokens[0].size()) - 1);
}

TEST(EngineModel, TextPromptsDetokenizeAndStopStrings) {
  std::unique_ptr<Engine> engine = make({});
  ASSERT_NE(engine, nullptr);
  GenerateRequest r;
  r.prompt = std::string("Once upon a time, there was a little girl");
  r.params.temperature = 0.0;
  r.params.max_tokens = 40;
  Collected full = collect(**engine->add_request(r));
  ASSERT_FALSE(full.text[0].empty());
  // The streamed text equals the decode of the tokens.
  EXPECT_EQ(full.text[0], *engine->detokenize(full.tokens[0], true));
  EXPECT_EQ(full.prompt_token_ids[0], *engine->model_info().bos_token_id);
  // Stop at a word in the middle of the greedy text: the text ends right before it.
  const size_t cut = full.text[0].find(' ', full.text[0].size() / 2);
  ASSERT_NE(cut, std::string::npos);
  const size_t word_end = full.text[0].find_first_of(" .,", cut + 1);
  const std::string stop = full.text[0].substr(cut, word_end - cut);
  r.params.stop = {stop};
  Collected stopped = collect(**engine->add_request(r));
  EXPECT_EQ(stopped.finish[0], FinishReason::kStop);
  EXPECT_EQ(stopped.text[0], full.text[0].substr(0, full.text[0].find(stop)));
  EXPECT_LT(stopped.tokens[0].size(), full.tokens[0].size());
  r.params.include_stop_str_in_output = true;
  Collected with_stop = collect(**engine->add_request(r));
  EXPECT_EQ(with_stop.text[0], full.text[0].substr(0, full.text[0].find(stop)) + stop);
}

TEST(EngineModel, ModelInfoAndBadInput) {
  std::unique_ptr<Engine> engine = make({});
  ASSERT_NE(engine, nullptr);
  const ModelInfo& info = engine->model_info();
  EXPECT_EQ(info.architecture, "LlamaForCausalLM");
  EXPECT_EQ(info.backend, "cpu");
  EXPECT_EQ(info.max_model_len, 512);
  EXPECT_EQ(info.vocab_size, 2048);
  EXPECT_EQ(info.eos_token_ids, std::vector<int32_t>{2});
  EXPECT_EQ(info.served_model_name, "tinystories-656k");
  GenerateRequest r;
  r.prompt = std::vector<int32_t>(600, 5);
  EXPECT_EQ(engine->add_request(r).status().code(), StatusCode::kOutOfRange);
  r.prompt = std::vector<int32_t>{1, 4096};
  EXPECT_EQ(engine->add_request(r).status().code(), StatusCode::kInvalidArgument);
  r.prompt = std::string();
  EXPECT_EQ(engine->add_request(r).status().code(), StatusCode::kInvalidArgument);
  r.prompt = std::string("hi");
  r.params.temperature = -1;
  EXPECT_EQ(engine->add_request(r).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->detokenize({5000}, true).status().code(), StatusCode::kInvalidArgument);

  EngineConfig bad;
  bad.model = kModel + "/missing";
  EXPECT_EQ(Engine::create(bad).status().code(), StatusCode::kNotFound);
  bad.model = kModel;
  bad.device = "tpu";
  EXPECT_EQ(Engine::create(bad).status().code(), StatusCode::kInvalidArgument);
  bad.device = "auto";
  for (double u : {0.0, -0.5, 1.5}) {
    bad.gpu_memory_utilization = u;
    Status st = Engine::create(bad).status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << u;
    EXPECT_NE(st.message().find("gpu_memory_utilization"), std::string::npos) << st.message();
  }
  bad.gpu_memory_utilization = 0.9;
  // Several ranks need a world of that size (`mpirun`, docs/parallel.md): refused without one,
  // never silently ignored.
  bad.tensor_parallel_size = 2;
  Status tp = Engine::create(bad).status();
  EXPECT_EQ(tp.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tp.message().find("tensor_parallel_size 2 needs 2 ranks"), std::string::npos)
      << tp.message();
  bad.tensor_parallel_size = 0;
  EXPECT_EQ(Engine::create(bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kite
