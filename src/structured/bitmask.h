// Token bitmasks: the allowed-token set of one logits row as bits (xgrammar's layout, shared by
// the CPU and GPU samplers): int32 words [ceil(vocab / 32)], token t allowed when bit t % 32 of
// word t / 32 is set.
#pragma once

#include <cstdint>

namespace kite::structured {

inline int64_t bitmask_words(int64_t vocab) { return (vocab + 31) / 32; }

inline bool bitmask_allows(const int32_t* mask, int64_t token) {
  return (static_cast<uint32_t>(mask[token >> 5]) >> (token & 31)) & 1u;
}

}  // namespace kite::structured
