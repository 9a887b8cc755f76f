// BlockPool: the KV blocks of the cache as metadata (the runner owns the memory).
//
// Block 0 is the null block: never handed out, never freed. Every other block is either
// referenced (ref_count > 0, held by sequences) or on the free list. The free list is also the
// LRU order of cached blocks: a block whose last reference goes is appended at the tail (most
// recently used) and keeps its prefix-cache hash; allocation pops from the head and evicts the
// popped block's hash. A cache hit on a free block takes it off the list.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kite/status.h"
#include "kv_cache/block_hash.h"

namespace kite {

class BlockPool {
 public:
  // num_blocks counts block 0. REQUIRES: num_blocks >= 2.
  BlockPool(int64_t num_blocks, bool enable_caching);

  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  // Blocks allocate() can hand out now (free, including evictable cached ones).
  int64_t num_free_blocks() const { return num_free_; }
  // Fraction of the usable blocks (all but block 0) that are referenced, [0, 1].
  double usage() const;
  // Blocks that hold a prefix-cache hash (referenced or free).
  int64_t num_cached_blocks() const { return static_cast<int64_t>(cached_.size()); }

  // Pops n blocks from the free-list head, each with ref_count 1, evicting their hashes.
  // REQUIRES: n <= num_free_blocks().
  void allocate(int64_t n, std::vector<int32_t>* out);
  // The block cached under `hash`, if any.
  std::optional<int32_t> lookup(const BlockHash& hash) const;
  // Adds a reference (a free block leaves the free list).
  void touch(int32_t block);
  // Drops a reference; at zero the block joins the free-list tail.
  void release(int32_t block);
  // Records that `block` (full, referenced) holds the tokens hashed by `hash`. No-op when
  // caching is off, the block already has a hash, or another block holds this hash.
  void cache(int32_t block, const BlockHash& hash);
  // Forgets every cached hash of a free block (e.g. after weights change). Returns false if
  // some cached block is still referenced (nothing changes then).
  bool reset_prefix_cache();

  int32_t ref_count(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref_count; }
  bool is_free(int32_t block) const { return blocks_[static_cast<size_t>(block)].in_free_list; }

  // Checks every invariant (free list <-> ref 0, hash map <-> block hashes, counts); a
  // message names the first broken one. For tests and debug builds.
  Status check_consistency() const;

 private:
  struct Block {
    int32_t ref_count = 0;
    int32_t prev = -1;  // free list links
    int32_t next = -1;
    bool in_free_list = false;
    bool has_hash = false;
    BlockHash hash;
  };
  void unlink(int32_t b);
  void push_back(int32_t b);
  void evict_hash(int32_t b);

  std::vector<Block> blocks_;
  int32_t head_ = -1;
  int32_t tail_ = -1;
  int64_t num_free_ = 0;
  bool enable_caching_;
  std::unordered_map<BlockHash, int32_t, BlockHashHasher> cached_;
};

}  // namespace kite
