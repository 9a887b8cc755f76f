#include "frontend/vocab.h"

#include <xxhash.h>

#include "core/check.h"

namespace kite {

uint64_t hash_bytes(std::string_view s) { return XXH3_64bits(s.data(), s.size()); }

void Vocab::grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    size_t i = s.hash & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void Vocab::add(std::string_view token, int32_t id) {
  KITE_CHECK_GE(id, 0);
  if ((count_ + 1) * 2 > slots_.size()) grow();
  uint64_t h = hash_bytes(token);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.id < 0) {
      s.hash = h;
      s.offset = static_cast<uint32_t>(arena_.size());
      s.length = static_cast<uint32_t>(token.size());
      s.id = id;
      arena_.append(token);
      ++count_;
      return;
    }
    if (s.hash == h && std::string_view(arena_).substr(s.offset, s.length) == token) {
      s.id = id;
      return;
    }
  }
}

int32_t Vocab::find(std::string_view token, uint64_t hash) const {
  if (slots_.empty()) return -1;
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash == hash && s.length == token.size() &&
        std::string_view(arena_).substr(s.offset, s.length) == token) {
      return s.id;
    }
  }
}

void Vocab::finalize() {
  int32_t max_id = -1;
  for (const Slot& s : slots_) max_id = std::max(max_id, s.id);
  by_id_.assign(static_cast<size_t>(max_id + 1), std::string_view());
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  // When two tokens share an id, the one stored later in the arena wins (deterministic).
  std::vector<uint32_t> best_offset(static_cast<size_t>(max_id + 1), 0);
  for (const Slot& s : slots_) {
    if (s.id < 0) continue;
    if (!has_id_[s.id] || s.offset >= best_offset[s.id]) {
      by_id_[s.id] = std::string_view(arena_).substr(s.offset, s.length);
      best_offset[s.id] = s.offset;
      has_id_[s.id] = true;
    }
  }
}

void MergeMap::reserve(size_t n) {
  size_t cap = 64;
  while (cap < n * 2) cap *= 2;
  if (cap > slots_.size()) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    count_ = 0;
    for (const Slot& s : old) {
      if (s.key != kEmpty) {
        insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu),
               s.entry);
      }
    }
  }
}

void MergeMap::grow() { reserve(slots_.empty() ? 32 : slots_.size()); }

void MergeMap::insert(int32_t left, int32_t right, Entry e) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  uint64_t key = pack(left, right);
  size_t mask = slots_.size() - 1;
  for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.entry = e;
      return;
    }
    if (s.key == kEmpty) {
      s.key = key;
      s.entry = e;
      ++count_;
      return;
    }
  }
}

}  // namespace kite
