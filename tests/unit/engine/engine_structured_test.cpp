// Structured outputs through the engine on the deterministic weightless model (HashModelRunner,
// 64 tokens: 0 = EOS, 1..63 = printable characters), with the executor both synchronous (the CPU
// path: bitmasks inline) and asynchronous (the CUDA path: a device thread runs the forward while
// bitmask threads fill the masks): every output matches its regex / choice, n > 1 choices each
// do, a KV cache too small for the batch preempts and resumes requests mid-grammar, requests
// without a constraint are unaffected, max_tokens running out gives "length", and the engine's
// counters count the compilations and masks.
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "engine/engine_impl.h"
#include "engine_test_util.h"
#include "testing/hash_model_runner.h"

namespace kite {
namespace {

using testing::collect;
using testing::Collected;
using testing::HashModelRunner;

constexpr int64_t kVocab = 64;

// Token t >= 1 is the character kChars[t - 1].
const std::string kChars = "abcdefghijklmnopqrstuvwxyz0123456789{}[]\",: -_ABCDEFGHIJKLMNOPQRS";

std::string text_of(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t t : ids) {
    if (t > 0) s += kChars[static_cast<size_t>(t - 1)];
  }
  return s;
}

std::unique_ptr<Engine> make_engine(bool async, int64_t kv_bytes,
                                    std::function<Status(const ForwardBatch&)> hook = {}) {
  EngineParts parts;
  parts.config.model = "hash-model";
  parts.config.kv_cache_memory_bytes = kv_bytes;
  parts.config.max_model_len = 256;
  auto runner = std::make_unique<HashModelRunner>(kVocab, 4096);
  runner->before_forward = std::move(hook);
  parts.runner = std::move(runner);
  parts.async_execution = async;
  parts.make_grammar_compiler = [] {
    structured::StructuredVocab v;
    v.encoded.push_back("");
    for (char c : kChars.substr(0, kVocab - 1)) v.encoded.emplace_back(1, c);
    v.model_vocab_size = kVocab;
    v.stop_token_ids = {0};
    return structured::GrammarCompiler::create(v, {});
  };
  auto e = EngineFactory::create(std::move(parts));
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

SamplingParams constrained(StructuredOutputs so, int n, uint64_t seed) {
  SamplingParams p;
  p.temperature = 1.0;
  p.seed = seed;
  p.n = n;
  p.max_tokens = 64;
  p.structured_outputs = std::move(so);
  return p;
}

class StructuredEngine : public ::testing::TestWithParam<bool> {};

TEST_P(StructuredEngine, OutputsFollowTheirGrammarUnderPreemption) {
  // 8 bytes per token in HashModelRunner: 40 blocks of 16 tokens, far fewer than the batch.
  // The first forward waits until every request is queued, so they compete for the 40 blocks
  // together (preemption does not depend on how fast the engine thread runs).
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    void release() {
      {
        std::lock_guard<std::mutex> lock(mu);
        open = true;
      }
      cv.notify_all();
    }
  };
  auto gate = std::make_shared<Gate>();
  auto engine = make_engine(GetParam(), 8 * 16 * 41, [gate](const ForwardBatch&) {
    std::unique_lock<std::mutex> lock(gate->mu);
    gate->cv.wait(lock, [&] { return gate->open; });
    return ok_status();
  });
  // Opens the gate on every way out (a failed ASSERT too), before the engine shuts down.
  struct Release {
    std::shared_ptr<Gate> gate;
    ~Release() { gate->release(); }
  } release{gate};
  ASSERT_NE(engine, nullptr);
  const std::vector<std::string> regexes = {"[a-c]{3}[0-9]{2}", "(ab|cd){2,5}x", "-?[1-9][0-9]?",
                                            "\"[a-e]{1,8}\""};
  struct Sent {
    std::shared_ptr<RequestStream> stream;
    std::string regex;
    std::vector<std::string> choices;
    int n = 1;
  };
  std::vector<Sent> sent;
  for (int i = 0; i < 24; ++i) {
    GenerateRequest r;
    r.prompt = std::vector<int32_t>(static_cast<size_t>(20 + i % 7), 1 + i % 60);
    Sent s;
    StructuredOutputs so;
    if (i % 3 == 2) {
      s.choices = {"yes", "no", "maybe so"};
      so.choice = s.choices;
    } else {
      s.regex = regexes[static_cast<size_t>(i) % regexes.size()];
      so.regex = s.regex;
    }
    s.n = i % 4 == 0 ? 3 : 1;
    r.params = constrained(so, s.n, static_cast<uint64_t>(i));
    auto stream = engine->add_request(std::move(r));
    ASSERT_TRUE(stream.ok()) << stream.status().to_string();
    s.stream = *stream;
    sent.push_back(std::move(s));
  }
  GenerateRequest plain;
  plain.prompt = std::vector<int32_t>(30, 7);
  plain.params.temperature = 0;
  plain.params.max_tokens = 20;
  plain.params.ignore_eos = true;
  auto plain_stream = engine->add_request(plain);
  ASSERT_TRUE(plain_stream.ok());
  gate->release();
  for (Sent& s : sent) {
    Collected c = collect(*s.stream, s.n);
    for (int k = 0; k < s.n; ++k) {
      const std::string text = text_of(c.tokens[static_cast<size_t>(k)]);
      EXPECT_EQ(c.finish[static_cast<size_t>(k)], FinishReason::kStop) << text;
      if (s.choices.empty()) {
        EXPECT_TRUE(std::regex_match(text, std::regex(s.regex))) << s.regex << " vs " << text;
      } else {
        EXPECT_NE(std::find(s.choices.begin(), s.choices.end(), text), s.choices.end()) << text;
      }
    }
  }
  EXPECT_EQ(collect(**plain_stream).tokens[0].size(), 20u);  // unconstrained, untouched
  const EngineStats st = engine->stats();
  EXPECT_GT(st.num_preemptions, 0);
  EXPECT_EQ(st.grammar_compiles_total, 5);  // 4 regexes + 1 choice list, each compiled once
  EXPECT_GT(st.grammar_cache_hits_total, 0);
  EXPECT_GT(st.grammar_masks_total, 0);
  EXPECT_GT(st.grammar_mask_steps_total, 0);
}

TEST_P(StructuredEngine, LengthBadSpecsAndMinTokens) {
  auto engine = make_engine(GetParam(), 0);
  ASSERT_NE(engine, nullptr);
  StructuredOutputs long_one;
  long_one.regex = "[a-z]{50}";
  SamplingParams p = constrained(long_one, 1, 1);
  p.max_tokens = 7;
  GenerateRequest r;
  r.prompt = std::vector<int32_t>{1, 2, 3};
  r.params = p;
  Collected c = collect(**engine->add_request(r));
  EXPECT_EQ(c.finish[0], FinishReason::kLength);
  EXPECT_EQ(c.tokens[0].size(), 7u);
  EXPECT_TRUE(std::regex_match(text_of(c.tokens[0]), std::regex("[a-z]{7}")));

  StructuredOutputs bad;
  bad.regex = "(unclosed";
  r.params = constrained(bad, 1, 1);
  auto refused = engine->add_request(r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("regex"), std::string::npos);

  r.params = constrained(long_one, 1, 1);
  r.params.min_tokens = 2;
  EXPECT_EQ(engine->add_request(r).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(SyncAndAsync, StructuredEngine, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Async" : "Sync"; });

}  // namespace
}  // namespace kite
