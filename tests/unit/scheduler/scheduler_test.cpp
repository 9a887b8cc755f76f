// Focused scheduler cases: budget and chunking, admission limits, preemption order, fork of
// n > 1 choices, limits on requests.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "fake_executor.h"

namespace kite {
namespace {

// Prompts start at a token derived from the id, so different requests share no prefix.
std::shared_ptr<RequestInfo> make_request(const std::string& id, int prompt_len, int max_tokens,
                                          int n = 1) {
  auto info = std::make_shared<RequestInfo>();
  info->request_id = id;
  info->prompt_token_ids.resize(static_cast<size_t>(prompt_len));
  std::iota(info->prompt_token_ids.begin(), info->prompt_token_ids.end(),
            static_cast<int32_t>(std::hash<std::string>()(id) % 500));
  info->params.n = n;
  info->params.max_tokens = max_tokens;
  info->max_tokens = max_tokens;
  info->params.ignore_eos = true;
  info->eos_token_ids = {0};
  return info;
}

struct Harness {
  explicit Harness(SchedulerConfig cfg, int64_t num_blocks = 100, int block_size = 4,
                   bool caching = true)
      : kv(num_blocks, block_size, caching), sched(cfg, &kv), exec(&kv, num_blocks, 1000) {}
  SchedulerOutput step() {
    SchedulerOutput out = sched.schedule();
    sched.update(out, exec.execute(out), &events);
    return out;
  }
  KvCacheManager kv;
  Scheduler sched;
  testing::FakeExecutor exec;
  SchedulerEvents events;
};

SchedulerConfig config(int64_t budget, int max_seqs = 8, int64_t max_len = 256) {
  SchedulerConfig c;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.max_model_len = max_len;
  return c;
}

TEST(Scheduler, ChunksLongPromptsAndServesRunningFirst) {
  Harness h(config(16));
  ASSERT_TRUE(h.sched.add_request(make_request("a", 40, 3)).ok());
  ASSERT_TRUE(h.sched.add_request(make_request("b", 5, 3)).ok());
  SchedulerOutput o = h.step();
  ASSERT_EQ(o.scheduled.size(), 1u);  // a takes the whole budget
  EXPECT_EQ(o.scheduled[0].num_new_tokens, 16);
  EXPECT_EQ(o.scheduled[0].num_samples, 0);
  o = h.step();
  EXPECT_EQ(o.scheduled[0].num_new_tokens, 16);
  o = h.step();  // a's last 8 tokens, then b's 5 in the remaining budget
  ASSERT_EQ(o.scheduled.size(), 2u);
  EXPECT_EQ(o.scheduled[0].num_new_tokens, 8);
  EXPECT_EQ(o.scheduled[0].num_samples, 1);
  EXPECT_EQ(o.scheduled[1].num_new_tokens, 5);
  EXPECT_EQ(o.new_seqs.size(), 1u);  // b is new to the executor; a sends a diff
  EXPECT_EQ(o.cached_seqs.size(), 1u);
  o = h.step();  // two decodes
  ASSERT_EQ(o.scheduled.size(), 2u);
  EXPECT_EQ(o.total_num_scheduled_tokens, 2);
}

TEST(Scheduler, RejectsBadRequests) {
  Harness h(config(64, 4, 32));
  EXPECT_EQ(h.sched.add_request(make_request("long", 32, 1)).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(h.sched.add_request(make_request("empty", 0, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h.sched.add_request(make_request("wide", 4, 1, 5)).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(h.sched.add_request(make_request("dup", 4, 1)).ok());
  EXPECT_EQ(h.sched.add_request(make_request("dup", 4, 1)).code(), StatusCode::kInvalidArgument);
  SchedulerConfig bad = config(16, 4, 32);
  bad.enable_chunked_prefill = false;
  EXPECT_FALSE(bad.validate().ok());
}

TEST(Scheduler, MaxNumSeqsCountsEveryChoice) {
  Harness h(config(256, 3));
  ASSERT_TRUE(h.sched.add_request(make_request("a", 4, 5, 2)).ok());
  ASSERT_TRUE(h.sched.add_request(make_request("b", 4, 5, 2)).ok());
  SchedulerOutput o = h.step();
  ASSERT_EQ(o.scheduled.size(), 1u);  // b's two choices do not fit beside a's two
  EXPECT_EQ(o.scheduled[0].num_samples, 2);
  o = h.step();
  EXPECT_EQ(o.scheduled.size(), 2u);  // a's two choices decode
  EXPECT_EQ(h.sched.stats().num_running_seqs, 2);
}

TEST(Scheduler, ForkSharesPromptBlocksAndRecomputesThePartialOne) {
  Harness h(config(256));
  ASSERT_TRUE(h.sched.add_request(make_request("a", 10, 4, 3)).ok());
  SchedulerOutput o = h.step();
  ASSERT_EQ(o.scheduled[0].num_samples, 3);
  // Each choice got its first token.
  int first_tokens = 0;
  for (const ChoiceEvent& ev : h.events.choices)
    first_tokens += static_cast<int>(ev.new_token_ids.size());
  EXPECT_EQ(first_tokens, 3);
  EXPECT_EQ(h.sched.stats().num_running_seqs, 3);
  const KvCacheStats before = h.kv.stats();
  EXPECT_EQ(before.num_blocks - before.num_free_blocks, 3);  // parent: 3 blocks, children share 2
  o = h.step();
  ASSERT_EQ(o.scheduled.size(), 3u);
  EXPECT_EQ(o.scheduled[0].num_new_tokens, 1);  // the parent decodes
  EXPECT_EQ(o.scheduled[1].num_new_tokens, 3);  // children: 2 prompt tokens + their token
  EXPECT_EQ(o.scheduled[2].num_new_tokens, 3);
  EXPECT_EQ(o.new_seqs.size(), 2u);
  EXPECT_EQ(h.kv.stats().num_blocks - h.kv.stats().num_free_blocks, 5);
  EXPECT_EQ(h.exec.kv_mismatches, 0);
}

TEST(Scheduler, PreemptsTheNewestAndRequeuesItFirst) {
  // 6 usable blocks of 4 tokens.
  Harness h(config(64, 8, 24), 7, 4);
  ASSERT_TRUE(h.sched.add_request(make_request("old", 8, 12)).ok());
  ASSERT_TRUE(h.sched.add_request(make_request("new", 8, 12)).ok());
  ASSERT_TRUE(h.sched.add_request(make_request("later", 4, 1)).ok());
  int64_t preempted_at = -1;
  for (int i = 0; i < 40 && h.sched.has_unfinished(); ++i) {
    SchedulerOutput o = h.step();
    if (!o.preempted_seq_ids.empty() && preempted_at < 0) {
      preempted_at = i;
      EXPECT_EQ(h.sched.stats().num_running_seqs, 1);
      // The victim is "new" (admitted last); it waits ahead of "later".
      SchedulerOutput next = h.sched.schedule();
      h.sched.update(next, h.exec.execute(next), &h.events);
    }
  }
  EXPECT_GE(preempted_at, 0);
  EXPECT_FALSE(h.sched.has_unfinished());
  EXPECT_EQ(h.kv.num_free_blocks(), 6);
  EXPECT_EQ(h.exec.kv_mismatches, 0);
}

TEST(Scheduler, PriorityPolicyAdmitsLowerValuesFirst) {
  SchedulerConfig c = config(4, 1);
  c.policy = SchedulingPolicy::kPriority;
  Harness h(c);
  auto lo = make_request("background", 4, 1);
  lo->priority = 5;
  auto hi = make_request("urgent", 4, 1);
  hi->priority = -1;
  ASSERT_TRUE(h.sched.add_request(lo).ok());
  ASSERT_TRUE(h.sched.add_request(hi).ok());
  h.step();
  ASSERT_EQ(h.events.first_scheduled.size(), 1u);
  EXPECT_EQ(h.events.first_scheduled[0].first->request_id, "urgent");
}

TEST(Scheduler, AbortEndsEveryChoiceOnce) {
  Harness h(config(256));
  ASSERT_TRUE(h.sched.add_request(make_request("a", 6, 10, 3)).ok());
  h.sched.finish_request("a", FinishReason::kAbort, &h.events);
  ASSERT_EQ(h.events.finished.size(), 1u);
  int finishes = 0;
  for (const ChoiceEvent& ev : h.events.choices) {
    finishes += ev.finish_reason == FinishReason::kAbort ? 1 : 0;
  }
  EXPECT_EQ(finishes, 3);
  h.sched.finish_request("a", FinishReason::kAbort, &h.events);  // no-op
  EXPECT_EQ(h.events.finished.size(), 1u);
  EXPECT_FALSE(h.sched.has_unfinished());
  EXPECT_EQ(h.kv.num_sequences(), 0);
}

}  // namespace
}  // namespace kite
