// Property tests of the scheduler and KV cache manager on random request streams, driven by a
// model-free executor (fake_executor.h): arrivals over time, mixed prompt lengths with shared
// prefixes, n > 1, aborts, stop-string finishes, and a KV cache small enough to force
// preemption. After every step the block pool is consistent and every block's ref count equals
// its holders, and every step with work left schedules tokens (no stall); at the end every request
// has ended exactly once (every choice too), no block is held, and every choice that ran to EOS or
// its length limit produced exactly the tokens it produces alone (so preemption and recompute lose
// nothing).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fake_executor.h"
#include "scheduler/scheduler.h"

namespace kite {
namespace {

using testing::fake_next_token;
using testing::FakeExecutor;

constexpr int32_t kVocab = 40;  // token 0 is EOS: about one output in 40 stops

struct StreamConfig {
  uint32_t seed = 1;
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
  bool prefix_caching = true;
  bool chunked_prefill = true;
  int64_t num_blocks = 64;  // counts block 0
  int block_size = 4;
  int max_num_seqs = 8;
  int64_t max_num_batched_tokens = 48;
  int64_t max_model_len = 160;
  int num_requests = 250;
};

struct ChoiceRecord {
  std::vector<int32_t> tokens;
  int finishes = 0;
  FinishReason reason = FinishReason::kNone;
};

struct RequestRecord {
  std::shared_ptr<const RequestInfo> info;
  std::vector<ChoiceRecord> choices;
  int finished_events = 0;
  int64_t added_step = 0;
};

// The tokens a choice produces alone (no batching, no preemption).
std::vector<int32_t> oracle(const RequestInfo& info, int choice, FinishReason* reason) {
  std::vector<int32_t> tokens = info.prompt_token_ids;
  std::vector<int32_t> out;
  for (;;) {
    const int32_t t =
        fake_next_token(choice_seed(info.seed, choice), tokens, static_cast<int64_t>(out.size()),
                        info.params.min_tokens, kVocab);
    tokens.push_back(t);
    out.push_back(t);
    const bool may_stop = static_cast<int64_t>(out.size()) > info.params.min_tokens;
    if (may_stop &&
        ((!info.params.ignore_eos && t == 0) ||
         std::count(info.params.stop_token_ids.begin(), info.params.stop_token_ids.end(), t) > 0)) {
      *reason = FinishReason::kStop;
      return out;
    }
    if (static_cast<int64_t>(out.size()) >= info.max_tokens) {
      *reason = FinishReason::kLength;
      return out;
    }
  }
}

void run_stream(const StreamConfig& cfg) {
  SCOPED_TRACE(::testing::Message() << "stream seed " << cfg.seed);
  std::mt19937 rng(cfg.seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };

  KvCacheManager kv(cfg.num_blocks, cfg.block_size, cfg.prefix_caching);
  SchedulerConfig sc;
  sc.max_num_seqs = cfg.max_num_seqs;
  sc.max_num_batched_tokens = cfg.max_num_batched_tokens;
  sc.max_model_len = cfg.max_model_len;
  sc.enable_chunked_prefill = cfg.chunked_prefill;
  sc.policy = cfg.policy;
  ASSERT_TRUE(sc.validate().ok()) << sc.validate().to_string();
  Scheduler sched(sc, &kv);
  FakeExecutor exec(&kv, cfg.num_blocks, kVocab);

  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(uniform(8, 60)));
    for (int32_t& t : p) t = uniform(1, kVocab - 1);
    prefixes.push_back(p);
  }
  std::map<std::string, RequestRecord> records;
  std::vector<std::string> live;
  int added = 0;
  int64_t step = 0;
  const int64_t kMaxSteps = 40000;
  SchedulerEvents events;
  int last_admitted = -1;
  int64_t max_latency_steps = 0;  // arrival to finish, over all requests
  auto apply_events = [&]() {
    for (const ChoiceEvent& ev : events.choices) {
      RequestRecord& rec = records.at(ev.request->request_id);
      ChoiceRecord& c = rec.choices.at(static_cast<size_t>(ev.choice));
      EXPECT_EQ(c.finishes, 0) << "choice got news after finishing";
      c.tokens.insert(c.tokens.end(), ev.new_token_ids.begin(), ev.new_token_ids.end());
      if (ev.finish_reason != FinishReason::kNone) {
        ++c.finishes;
        c.reason = ev.finish_reason;
      }
    }
    for (const auto& [info, cached] : events.first_scheduled) {
      // FCFS admits requests in arrival order (the waiting queue's head blocks the rest).
      const int index = std::stoi(info->request_id.substr(1));
      if (cfg.policy == SchedulingPolicy::kFcfs) {
        EXPECT_GT(index, last_admitted) << "request admitted out of arrival order";
      }
      last_admitted = std::max(last_admitted, index);
    }
    for (const auto& f : events.finished) {
      RequestRecord& rec = records.at(f.request->request_id);
      ++rec.finished_events;
      max_latency_steps = std::max(max_latency_steps, step - rec.added_step);
      for (const ChoiceRecord& c : rec.choices) EXPECT_EQ(c.finishes, 1);
      live.erase(std::find(live.begin(), live.end(), f.request->request_id));
    }
    events.clear();
  };

  int64_t max_prompt = cfg.max_model_len - 1;
  while ((added < cfg.num_requests || sched.has_unfinished()) && step < kMaxSteps) {
    // Arrivals: bursts and gaps.
    const int arrivals = chance(0.3) ? uniform(1, 4) : 0;
    for (int a = 0; a < arrivals && added < cfg.num_requests; ++a, ++added) {
      auto info = std::make_shared<RequestInfo>();
      info->request_id = std::to_string(added);
      info->request_id.insert(0, 1, 'r');
      std::vector<int32_t> prompt;
      if (chance(0.5)) prompt = prefixes[static_cast<size_t>(uniform(0, 3))];
      const int extra = chance(0.2) ? uniform(20, 100) : uniform(prompt.empty() ? 1 : 0, 12);
      for (int i = 0; i < extra; ++i) prompt.push_back(uniform(1, kVocab - 1));
      if (prompt.empty()) prompt.push_back(1);
      if (static_cast<int64_t>(prompt.size()) > max_prompt)
        prompt.resize(static_cast<size_t>(max_prompt));
      info->prompt_token_ids = prompt;
      info->eos_token_ids = {0};
      info->params.n = chance(0.2) ? uniform(2, 3) : 1;
      info->params.max_tokens = uniform(1, 40);
      info->params.min_tokens = chance(0.1) ? std::min<int64_t>(3, info->params.max_tokens) : 0;
      info->params.ignore_eos = chance(0.1);
      if (chance(0.1)) info->params.stop_token_ids = {7};
      info->max_tokens = std::min<int64_t>(info->params.max_tokens,
                                           cfg.max_model_len - static_cast<int64_t>(prompt.size()));
      info->seed = rng();
      info->priority = uniform(0, 3);
      info->cache_salt = chance(0.1) ? 99 : 0;
      ASSERT_TRUE(sched.add_request(info).ok());
      RequestRecord rec;
      rec.info = info;
      rec.choices.resize(static_cast<size_t>(info->n()));
      rec.added_step = step;
      records.emplace(info->request_id, std::move(rec));
      live.push_back(info->request_id);
    }
    // Aborts (client disconnects) and stop-string finishes.
    if (!live.empty() && chance(0.02)) {
      sched.finish_request(live[static_cast<size_t>(uniform(0, static_cast<int>(live.size()) - 1))],
                           FinishReason::kAbort, &events);
    }
    if (!live.empty() && chance(0.02)) {
      const std::string& id =
          live[static_cast<size_t>(uniform(0, static_cast<int>(live.size()) - 1))];
      sched.finish_choice(id, uniform(0, records.at(id).info->n() - 1), FinishReason::kStop,
                          std::string("x"), &events);
    }
    apply_events();

    const bool had_work = sched.has_unfinished();
    const SchedulerOutput out = sched.schedule();
    EXPECT_LE(out.total_num_scheduled_tokens, cfg.max_num_batched_tokens);
    // No step stalls while work is left: KV pressure preempts, it never deadlocks.
    if (had_work) {
      EXPECT_GT(out.total_num_scheduled_tokens, 0) << "step " << step << " scheduled nothing";
    }
    EXPECT_LE(sched.stats().num_running_seqs, cfg.max_num_seqs);
    const ModelStepOutput result = exec.execute(out);
    sched.update(out, result, &events);
    apply_events();
    const Status consistent = kv.check_consistency();
    ASSERT_TRUE(consistent.ok()) << "step " << step << ": " << consistent.to_string();
    ++step;
  }
  ASSERT_LT(step, kMaxSteps) << "requests starved: " << sched.stats().num_requests << " left";
  EXPECT_EQ(exec.kv_mismatches, 0);

  // Nothing leaks: every block is free again, no sequence holds any.
  EXPECT_EQ(kv.num_free_blocks(), kv.num_usable_blocks());
  EXPECT_EQ(kv.num_sequences(), 0);
  EXPECT_TRUE(kv.check_consistency().ok());
  for (int32_t b = 1; b < cfg.num_blocks; ++b) EXPECT_EQ(kv.pool().ref_count(b), 0);

  int compared = 0;
  for (const auto& [id, rec] : records) {
    EXPECT_EQ(rec.finished_events, 1) << id;
    for (size_t c = 0; c < rec.choices.size(); ++c) {
      const ChoiceRecord& ch = rec.choices[c];
      EXPECT_EQ(ch.finishes, 1) << id << " choice " << c;
      FinishReason want_reason;
      const std::vector<int32_t> want = oracle(*rec.info, static_cast<int>(c), &want_reason);
      if (ch.reason == FinishReason::kStop || ch.reason == FinishReason::kLength) {
        if (ch.tokens.size() == want.size() || ch.reason != FinishReason::kStop) {
          EXPECT_EQ(ch.tokens, want) << id << " choice " << c;
          EXPECT_EQ(ch.reason, want_reason) << id << " choice " << c;
          ++compared;
          continue;
        }
      }
      // Aborted or stopped early (stop string): a prefix of what it would have produced.
      ASSERT_LE(ch.tokens.size(), want.size()) << id;
      EXPECT_TRUE(std::equal(ch.tokens.begin(), ch.tokens.end(), want.begin())) << id;
    }
  }
  EXPECT_GT(compared, cfg.num_requests / 2);
  std::printf(
      "stream %u: %lld steps, %lld preemptions, prefix hits %lld / %lld tokens, longest "
      "request %lld steps\n",
      cfg.seed, static_cast<long long>(step), static_cast<long long>(sched.stats().num_preemptions),
      static_cast<long long>(kv.stats().prefix_cache_hits),
      static_cast<long long>(kv.stats().prefix_cache_queries),
      static_cast<long long>(max_latency_steps));
  // The stream must exercise what it claims to.
  EXPECT_GT(sched.stats().num_preemptions, 0);
  if (cfg.prefix_caching) {
    EXPECT_GT(kv.stats().prefix_cache_hits, 0);
  }
}

TEST(SchedulerProperty, FcfsWithPrefixCaching) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    StreamConfig cfg;
    cfg.seed = seed;
    run_stream(cfg);
  }
}

TEST(SchedulerProperty, FcfsWithoutPrefixCaching) {
  for (uint32_t seed = 11; seed <= 13; ++seed) {
    StreamConfig cfg;
    cfg.seed = seed;
    cfg.prefix_caching = false;
    run_stream(cfg);
  }
}

TEST(SchedulerProperty, PriorityPolicy) {
  for (uint32_t seed = 21; seed <= 24; ++seed) {
    StreamConfig cfg;
    cfg.seed = seed;
    cfg.policy = SchedulingPolicy::kPriority;
    run_stream(cfg);
  }
}

TEST(SchedulerProperty, NoChunkedPrefill) {
  for (uint32_t seed = 31; seed <= 33; ++seed) {
    StreamConfig cfg;
    cfg.seed = seed;
    cfg.chunked_prefill = false;
    cfg.max_num_batched_tokens = cfg.max_model_len;
    run_stream(cfg);
  }
}

TEST(SchedulerProperty, BlockSizeOneAndSixteen) {
  StreamConfig a;
  a.seed = 41;
  a.block_size = 1;
  a.num_blocks = 200;
  run_stream(a);
  StreamConfig b;
  b.seed = 42;
  b.block_size = 16;
  b.num_blocks = 16;
  b.max_model_len = 200;
  run_stream(b);
}

}  // namespace
}  // namespace kite
