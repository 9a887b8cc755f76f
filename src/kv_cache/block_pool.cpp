#include "kv_cache/block_pool.h"

#include "core/check.h"

namespace kite {

BlockPool::BlockPool(int64_t num_blocks, bool enable_caching)
    : blocks_(static_cast<size_t>(num_blocks)), enable_caching_(enable_caching) {
  KITE_CHECK_GE(num_blocks, 2);
  for (int32_t b = 1; b < num_blocks; ++b) push_back(b);
}

double BlockPool::usage() const {
  const int64_t usable = num_blocks() - 1;
  return static_cast<double>(usable - num_free_) / static_cast<double>(usable);
}

void BlockPool::unlink(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  KITE_DCHECK(blk.in_free_list);
  if (blk.prev >= 0) {
    blocks_[static_cast<size_t>(blk.prev)].next = blk.next;
  } else {
    head_ = blk.next;
  }
  if (blk.next >= 0) {
    blocks_[static_cast<size_t>(blk.next)].prev = blk.prev;
  } else {
    tail_ = blk.prev;
  }
  blk.prev = blk.next = -1;
  blk.in_free_list = false;
  --num_free_;
}

void BlockPool::push_back(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  blk.prev = tail_;
  blk.next = -1;
  if (tail_ >= 0) {
    blocks_[static_cast<size_t>(tail_)].next = b;
  } else {
    head_ = b;
  }
  tail_ = b;
  blk.in_free_list = true;
  ++num_free_;
}

void BlockPool::evict_hash(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (!blk.has_hash) return;
  auto it = cached_.find(blk.hash);
  KITE_CHECK(it != cached_.end() && it->second == b) << "block " << b;
  cached_.erase(it);
  blk.has_hash = false;
}

void BlockPool::allocate(int64_t n, std::vector<int32_t>* out) {
  KITE_CHECK_LE(n, num_free_);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t b = head_;
    unlink(b);
    evict_hash(b);
    Block& blk = blocks_[static_cast<size_t>(b)];
    KITE_CHECK_EQ(blk.ref_count, 0);
    blk.ref_count = 1;
    out->push_back(b);
  }
}

std::optional<int32_t> BlockPool::lookup(const BlockHash& hash) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

void BlockPool::touch(int32_t block) {
  KITE_CHECK(block > 0 && block < num_blocks()) << "block " << block;
  Block& blk = blocks_[static_cast<size_t>(block)];
  if (blk.ref_count == 0) unlink(block);
  ++blk.ref_count;
}

void BlockPool::release(int32_t block) {
  KITE_CHECK(block > 0 && block < num_blocks()) << "block " << block;
  Block& blk = blocks_[static_cast<size_t>(block)];
  KITE_CHECK_GT(blk.ref_count, 0) << "double free of block " << block;
  if (--blk.ref_count == 0) push_back(block);
}

void BlockPool::cache(int32_t block, const BlockHash& hash) {
  if (!enable_caching_) return;
  Block& blk = blocks_[static_cast<size_t>(block)];
  KITE_CHECK_GT(blk.ref_count, 0) << "caching unreferenced block " << block;
  if (blk.has_hash) return;
  if (!cached_.emplace(hash, block).second) return;  // an equal block is already cached
  blk.has_hash = true;
  blk.hash = hash;
}

bool BlockPool::reset_prefix_cache() {
  for (const auto& [hash, b] : cached_) {
    if (blocks_[static_cast<size_t>(b)].ref_count > 0) return false;
  }
  for (const auto& [hash, b] : cached_) blocks_[static_cast<size_t>(b)].has_hash = false;
  cached_.clear();
  return true;
}

Status BlockPool::check_consistency() const {
  auto fail = [](const std::string& m) { return internal_error("block pool: " + m); };
  const Block& null_block = blocks_[0];
  if (null_block.ref_count != 0 || null_block.in_free_list || null_block.has_hash) {
    return fail("the null block was handed out");
  }
  int64_t walked = 0;
  int32_t prev = -1;
  for (int32_t b = head_; b >= 0; b = blocks_[static_cast<size_t>(b)].next) {
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (!blk.in_free_list || blk.ref_count != 0 || blk.prev != prev) {
      return fail("free list entry " + std::to_string(b) + " is inconsistent");
    }
    prev = b;
    if (++walked > num_blocks()) return fail("free list has a cycle");
  }
  if (prev != tail_ || walked != num_free_) return fail("free list length or tail is wrong");
  int64_t hashed = 0;
  for (int32_t b = 1; b < num_blocks(); ++b) {
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (blk.ref_count < 0) return fail("negative ref count at block " + std::to_string(b));
    if ((blk.ref_count == 0) != blk.in_free_list) {
      return fail("block " + std::to_string(b) + " ref " + std::to_string(blk.ref_count) +
                  (blk.in_free_list ? " is" : " is not") + " on the free list");
    }
    if (blk.has_hash) {
      ++hashed;
      auto it = cached_.find(blk.hash);
      if (it == cached_.end() || it->second != b) {
        return fail("hash of block " + std::to_string(b) + " missing from the map");
      }
    }
  }
  if (hashed != static_cast<int64_t>(cached_.size())) return fail("hash map has stale entries");
  return ok_status();
}

}  // namespace kite
