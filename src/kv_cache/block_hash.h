// Prefix-cache keys of full KV blocks: a 128-bit chained hash (XXH3-128) of the parent block's
// hash, the block's token ids and extra keys (a per-request cache salt for the first block).
// Two blocks with equal hashes hold the same tokens after the same prefix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

namespace kite {

struct BlockHash {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const BlockHash& a, const BlockHash& b) {
    return a.lo == b.lo && a.hi == b.hi;
  }
};

struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const { return static_cast<size_t>(h.lo ^ (h.hi * 31)); }
};

// hash(parent, tokens, extra): parent is nullptr for the first block of a sequence.
// The 64-bit key a request's cache_salt string puts into its first block's hash (never 0,
// which means "no salt"). XXH3-64 of the bytes.
uint64_t cache_salt_key(std::string_view salt);

BlockHash hash_block_tokens(const BlockHash* parent, std::span<const int32_t> tokens,
                            std::span<const uint64_t> extra_keys);

}  // namespace kite
