// KvCacheManager: per-sequence block tables over a BlockPool, with automatic prefix caching.
//
// The scheduler is its only user (engine thread). A sequence (one choice of a request) is
// known by an id; its block table covers its first num_blocks * block_size token slots.
//   - find_cached_prefix: the longest run of full, cached blocks that start the sequence,
//     leaving at least its last token to compute (its logits are needed).
//   - allocate: takes the hit's blocks, then new blocks so that `num_tokens` slots are backed.
//     All or nothing: when the free blocks do not suffice, nothing changes.
//   - cache_blocks: once tokens are computed, full blocks get their chained hash so later
//     sequences can reuse them.
//   - fork: an n > 1 choice shares its parent's full blocks (reference counts); the partially
//     filled last block is not shared: the child writes its own copy (see docs/engine.md).
//   - free: drops the sequence's references, last block first, so the blocks least likely to
//     be shared are the first evicted.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kite/status.h"
#include "kv_cache/block_hash.h"
#include "kv_cache/block_pool.h"

namespace kite {

struct PrefixHit {
  std::vector<int32_t> block_ids;  // cached blocks, in order
  int64_t num_tokens = 0;          // block_ids.size() * block_size
  int64_t num_queried_tokens = 0;  // tokens looked up (counted when allocate() takes the hit)
};

struct KvCacheStats {
  int64_t num_blocks = 0;       // usable blocks (block 0 excluded)
  int64_t num_free_blocks = 0;  // free, including evictable cached ones
  int64_t num_cached_blocks = 0;
  double usage = 0.0;
  int64_t prefix_cache_queries = 0;  // tokens looked up
  int64_t prefix_cache_hits = 0;     // tokens found
};

class KvCacheManager {
 public:
  // num_blocks counts block 0. REQUIRES: num_blocks >= 2, block_size >= 1.
  KvCacheManager(int64_t num_blocks, int block_size, bool enable_prefix_caching);

  int block_size() const { return block_size_; }
  bool prefix_caching() const { return enable_prefix_caching_; }
  int64_t blocks_for(int64_t num_tokens) const {
    return (num_tokens + block_size_ - 1) / block_size_;
  }

  // Longest cached prefix of `tokens` (the sequence's tokens so far) in whole blocks, at most
  // (tokens.size() - 1) tokens. Takes no references: pass the hit to allocate() in the same
  // step, which counts the lookup (tokens.size() queries, the hit's tokens as hits) when it
  // succeeds. REQUIRES: the sequence holds no blocks.
  PrefixHit find_cached_prefix(int64_t seq_id, std::span<const int32_t> tokens,
                               uint64_t cache_salt);

  // Backs the sequence's first `num_tokens` slots with blocks, taking `hit`'s blocks first
  // when given (a sequence that holds no blocks). Returns false, changing nothing, when the
  // free blocks do not suffice.
  bool allocate(int64_t seq_id, const PrefixHit* hit, int64_t num_tokens);
  // Blocks allocate() would need to back `num_tokens` slots for this sequence (0 if it has
  // them already).
  int64_t num_blocks_needed(int64_t seq_id, int64_t num_tokens) const;

  // Registers every full block among the first `num_computed_tokens` of `tokens` in the prefix
  // cache. REQUIRES: the sequence's block table covers them.
  void cache_blocks(int64_t seq_id, std::span<const int32_t> tokens, int64_t num_computed_tokens,
                    uint64_t cache_salt);

  // The child shares the parent's first `num_full_blocks` blocks. REQUIRES: the child holds
  // no blocks; the parent holds at least that many.
  void fork(int64_t parent_id, int64_t child_id, int64_t num_full_blocks);

  // Drops every block reference of the sequence (no-op for an unknown id).
  void free(int64_t seq_id);

  // The sequence's block table (empty for an unknown id).
  const std::vector<int32_t>& block_ids(int64_t seq_id) const;
  int64_t num_free_blocks() const { return pool_.num_free_blocks(); }
  int64_t num_usable_blocks() const { return pool_.num_blocks() - 1; }
  KvCacheStats stats() const;
  const BlockPool& pool() const { return pool_; }
  int64_t num_sequences() const { return static_cast<int64_t>(seqs_.size()); }

  // Pool invariants plus: every block's ref count equals the number of block tables holding
  // it. For tests.
  Status check_consistency() const;

 private:
  struct SeqBlocks {
    std::vector<int32_t> blocks;
    std::vector<BlockHash> hashes;  // chained hashes of the first full blocks
    int64_t num_cached = 0;         // leading blocks already offered to the cache
  };
  // Extends s.hashes to cover the first `num_full` full blocks of `tokens`.
  void extend_hashes(SeqBlocks& s, std::span<const int32_t> tokens, int64_t num_full,
                     uint64_t cache_salt) const;

  BlockPool pool_;
  int block_size_;
  bool enable_prefix_caching_;
  std::unordered_map<int64_t, SeqBlocks> seqs_;
  int64_t queries_ = 0;
  int64_t hits_ = 0;
};

}  // namespace kite
