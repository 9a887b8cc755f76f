#include "kv_cache/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

#include "kv_cache/block_hash.h"

namespace kite {
namespace {

BlockHash h(int i) {
  const int32_t tokens[1] = {i};
  return hash_block_tokens(nullptr, tokens, {});
}

TEST(BlockPool, NullBlockIsNeverHandedOut) {
  BlockPool pool(5, true);
  EXPECT_EQ(pool.num_free_blocks(), 4);
  std::vector<int32_t> got;
  pool.allocate(4, &got);
  EXPECT_EQ(got, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(pool.num_free_blocks(), 0);
  EXPECT_DOUBLE_EQ(pool.usage(), 1.0);
  EXPECT_TRUE(pool.check_consistency().ok());
}

TEST(BlockPool, FreeListIsLruOrderAndEvictsHashes) {
  BlockPool pool(5, true);
  std::vector<int32_t> b;
  pool.allocate(4, &b);
  for (int i = 0; i < 4; ++i) pool.cache(b[static_cast<size_t>(i)], h(i));
  EXPECT_EQ(pool.num_cached_blocks(), 4);
  // Released in the order 3, 1, 4, 2: that is the eviction order.
  for (int32_t x : {3, 1, 4, 2}) pool.release(x);
  EXPECT_EQ(pool.num_free_blocks(), 4);
  EXPECT_DOUBLE_EQ(pool.usage(), 0.0);
  EXPECT_EQ(pool.lookup(h(2)), 3);  // still cached while free
  // A hit takes block 3 off the free list; allocation then pops 1 and evicts its hash.
  pool.touch(3);
  EXPECT_EQ(pool.num_free_blocks(), 3);
  std::vector<int32_t> next;
  pool.allocate(1, &next);
  EXPECT_EQ(next, std::vector<int32_t>{1});
  EXPECT_FALSE(pool.lookup(h(0)).has_value());
  EXPECT_TRUE(pool.lookup(h(3)).has_value());
  EXPECT_TRUE(pool.check_consistency().ok()) << pool.check_consistency().to_string();
}

TEST(BlockPool, DuplicateHashKeepsTheFirstBlock) {
  BlockPool pool(4, true);
  std::vector<int32_t> b;
  pool.allocate(2, &b);
  pool.cache(b[0], h(7));
  pool.cache(b[1], h(7));
  EXPECT_EQ(pool.lookup(h(7)), b[0]);
  EXPECT_EQ(pool.num_cached_blocks(), 1);
  EXPECT_TRUE(pool.check_consistency().ok());
}

TEST(BlockPool, CachingOffStoresNothing) {
  BlockPool pool(4, false);
  std::vector<int32_t> b;
  pool.allocate(1, &b);
  pool.cache(b[0], h(1));
  EXPECT_FALSE(pool.lookup(h(1)).has_value());
}

TEST(BlockPool, SharedBlockReturnsAtLastRelease) {
  BlockPool pool(3, true);
  std::vector<int32_t> b;
  pool.allocate(1, &b);
  pool.touch(b[0]);
  EXPECT_EQ(pool.ref_count(b[0]), 2);
  pool.release(b[0]);
  EXPECT_FALSE(pool.is_free(b[0]));
  pool.release(b[0]);
  EXPECT_TRUE(pool.is_free(b[0]));
  EXPECT_TRUE(pool.check_consistency().ok());
}

TEST(BlockPoolDeathTest, DoubleFreeIsCaught) {
  BlockPool pool(3, true);
  std::vector<int32_t> b;
  pool.allocate(1, &b);
  pool.release(b[0]);
  EXPECT_DEATH(pool.release(b[0]), "double free");
}

TEST(BlockPool, ResetPrefixCacheNeedsUnreferencedBlocks) {
  BlockPool pool(3, true);
  std::vector<int32_t> b;
  pool.allocate(1, &b);
  pool.cache(b[0], h(1));
  EXPECT_FALSE(pool.reset_prefix_cache());
  pool.release(b[0]);
  EXPECT_TRUE(pool.reset_prefix_cache());
  EXPECT_FALSE(pool.lookup(h(1)).has_value());
  EXPECT_TRUE(pool.check_consistency().ok());
}

TEST(BlockHash, ChainsParentTokensAndSalt) {
  const int32_t a[4] = {1, 2, 3, 4};
  const int32_t c[4] = {1, 2, 3, 5};
  const BlockHash ha = hash_block_tokens(nullptr, a, {});
  EXPECT_EQ(ha, hash_block_tokens(nullptr, a, {}));
  EXPECT_FALSE(ha == hash_block_tokens(nullptr, c, {}));
  const uint64_t salt[1] = {9};
  EXPECT_FALSE(ha == hash_block_tokens(nullptr, a, salt));
  // Same tokens after different parents hash differently.
  EXPECT_FALSE(hash_block_tokens(&ha, a, {}) == hash_block_tokens(nullptr, a, {}));
  const BlockHash hc = hash_block_tokens(nullptr, c, {});
  EXPECT_FALSE(hash_block_tokens(&ha, a, {}) == hash_block_tokens(&hc, a, {}));
}

}  // namespace
}  // namespace kite
