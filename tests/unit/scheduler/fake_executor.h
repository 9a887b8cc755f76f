// A model-free executor for scheduler tests. It keeps per-sequence state only from the
// SchedulerOutput diffs, simulates the paged KV memory (each slot holds a hash of the token
// prefix it was computed from) and "attends" by reading every cached slot through the block
// table, so a wrong block table, a bad prefix-cache hit or a block reused while still in use
// shows up as a KV mismatch. The next token is a hash of (choice seed, tokens): what a
// deterministic model with seeded sampling would produce.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "kv_cache/kv_cache_manager.h"
#include "runtime/model_step_output.h"
#include "sampling/sampling_batch_builder.h"
#include "scheduler/scheduler_output.h"

namespace kite::testing {

inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

// The fake model's next token for a choice with `seed` after `tokens` (vocab [0, vocab)).
// While the choice has fewer than min_tokens outputs, EOS (0) is never produced.
inline int32_t fake_next_token(uint64_t seed, const std::vector<int32_t>& tokens,
                               int64_t num_outputs, int64_t min_tokens, int32_t vocab) {
  uint64_t h = mix(seed, tokens.size());
  for (int32_t t : tokens) h = mix(h, static_cast<uint64_t>(t));
  int32_t tok = static_cast<int32_t>(h % static_cast<uint64_t>(vocab));
  if (tok == 0 && num_outputs < min_tokens) tok = 1;
  return tok;
}

class FakeExecutor {
 public:
  FakeExecutor(const KvCacheManager* kv, int64_t num_blocks, int32_t vocab)
      : kv_(kv), slots_(static_cast<size_t>(num_blocks * kv->block_size()), 0), vocab_(vocab) {}

  ModelStepOutput execute(const SchedulerOutput& out) {
    for (int64_t id : out.finished_seq_ids) state_.erase(id);
    for (int64_t id : out.preempted_seq_ids) state_.erase(id);
    for (const NewSequenceData& d : out.new_seqs) {
      EXPECT_EQ(state_.count(d.seq_id), 0u) << "new sequence " << d.seq_id << " already known";
      State& s = state_[d.seq_id];
      s.info = d.request;
      s.choice = d.choice;
      s.tokens = d.token_ids;
      s.blocks = d.block_ids;
      s.num_computed = d.num_computed_tokens;
    }
    for (const CachedSequenceData& d : out.cached_seqs) {
      auto it = state_.find(d.seq_id);
      if (it == state_.end()) {
        ADD_FAILURE() << "cached sequence " << d.seq_id << " unknown to the executor";
        continue;
      }
      it->second.blocks.insert(it->second.blocks.end(), d.new_block_ids.begin(),
                               d.new_block_ids.end());
      EXPECT_EQ(it->second.num_computed, d.num_computed_tokens) << "sequence " << d.seq_id;
    }
    ModelStepOutput result;
    // Write every scheduled token's KV first (as a forward pass does, layer by layer), then
    // attend and sample.
    for (const ScheduledSequence& sc : out.scheduled) {
      State& s = state_.at(sc.seq_id);
      EXPECT_EQ(s.blocks, kv_->block_ids(sc.seq_id)) << "block table diff of " << sc.seq_id;
      const int64_t end = s.num_computed + sc.num_new_tokens;
      EXPECT_LE(end, static_cast<int64_t>(s.tokens.size()));
      EXPECT_LE(kv_->blocks_for(end), static_cast<int64_t>(s.blocks.size()));
      for (int64_t pos = s.num_computed; pos < end; ++pos)
        slots_[slot(s, pos)] = prefix_hash(s, pos);
    }
    for (const ScheduledSequence& sc : out.scheduled) {
      State& s = state_.at(sc.seq_id);
      const int64_t end = s.num_computed + sc.num_new_tokens;
      for (int64_t pos = 0; pos < end; ++pos) {
        if (slots_[slot(s, pos)] != prefix_hash(s, pos)) {
          ADD_FAILURE() << "sequence " << sc.seq_id << " reads stale KV at position " << pos;
          ++kv_mismatches;
          break;
        }
      }
      s.num_computed = end;
      if (sc.num_samples == 0) continue;
      EXPECT_EQ(end, static_cast<int64_t>(s.tokens.size()));
      SequenceStepOutput r;
      r.seq_id = sc.seq_id;
      const int64_t outputs = static_cast<int64_t>(s.tokens.size()) - s.info->num_prompt_tokens();
      for (int c = 0; c < sc.num_samples; ++c) {
        const int choice = sc.num_samples > 1 ? c : s.choice;
        r.token_ids.push_back(fake_next_token(choice_seed(s.info->seed, choice), s.tokens, outputs,
                                              s.info->params.min_tokens, vocab_));
      }
      s.tokens.push_back(r.token_ids[0]);
      result.seqs.push_back(std::move(r));
    }
    return result;
  }

  size_t num_states() const { return state_.size(); }
  int64_t kv_mismatches = 0;

 private:
  struct State {
    std::shared_ptr<const RequestInfo> info;
    int choice = 0;
    std::vector<int32_t> tokens;
    std::vector<int32_t> blocks;
    int64_t num_computed = 0;
    std::vector<uint64_t> hashes;  // prefix hash per position (tokens never change)
  };
  size_t slot(const State& s, int64_t pos) const {
    const int bs = kv_->block_size();
    return static_cast<size_t>(s.blocks[static_cast<size_t>(pos / bs)]) * static_cast<size_t>(bs) +
           static_cast<size_t>(pos % bs);
  }
  // What a KV entry at `pos` depends on: every token up to it (and the cache salt).
  uint64_t prefix_hash(State& s, int64_t pos) const {
    while (static_cast<int64_t>(s.hashes.size()) <= pos) {
      const uint64_t prev = s.hashes.empty() ? mix(s.info->cache_salt, 17) : s.hashes.back();
      s.hashes.push_back(mix(prev, static_cast<uint64_t>(s.tokens[s.hashes.size()])));
    }
    return s.hashes[static_cast<size_t>(pos)];
  }

  const KvCacheManager* kv_;
  std::vector<uint64_t> slots_;
  int32_t vocab_;
  std::unordered_map<int64_t, State> state_;
};

}  // namespace kite::testing
