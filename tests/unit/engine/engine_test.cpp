// Engine behaviour on a deterministic weightless model (HashModelRunner): request lifecycle,
// batching invariance under chunked prefill and preemption, n > 1, prefix caching, logprobs,
// aborts, shutdown, limits and bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "engine/engine_impl.h"
#include "engine_test_util.h"
#include "testing/hash_model_runner.h"

namespace kite {
namespace {

using testing::collect;
using testing::Collected;
using testing::HashModelRunner;

constexpr int64_t kVocab = 64;

struct TestEngine {
  std::unique_ptr<Engine> engine;
  HashModelRunner* runner = nullptr;
};

TestEngine make_engine(EngineConfig cfg, std::optional<bool> async = std::nullopt,
                       std::function<Status(const ForwardBatch&)> hook = {}) {
  auto runner = std::make_unique<HashModelRunner>(kVocab, 4096);
  runner->before_forward = std::move(hook);
  TestEngine t;
  t.runner = runner.get();
  EngineParts parts;
  if (cfg.model.empty()) cfg.model = "hash-model";
  parts.config = cfg;
  parts.runner = std::move(runner);
  parts.async_execution = async;
  auto e = EngineFactory::create(std::move(parts));
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  if (e.ok()) t.engine = std::move(*e);
  return t;
}

std::vector<int32_t> random_prompt(std::mt19937& rng, int len) {
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (int32_t& t : p) t = static_cast<int32_t>(1 + rng() % (kVocab - 1));
  return p;
}

GenerateRequest request(std::vector<int32_t> prompt, SamplingParams params, std::string id = "") {
  GenerateRequest r;
  r.request_id = std::move(id);
  r.prompt = std::move(prompt);
  r.params = std::move(params);
  return r;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.0;
  p.max_tokens = max_tokens;
  return p;
}

TEST(Engine, GeneratesAndFinishesExactlyOnce) {
  TestEngine t = make_engine({});
  SamplingParams p = greedy(12);
  p.ignore_eos = true;
  auto s = t.engine->add_request(request({5, 6, 7}, p, "one"));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)->request_id(), "one");
  Collected c = collect(**s);
  EXPECT_EQ(c.tokens[0].size(), 12u);
  EXPECT_EQ(c.finish[0], FinishReason::kLength);
  EXPECT_EQ(c.prompt_token_ids, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_TRUE(c.error.ok());
  EXPECT_EQ(c.metrics.num_prompt_tokens, 3);
  EXPECT_EQ(c.metrics.num_generation_tokens, 12);
  EXPECT_LE(c.metrics.arrival_time, c.metrics.first_scheduled_time);
  EXPECT_LE(c.metrics.first_scheduled_time, c.metrics.first_token_time);
  EXPECT_LE(c.metrics.first_token_time, c.metrics.last_token_time);
  EXPECT_LE(c.metrics.last_token_time, c.metrics.finished_time);
  EXPECT_FALSE((*s)->next().has_value());  // the stream has ended
  t.engine->shutdown(1000);
  const EngineStats st = t.engine->stats();
  EXPECT_EQ(st.requests_finished_total, 1);
  EXPECT_EQ(st.generation_tokens_total, 12);
  EXPECT_EQ(st.prompt_tokens_total, 3);
  EXPECT_EQ(st.num_kv_blocks_used, 0);
}

TEST(Engine, StopsAtEosAndStopTokenIds) {
  TestEngine t = make_engine({});
  // Find what the model says after a prompt, then make that token a stop token.
  auto s = t.engine->add_request(request({9, 9, 9}, greedy(5)));
  Collected free_run = collect(**s);
  ASSERT_FALSE(free_run.tokens[0].empty());
  SamplingParams p = greedy(5);
  p.stop_token_ids = {free_run.tokens[0][0]};
  if (free_run.tokens[0][0] != 0) {
    Collected c = collect(**t.engine->add_request(request({9, 9, 9}, p)));
    EXPECT_EQ(c.tokens[0], std::vector<int32_t>{free_run.tokens[0][0]});
    EXPECT_EQ(c.finish[0], FinishReason::kStop);
  }
  // min_tokens bans the stop token at first: the output differs and is longer.
  p.min_tokens = 2;
  Collected m = collect(**t.engine->add_request(request({9, 9, 9}, p)));
  EXPECT_GE(m.tokens[0].size(), 2u);
  EXPECT_NE(m.tokens[0][0], free_run.tokens[0][0]);
}

// The heart of continuous batching: 64 prompts of mixed lengths run together, with a token
// budget that chunks prefills and a KV cache small enough to force preemption, produce exactly
// what each produces alone — greedy and seeded sampling alike.
TEST(Engine, BatchingInvarianceUnderChunkingAndPreemption) {
  std::mt19937 rng(7);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 64; ++i) {
    SamplingParams p;
    p.max_tokens = 8 + static_cast<int>(rng() % 40);
    p.ignore_eos = i % 3 == 0;
    if (i % 2 == 0) {
      p.temperature = 0.0;
    } else {
      p.temperature = 0.9;
      p.top_p = 0.9;
      p.seed = 1000 + i;
    }
    const int len =
        i % 8 == 0 ? 100 + static_cast<int>(rng() % 150) : 1 + static_cast<int>(rng() % 40);
    reqs.push_back(request(random_prompt(rng, len), p, fmt::format("r{}", i)));
  }
  std::vector<Collected> alone;
  {
    EngineConfig cfg;
    cfg.max_model_len = 512;
    TestEngine t = make_engine(cfg);
    for (const GenerateRequest& r : reqs) alone.push_back(collect(**t.engine->add_request(r)));
  }
  EngineConfig cfg;
  cfg.max_model_len = 512;
  cfg.block_size = 4;
  cfg.max_num_batched_tokens = 64;
  cfg.max_num_seqs = 32;
  cfg.kv_cache_memory_bytes = 8 * 4 * 160;  // 159 usable blocks: far fewer than 64 requests need
  TestEngine t = make_engine(cfg);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const GenerateRequest& r : reqs) streams.push_back(*t.engine->add_request(r));
  for (size_t i = 0; i < reqs.size(); ++i) {
    Collected c = collect(*streams[i]);
    EXPECT_EQ(c.tokens[0], alone[i].tokens[0]) << "request " << i;
    EXPECT_EQ(c.finish[0], alone[i].finish[0]) << "request " << i;
  }
  const EngineStats st = t.engine->stats();
  EXPECT_GT(st.num_preemptions, 0);
  EXPECT_EQ(st.requests_finished_total, 64);
}

TEST(Engine, AsyncExecutionGivesTheSameOutputs) {
  std::mt19937 rng(3);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 16; ++i) {
    SamplingParams p;
    p.max_tokens = 20;
    p.temperature = i % 2 == 0 ? 0.0 : 1.0;
    p.seed = i;
    reqs.push_back(request(random_prompt(rng, 5 + i * 3), p));
  }
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 32;
  TestEngine sync = make_engine(cfg, false);
  TestEngine async = make_engine(cfg, true);
  std::vector<std::shared_ptr<RequestStream>> a, b;
  for (const auto& r : reqs) {
    a.push_back(*sync.engine->add_request(r));
    b.push_back(*async.engine->add_request(r));
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(collect(*a[i]).tokens[0], collect(*b[i]).tokens[0]) << i;
  }
}

// Choice i of an n-choice request with seed s is the single choice of a request with seed s+i:
// the choices share the prompt's computation but sample independently.
TEST(Engine, ChoicesOfNAreIndependentSeededRuns) {
  EngineConfig cfg;
  cfg.block_size = 4;
  TestEngine t = make_engine(cfg);
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};  // partial last block
  SamplingParams p;
  p.n = 4;
  p.seed = 77;
  p.max_tokens = 15;
  p.logprobs = 2;
  const int64_t before = t.runner->num_tokens_computed;
  Collected multi = collect(**t.engine->add_request(request(prompt, p)), 4);
  for (int i = 0; i < 4; ++i) {
    SamplingParams one = p;
    one.n = 1;
    one.seed = 77 + i;
    Collected single = collect(**t.engine->add_request(request(prompt, one)));
    EXPECT_EQ(multi.tokens[static_cast<size_t>(i)], single.tokens[0]) << "choice " << i;
    ASSERT_EQ(multi.logprobs[static_cast<size_t>(i)].size(),
              multi.tokens[static_cast<size_t>(i)].size());
    for (size_t k = 0; k < single.logprobs[0].size(); ++k) {
      EXPECT_FLOAT_EQ(multi.logprobs[static_cast<size_t>(i)][k].logprob,
                      single.logprobs[0][k].logprob);
    }
  }
  (void)before;
  // The choices are not all the same (they really sample apart).
  EXPECT_FALSE(multi.tokens[0] == multi.tokens[1] && multi.tokens[1] == multi.tokens[2]);
}

TEST(Engine, PrefixCachingReusesBlocksAndMatchesAColdRun) {
  std::mt19937 rng(11);
  const std::vector<int32_t> prefix = random_prompt(rng, 200);
  std::vector<int32_t> a = prefix, b = prefix;
  a.push_back(5);
  b.insert(b.end(), {7, 8, 9});
  EngineConfig cfg;
  cfg.block_size = 16;
  TestEngine t = make_engine(cfg);
  collect(**t.engine->add_request(request(a, greedy(10))));
  const EngineStats st1 = t.engine->stats();  // published before the output was pushed
  const int64_t computed_before = t.runner->num_tokens_computed;
  Collected warm = collect(**t.engine->add_request(request(b, greedy(10))));
  const EngineStats st2 = t.engine->stats();
  // 200 shared tokens = 12 full blocks of 16 (192 tokens) reused; only 11 prompt tokens and
  // the generated ones computed.
  EXPECT_EQ(st2.prefix_cache_hits - st1.prefix_cache_hits, 192);
  EXPECT_EQ(st2.prefix_cache_queries - st1.prefix_cache_queries, 203);
  EXPECT_EQ(warm.metrics.num_cached_tokens, 192);
  EXPECT_EQ(t.runner->num_tokens_computed - computed_before, (203 - 192) + 9);
  // A cold engine without prefix caching produces the same tokens.
  EngineConfig cold_cfg = cfg;
  cold_cfg.enable_prefix_caching = false;
  TestEngine cold = make_engine(cold_cfg);
  Collected c = collect(**cold.engine->add_request(request(b, greedy(10))));
  EXPECT_EQ(c.tokens[0], warm.tokens[0]);
  EXPECT_EQ(cold.engine->stats().prefix_cache_hits, 0);
}

// Prompt logprobs computed chunk by chunk equal the log-softmax of a single full forward.
TEST(Engine, PromptLogprobsMatchOneFullForward) {
  std::mt19937 rng(5);
  const std::vector<int32_t> prompt = random_prompt(rng, 50);
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 16;  // 4 chunks
  cfg.block_size = 8;
  TestEngine t = make_engine(cfg);
  SamplingParams p = greedy(3);
  p.prompt_logprobs = 3;
  Collected c = collect(**t.engine->add_request(request(prompt, p)));
  ASSERT_EQ(c.prompt_logprobs.size(), prompt.size());
  EXPECT_EQ(c.prompt_logprobs[0].token_id, prompt[0]);

  HashModelRunner ref(kVocab);
  KvCacheConfig kvc;
  kvc.block_size = 8;
  ASSERT_TRUE(ref.allocate_kv_cache(16, kvc).ok());
  ForwardBatch b;
  for (int32_t i = 0; i < 50; ++i) {
    b.token_ids.push_back(prompt[static_cast<size_t>(i)]);
    b.positions.push_back(i);
    b.slot_mapping.push_back(8 + i);  // blocks 1..7
    b.logits_indices.push_back(i);
  }
  b.query_start_loc = {0, 50};
  b.seq_lens = {50};
  b.block_table = {1, 2, 3, 4, 5, 6, 7};
  b.block_table_indptr = {0, 7};
  TensorView logits;
  ASSERT_TRUE(ref.forward(b, &logits).ok());
  for (size_t i = 1; i < prompt.size(); ++i) {
    const float* row = logits.as<float>() + (i - 1) * kVocab;
    double m = row[0], sum = 0.0;
    for (int v = 0; v < kVocab; ++v) m = std::max<double>(m, row[v]);
    for (int v = 0; v < kVocab; ++v) sum += std::exp(row[v] - m);
    const double want = row[prompt[i]] - m - std::log(sum);
    EXPECT_NEAR(c.prompt_logprobs[i].logprob, want, 1e-5) << i;
    EXPECT_EQ(c.prompt_logprobs[i].token_id, prompt[i]);
    ASSERT_EQ(c.prompt_logprobs[i].top.size(), 3u);
    EXPECT_GE(c.prompt_logprobs[i].top[0].logprob, c.prompt_logprobs[i].top[1].logprob);
    EXPECT_GE(c.prompt_logprobs[i].rank, 1);
  }
}

// A gate that holds the engine thread inside forward() until released.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> waiting{0};
  Status hold(const ForwardBatch&) {
    std::unique_lock<std::mutex> lock(mu);
    ++waiting;
    cv.wait(lock, [&] { return open; });
    return ok_status();
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
  void wait_until_held() {
    while (waiting.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
};

TEST(Engine, FullQueueIsUnavailable) {
  auto gate = std::make_shared<Gate>();
  EngineConfig cfg;
  cfg.max_num_seqs = 1;
  cfg.max_waiting_requests = 2;
  TestEngine t = make_engine(cfg, false, [gate](const ForwardBatch& b) { return gate->hold(b); });
  auto first = t.engine->add_request(request({1, 2}, greedy(4)));
  ASSERT_TRUE(first.ok());
  gate->wait_until_held();  // the first request is running (held in its first forward)
  auto second = t.engine->add_request(request({1, 3}, greedy(4)));
  auto third = t.engine->add_request(request({1, 4}, greedy(4)));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(third.ok());
  auto fourth = t.engine->add_request(request({1, 5}, greedy(4)));
  EXPECT_EQ(fourth.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(fourth.status().message().find("max_waiting_requests"), std::string::npos);
  gate->release();
  for (auto* s : {&first, &second, &third})
    EXPECT_EQ(collect(***s).finish[0], FinishReason::kLength);
}

TEST(Engine, QueuedTokensAreBounded) {
  auto gate = std::make_shared<Gate>();
  EngineConfig cfg;
  cfg.max_queued_tokens = 10;
  TestEngine t = make_engine(cfg, false, [gate](const ForwardBatch& b) { return gate->hold(b); });
  SamplingParams two = greedy(2);
  two.n = 2;
  auto first = t.engine->add_request(request({1, 2, 3, 4}, two));  // 4 tokens × 2
  ASSERT_TRUE(first.ok());
  gate->wait_until_held();
  auto over = t.engine->add_request(request({1, 2, 3}, greedy(2)));  // 8 + 3 > 10
  EXPECT_EQ(over.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(over.status().message().find("max_queued_tokens"), std::string::npos);
  auto never = t.engine->add_request(request(std::vector<int32_t>(11, 1), greedy(2)));
  EXPECT_EQ(never.status().code(), StatusCode::kInvalidArgument);
  auto fits = t.engine->add_request(request({1, 2}, greedy(2)));  // 8 + 2
  ASSERT_TRUE(fits.ok());
  gate->release();
  collect(**first, 2);
  collect(**fits);
  // Finished requests give their tokens back.
  auto later = t.engine->add_request(request({1, 2, 3}, greedy(2)));
  ASSERT_TRUE(later.ok());
  collect(**later);
}

TEST(Engine, AbortEndsTheRequestOnceAndFreesItsBlocks) {
  auto gate = std::make_shared<Gate>();
  TestEngine t = make_engine({}, false, [gate](const ForwardBatch& b) { return gate->hold(b); });
  SamplingParams p = greedy(1000);
  p.ignore_eos = true;
  p.n = 2;
  auto s = t.engine->add_request(request({1, 2, 3}, p, "victim"));
  ASSERT_TRUE(s.ok());
  gate->wait_until_held();
  t.engine->abort("victim");
  t.engine->abort("victim");  // twice: still one end
  t.engine->abort("nobody");
  gate->release();
  Collected c = collect(**s, 2);
  EXPECT_EQ(c.finish[0], FinishReason::kAbort);
  EXPECT_EQ(c.finish[1], FinishReason::kAbort);
  t.engine->shutdown(1000);
  EXPECT_EQ(t.engine->stats().num_kv_blocks_used, 0);
  EXPECT_EQ(t.engine->stats().requests_aborted_total, 1);
}

TEST(Engine, ShutdownAbortsWhatIsLeftAndRefusesNewWork) {
  TestEngine t = make_engine({});
  SamplingParams p = greedy(4000);
  p.ignore_eos = true;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(*t.engine->add_request(request({1, 2, 3}, p)));
  t.engine->shutdown(0);
  for (auto& s : streams) EXPECT_EQ(collect(*s).finish[0], FinishReason::kAbort);
  auto late = t.engine->add_request(request({1}, greedy(1)));
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  t.engine->shutdown(0);  // idempotent
}

TEST(Engine, FailingStepEndsItsRequestsWithAnError) {
  std::atomic<bool> fail{false};
  TestEngine t = make_engine({}, false, [&fail](const ForwardBatch&) {
    return fail.load() ? internal_error("device lost") : ok_status();
  });
  fail = true;
  Collected c = collect(**t.engine->add_request(request({1, 2}, greedy(3))));
  EXPECT_EQ(c.finish[0], FinishReason::kError);
  EXPECT_EQ(c.error.code(), StatusCode::kInternal);
  fail = false;  // the engine goes on serving
  EXPECT_EQ(collect(**t.engine->add_request(request({1, 2}, greedy(3)))).finish[0],
            FinishReason::kLength);
}

// A value that passes as a double but not as the float the sampler uses (it bypasses
// SamplingParams::validate here, as a future field might) fails its own request only.
TEST(EngineCore, ARowThatCannotBeSampledFailsOnlyItsRequest) {
  HashModelRunner runner(kVocab, 4096);
  KvCacheConfig kvc;
  kvc.block_size = 4;
  ASSERT_TRUE(runner.allocate_kv_cache(64, kvc).ok());
  EngineCoreConfig cfg;
  cfg.block_size = 4;
  cfg.num_kv_blocks = 64;
  EngineCore core(cfg, &runner);
  auto info = [](std::string id, double temperature) {
    auto r = std::make_shared<RequestInfo>();
    r->request_id = std::move(id);
    r->params.temperature = temperature;
    r->params.max_tokens = 3;
    r->max_tokens = 3;
    r->prompt_token_ids = {1, 2, 3};
    return r;
  };
  ASSERT_TRUE(core.add_request(info("good", 0.7)).ok());
  ASSERT_TRUE(core.add_request(info("bad", 1e300)).ok());  // inf as a float
  SchedulerEvents events;
  std::vector<std::pair<std::string, Status>> errors;
  std::map<std::string, int> tokens;
  std::map<std::string, FinishReason> finish;
  for (int i = 0; i < 10 && core.step(&events, &errors, {}); ++i) {
    for (const ChoiceEvent& ce : events.choices) {
      tokens[ce.request->request_id] += static_cast<int>(ce.new_token_ids.size());
      if (ce.finish_reason != FinishReason::kNone)
        finish[ce.request->request_id] = ce.finish_reason;
    }
    events.clear();
  }
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, "bad");
  EXPECT_NE(errors[0].second.message().find("temperature"), std::string::npos);
  EXPECT_EQ(finish["bad"], FinishReason::kError);
  EXPECT_EQ(tokens["bad"], 0);
  EXPECT_EQ(finish["good"], FinishReason::kLength);
  EXPECT_EQ(tokens["good"], 3);
  EXPECT_EQ(core.stats().num_failed_steps, 0);
}

TEST(Engine, RejectsBadInputWithSpecificErrors) {
  EngineConfig cfg;
  cfg.max_model_len = 32;
  cfg.max_num_seqs = 4;
  TestEngine t = make_engine(cfg);
  SamplingParams bad;
  bad.top_p = 0.0;
  auto r = t.engine->add_request(request({1, 2}, bad));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("top_p"), std::string::npos);
  r = t.engine->add_request(request({}, greedy(1)));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("empty"), std::string::npos);
  r = t.engine->add_request(request({1, kVocab}, greedy(1)));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("outside the vocabulary"), std::string::npos);
  r = t.engine->add_request(request({1, -3}, greedy(1)));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = t.engine->add_request(request(std::vector<int32_t>(32, 1), greedy(1)));
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  SamplingParams wide = greedy(1);
  wide.n = 5;
  EXPECT_EQ(t.engine->add_request(request({1}, wide)).status().code(),
            StatusCode::kInvalidArgument);
  SamplingParams bias = greedy(1);
  bias.logit_bias = {{kVocab, 1.0f}};
  EXPECT_EQ(t.engine->add_request(request({1}, bias)).status().code(),
            StatusCode::kInvalidArgument);
  GenerateRequest text;
  text.prompt = std::string("hello");
  EXPECT_EQ(t.engine->add_request(text).status().code(), StatusCode::kFailedPrecondition);
  // Duplicate live id.
  auto gate = std::make_shared<Gate>();
  TestEngine held = make_engine({}, false, [gate](const ForwardBatch& b) { return gate->hold(b); });
  ASSERT_TRUE(held.engine->add_request(request({1}, greedy(2), "same")).ok());
  EXPECT_EQ(held.engine->add_request(request({1}, greedy(2), "same")).status().code(),
            StatusCode::kInvalidArgument);
  gate->release();
}

TEST(Engine, MaxTokensIsCappedByTheContext) {
  EngineConfig cfg;
  cfg.max_model_len = 20;
  TestEngine t = make_engine(cfg);
  SamplingParams p = greedy(100);
  p.ignore_eos = true;
  Collected c = collect(**t.engine->add_request(request(std::vector<int32_t>(15, 2), p)));
  EXPECT_EQ(c.tokens[0].size(), 5u);
  EXPECT_EQ(c.finish[0], FinishReason::kLength);
}

TEST(Engine, RejectsConfigsThatCannotWork) {
  auto make = [](EngineConfig cfg) {
    EngineParts parts;
    parts.config = cfg;
    parts.runner = std::make_unique<HashModelRunner>(kVocab, 1024);
    return EngineFactory::create(std::move(parts));
  };
  EngineConfig c;
  c.max_model_len = 2048;  // > max_position_embeddings
  EXPECT_EQ(make(c).status().code(), StatusCode::kInvalidArgument);
  c = {};
  c.kv_cache_memory_bytes = 8 * 16 * 10;  // 9 usable blocks of 16 < 1024 tokens
  c.max_model_len = 1024;
  EXPECT_EQ(make(c).status().code(), StatusCode::kResourceExhausted);
  // Without an explicit max_model_len the engine serves the context that fits.
  c.max_model_len = 0;
  auto capped = make(c);
  ASSERT_TRUE(capped.ok()) << capped.status().to_string();
  EXPECT_EQ((*capped)->model_info().max_model_len, 9 * 16);
  c = {};
  c.scheduling_policy = "random";
  EXPECT_EQ(make(c).status().code(), StatusCode::kInvalidArgument);
  c = {};
  c.enable_chunked_prefill = false;
  c.max_num_batched_tokens = 100;
  EXPECT_EQ(make(c).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kite
