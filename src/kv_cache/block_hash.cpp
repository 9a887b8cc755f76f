#include "kv_cache/block_hash.h"

#include <xxhash.h>

#include "core/check.h"

namespace kite {

BlockHash hash_block_tokens(const BlockHash* parent, std::span<const int32_t> tokens,
                            std::span<const uint64_t> extra_keys) {
  XXH3_state_t* state = XXH3_createState();
  KITE_CHECK(state != nullptr);
  XXH3_128bits_reset(state);
  // A tag byte distinguishes "no parent" from a parent whose hash is zero.
  const uint8_t has_parent = parent != nullptr ? 1 : 0;
  XXH3_128bits_update(state, &has_parent, 1);
  if (parent != nullptr) {
    const uint64_t words[2] = {parent->lo, parent->hi};
    XXH3_128bits_update(state, words, sizeof(words));
  }
  const uint64_t num_tokens = tokens.size();
  XXH3_128bits_update(state, &num_tokens, sizeof(num_tokens));
  XXH3_128bits_update(state, tokens.data(), tokens.size_bytes());
  XXH3_128bits_update(state, extra_keys.data(), extra_keys.size_bytes());
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  return BlockHash{h.low64, h.high64};
}

uint64_t cache_salt_key(std::string_view salt) {
  const uint64_t key = XXH3_64bits(salt.data(), salt.size());
  return key == 0 ? 1 : key;
}

}  // namespace kite
