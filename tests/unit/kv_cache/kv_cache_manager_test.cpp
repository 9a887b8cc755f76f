#include "kv_cache/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace kite {
namespace {

std::vector<int32_t> iota_tokens(int n, int start = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

TEST(KvCacheManager, AllocatesWholeBlocksAllOrNothing) {
  KvCacheManager kv(/*num_blocks=*/5, /*block_size=*/4, true);
  EXPECT_TRUE(kv.allocate(1, nullptr, 5));  // 2 blocks
  EXPECT_EQ(kv.block_ids(1).size(), 2u);
  EXPECT_TRUE(kv.allocate(1, nullptr, 8));  // still 2
  EXPECT_EQ(kv.block_ids(1).size(), 2u);
  EXPECT_EQ(kv.num_blocks_needed(2, 9), 3);
  EXPECT_FALSE(kv.allocate(2, nullptr, 9));  // needs 3, 2 free
  EXPECT_TRUE(kv.block_ids(2).empty());
  EXPECT_EQ(kv.num_free_blocks(), 2);
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.num_free_blocks(), 4);
  EXPECT_EQ(kv.num_sequences(), 0);
  EXPECT_TRUE(kv.check_consistency().ok());
}

TEST(KvCacheManager, PrefixHitReusesFullBlocksAndLeavesTheLastToken) {
  KvCacheManager kv(20, 4, true);
  const std::vector<int32_t> a = iota_tokens(10);  // blocks [0,4) [4,8) full, [8,10) partial
  ASSERT_TRUE(kv.allocate(1, nullptr, 10));
  kv.cache_blocks(1, a, 10, 0);
  const std::vector<int32_t> a_blocks = kv.block_ids(1);

  // Same 8-token prefix, different tail: two full blocks hit.
  std::vector<int32_t> b = a;
  b.resize(13);
  b[9] = 7;
  PrefixHit hit = kv.find_cached_prefix(2, b, 0);
  EXPECT_EQ(hit.num_tokens, 8);
  EXPECT_EQ(hit.block_ids, (std::vector<int32_t>{a_blocks[0], a_blocks[1]}));
  ASSERT_TRUE(kv.allocate(2, &hit, 13));
  EXPECT_EQ(kv.block_ids(2).size(), 4u);
  EXPECT_EQ(kv.pool().ref_count(a_blocks[0]), 2);
  EXPECT_EQ(kv.stats().prefix_cache_queries, 13);
  EXPECT_EQ(kv.stats().prefix_cache_hits, 8);

  // Exactly 8 tokens: only one block may be reused (the last token must be computed).
  const std::vector<int32_t> c(a.begin(), a.begin() + 8);
  EXPECT_EQ(kv.find_cached_prefix(3, c, 0).num_tokens, 4);
  // A different salt shares nothing.
  EXPECT_EQ(kv.find_cached_prefix(4, b, 42).num_tokens, 0);
  kv.free(3);
  kv.free(4);
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.num_free_blocks(), 19);
  EXPECT_TRUE(kv.check_consistency().ok());
  // Freed blocks stay cached until evicted.
  EXPECT_EQ(kv.find_cached_prefix(5, b, 0).num_tokens, 8);
  kv.free(5);
}

TEST(KvCacheManager, HitOnFreeBlocksCountsAgainstCapacity) {
  KvCacheManager kv(4, 2, true);  // 3 usable blocks
  const std::vector<int32_t> a = iota_tokens(5);
  ASSERT_TRUE(kv.allocate(1, nullptr, 5));
  kv.cache_blocks(1, a, 5, 0);
  kv.free(1);  // 3 free, two of them cached
  PrefixHit hit = kv.find_cached_prefix(2, a, 0);
  EXPECT_EQ(hit.num_tokens, 4);
  // Hit takes 2 free blocks, 5 tokens need 3 blocks: 1 new, total 3 <= 3.
  EXPECT_TRUE(kv.allocate(2, &hit, 5));
  EXPECT_EQ(kv.num_free_blocks(), 0);
  kv.free(2);
  std::vector<int32_t> longer = iota_tokens(7);
  hit = kv.find_cached_prefix(3, longer, 0);
  EXPECT_EQ(hit.num_tokens, 4);
  EXPECT_FALSE(kv.allocate(3, &hit, 7));          // 4 blocks > 3
  EXPECT_EQ(kv.stats().prefix_cache_queries, 5);  // the failed attempt is not counted
  kv.free(3);
  EXPECT_TRUE(kv.check_consistency().ok());
}

TEST(KvCacheManager, ForkSharesFullBlocksOnly) {
  KvCacheManager kv(10, 4, true);
  ASSERT_TRUE(kv.allocate(1, nullptr, 10));  // 3 blocks, last partial
  const std::vector<int32_t> parent = kv.block_ids(1);
  kv.fork(1, 2, 2);
  EXPECT_EQ(kv.block_ids(2), (std::vector<int32_t>{parent[0], parent[1]}));
  EXPECT_EQ(kv.pool().ref_count(parent[0]), 2);
  EXPECT_EQ(kv.pool().ref_count(parent[2]), 1);
  // The child writes its own copy of the partial block.
  ASSERT_TRUE(kv.allocate(2, nullptr, 11));
  EXPECT_EQ(kv.block_ids(2).size(), 3u);
  EXPECT_NE(kv.block_ids(2)[2], parent[2]);
  EXPECT_TRUE(kv.check_consistency().ok());
  kv.free(1);
  EXPECT_EQ(kv.pool().ref_count(parent[0]), 1);
  kv.free(2);
  EXPECT_EQ(kv.num_free_blocks(), 9);
  EXPECT_TRUE(kv.check_consistency().ok());
}

TEST(KvCacheManager, CachingDisabledNeverHits) {
  KvCacheManager kv(10, 4, false);
  const std::vector<int32_t> a = iota_tokens(9);
  ASSERT_TRUE(kv.allocate(1, nullptr, 9));
  kv.cache_blocks(1, a, 9, 0);
  EXPECT_EQ(kv.find_cached_prefix(2, a, 0).num_tokens, 0);
  EXPECT_EQ(kv.stats().prefix_cache_queries, 0);
  kv.free(1);
  kv.free(2);
}

}  // namespace
}  // namespace kite
