// Vocabulary storage for tokenizer models: token strings in one arena, an open-addressing
// string -> id table (XXH3 hashes), and an id -> string table. Built once, then read-only and
// safe to share between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kite {

uint64_t hash_bytes(std::string_view s);

class Vocab {
 public:
  // Adds token -> id; a later add of the same token replaces its id (like a JSON object read
  // into a hash map). REQUIRES: id >= 0.
  void add(std::string_view token, int32_t id);
  // Finishes building: fills the id -> token table. Call once after the last add().
  void finalize();

  // -1 when absent.
  int32_t find(std::string_view token) const { return find(token, hash_bytes(token)); }
  int32_t find(std::string_view token, uint64_t hash) const;
  // The token of id, or nullptr when no token has that id.
  const std::string_view* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= by_id_.size() || !has_id_[id]) return nullptr;
    return &by_id_[id];
  }
  // Number of distinct tokens (tokenizers' get_vocab_size()).
  size_t size() const { return count_; }
  // Highest id + 1 (0 when empty).
  int64_t id_end() const { return static_cast<int64_t>(by_id_.size()); }
  // Calls fn(token, id) for every entry.
  template <typename F>
  void for_each(F&& fn) const {
    for (const Slot& s : slots_) {
      if (s.id >= 0) fn(std::string_view(arena_).substr(s.offset, s.length), s.id);
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;
  };
  void grow();

  std::string arena_;
  std::vector<Slot> slots_;  // power-of-two size, load <= 1/2
  size_t count_ = 0;
  std::vector<std::string_view> by_id_;
  std::vector<bool> has_id_;
};

// (left id, right id) -> (rank, merged id) for BPE merges.
class MergeMap {
 public:
  struct Entry {
    uint32_t rank;
    int32_t merged_id;
  };
  void reserve(size_t n);
  // A later insert of the same pair replaces the earlier one.
  void insert(int32_t left, int32_t right, Entry e);
  // nullptr when the pair has no merge.
  const Entry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    uint64_t key = pack(left, right);
    size_t mask = slots_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.entry;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    Entry entry{};
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  void grow();

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace kite
