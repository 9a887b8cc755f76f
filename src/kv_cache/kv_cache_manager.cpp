#include "kv_cache/kv_cache_manager.h"

#include <algorithm>
#include <string>

#include "core/check.h"

namespace kite {

KvCacheManager::KvCacheManager(int64_t num_blocks, int block_size, bool enable_prefix_caching)
    : pool_(num_blocks, enable_prefix_caching),
      block_size_(block_size),
      enable_prefix_caching_(enable_prefix_caching) {
  KITE_CHECK_GE(block_size, 1);
}

void KvCacheManager::extend_hashes(SeqBlocks& s, std::span<const int32_t> tokens, int64_t num_full,
                                   uint64_t cache_salt) const {
  const uint64_t salt_keys[1] = {cache_salt};
  while (static_cast<int64_t>(s.hashes.size()) < num_full) {
    const size_t i = s.hashes.size();
    const auto block_tokens =
        tokens.subspan(i * static_cast<size_t>(block_size_), static_cast<size_t>(block_size_));
    const BlockHash* parent = i == 0 ? nullptr : &s.hashes[i - 1];
    // The salt keys only the first block; later blocks inherit it through the chain.
    s.hashes.push_back(hash_block_tokens(parent, block_tokens,
                                         i == 0 && cache_salt != 0
                                             ? std::span<const uint64_t>(salt_keys)
                                             : std::span<const uint64_t>()));
  }
}

PrefixHit KvCacheManager::find_cached_prefix(int64_t seq_id, std::span<const int32_t> tokens,
                                             uint64_t cache_salt) {
  PrefixHit hit;
  if (!enable_prefix_caching_ || tokens.empty()) return hit;
  SeqBlocks& s = seqs_[seq_id];
  KITE_CHECK(s.blocks.empty()) << "prefix lookup for sequence " << seq_id << " holding blocks";
  // The last token is always computed: its logits are needed.
  const int64_t max_blocks = (static_cast<int64_t>(tokens.size()) - 1) / block_size_;
  extend_hashes(s, tokens, max_blocks, cache_salt);
  for (int64_t i = 0; i < max_blocks; ++i) {
    const std::optional<int32_t> b = pool_.lookup(s.hashes[static_cast<size_t>(i)]);
    if (!b) break;
    hit.block_ids.push_back(*b);
  }
  hit.num_tokens = static_cast<int64_t>(hit.block_ids.size()) * block_size_;
  hit.num_queried_tokens = static_cast<int64_t>(tokens.size());
  return hit;
}

int64_t KvCacheManager::num_blocks_needed(int64_t seq_id, int64_t num_tokens) const {
  auto it = seqs_.find(seq_id);
  const int64_t held = it == seqs_.end() ? 0 : static_cast<int64_t>(it->second.blocks.size());
  return std::max<int64_t>(0, blocks_for(num_tokens) - held);
}

bool KvCacheManager::allocate(int64_t seq_id, const PrefixHit* hit, int64_t num_tokens) {
  SeqBlocks& s = seqs_[seq_id];
  const int64_t hit_blocks = hit != nullptr ? static_cast<int64_t>(hit->block_ids.size()) : 0;
  if (hit_blocks > 0) KITE_CHECK(s.blocks.empty()) << "sequence " << seq_id;
  const int64_t have = static_cast<int64_t>(s.blocks.size()) + hit_blocks;
  const int64_t need_new = std::max<int64_t>(0, blocks_for(num_tokens) - have);
  // Hit blocks that sit on the free list stop being allocatable once taken.
  int64_t hit_from_free = 0;
  for (int64_t i = 0; i < hit_blocks; ++i) {
    if (pool_.is_free(hit->block_ids[static_cast<size_t>(i)])) ++hit_from_free;
  }
  if (need_new + hit_from_free > pool_.num_free_blocks()) {
    if (s.blocks.empty() && s.hashes.empty()) seqs_.erase(seq_id);
    return false;
  }
  for (int64_t i = 0; i < hit_blocks; ++i) {
    const int32_t b = hit->block_ids[static_cast<size_t>(i)];
    pool_.touch(b);
    s.blocks.push_back(b);
  }
  s.num_cached = std::max(s.num_cached, hit_blocks);
  pool_.allocate(need_new, &s.blocks);
  if (hit != nullptr) {
    queries_ += hit->num_queried_tokens;
    hits_ += hit->num_tokens;
  }
  return true;
}

void KvCacheManager::cache_blocks(int64_t seq_id, std::span<const int32_t> tokens,
                                  int64_t num_computed_tokens, uint64_t cache_salt) {
  if (!enable_prefix_caching_) return;
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  SeqBlocks& s = it->second;
  const int64_t num_full = num_computed_tokens / block_size_;
  KITE_CHECK_LE(num_full, static_cast<int64_t>(s.blocks.size())) << "sequence " << seq_id;
  if (num_full <= s.num_cached) return;
  extend_hashes(s, tokens, num_full, cache_salt);
  for (int64_t i = s.num_cached; i < num_full; ++i) {
    pool_.cache(s.blocks[static_cast<size_t>(i)], s.hashes[static_cast<size_t>(i)]);
  }
  s.num_cached = num_full;
}

void KvCacheManager::fork(int64_t parent_id, int64_t child_id, int64_t num_full_blocks) {
  auto pit = seqs_.find(parent_id);
  KITE_CHECK(pit != seqs_.end()) << "fork of unknown sequence " << parent_id;
  KITE_CHECK_LE(num_full_blocks, static_cast<int64_t>(pit->second.blocks.size()));
  const SeqBlocks parent = pit->second;  // copy: inserting the child may rehash the map
  SeqBlocks& child = seqs_[child_id];
  KITE_CHECK(child.blocks.empty()) << "fork into sequence " << child_id << " holding blocks";
  for (int64_t i = 0; i < num_full_blocks; ++i) {
    const int32_t b = parent.blocks[static_cast<size_t>(i)];
    pool_.touch(b);
    child.blocks.push_back(b);
  }
  const size_t hashes = std::min(parent.hashes.size(), static_cast<size_t>(num_full_blocks));
  child.hashes.assign(parent.hashes.begin(),
                      parent.hashes.begin() + static_cast<std::ptrdiff_t>(hashes));
  child.num_cached = std::min(parent.num_cached, num_full_blocks);
}

void KvCacheManager::free(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  const std::vector<int32_t>& blocks = it->second.blocks;
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) pool_.release(*b);
  seqs_.erase(it);
}

const std::vector<int32_t>& KvCacheManager::block_ids(int64_t seq_id) const {
  static const std::vector<int32_t> kNone;
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? kNone : it->second.blocks;
}

KvCacheStats KvCacheManager::stats() const {
  KvCacheStats st;
  st.num_blocks = pool_.num_blocks() - 1;
  st.num_free_blocks = pool_.num_free_blocks();
  st.num_cached_blocks = pool_.num_cached_blocks();
  st.usage = pool_.usage();
  st.prefix_cache_queries = queries_;
  st.prefix_cache_hits = hits_;
  return st;
}

Status KvCacheManager::check_consistency() const {
  KITE_RETURN_IF_ERROR(pool_.check_consistency());
  std::vector<int32_t> refs(static_cast<size_t>(pool_.num_blocks()), 0);
  for (const auto& [id, s] : seqs_) {
    for (int32_t b : s.blocks) {
      if (b <= 0 || b >= pool_.num_blocks()) {
        return internal_error("sequence " + std::to_string(id) + " holds bad block " +
                              std::to_string(b));
      }
      ++refs[static_cast<size_t>(b)];
    }
  }
  for (int32_t b = 1; b < pool_.num_blocks(); ++b) {
    if (refs[static_cast<size_t>(b)] != pool_.ref_count(b)) {
      return internal_error("block " + std::to_string(b) + " has ref count " +
                            std::to_string(pool_.ref_count(b)) + " but " +
                            std::to_string(refs[static_cast<size_t>(b)]) + " holders");
    }
  }
  return ok_status();
}

}  // namespace kite
