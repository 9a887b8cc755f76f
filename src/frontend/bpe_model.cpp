// BPE model with the exact merge order of Hugging Face `tokenizers`: repeatedly merge the
// adjacent pair with the lowest merge rank, leftmost first.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <queue>

#include "frontend/byte_level.h"
#include "frontend/models.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

// Words longer than this (bytes) are not cached (tokenizers uses the same bound).
constexpr size_t kMaxCachedWord = 256;
// Above this many symbols a heap finds the next merge; below, a linear scan is faster.
constexpr size_t kHeapThreshold = 48;

// A per-thread cache of word -> ids for one model. Cleared when half full.
class WordCache {
 public:
  WordCache() : slots_(kSlots) {}

  bool find(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
    for (size_t i = hash & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Slot& s = slots_[i];
      if (s.n_ids == 0) return false;
      if (s.hash == hash && s.key_len == word.size() &&
          std::string_view(keys_).substr(s.key_off, s.key_len) == word) {
        out.insert(out.end(), ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.n_ids);
        return true;
      }
    }
  }

  void insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t n) {
    if (n == 0 || n > 0xffff) return;
    if (count_ * 2 >= kSlots) clear();
    for (size_t i = hash & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      Slot& s = slots_[i];
      if (s.n_ids != 0) continue;
      s.hash = hash;
      s.key_off = static_cast<uint32_t>(keys_.size());
      s.key_len = static_cast<uint32_t>(word.size());
      s.ids_off = static_cast<uint32_t>(ids_.size());
      s.n_ids = static_cast<uint32_t>(n);
      keys_.append(word);
      ids_.insert(ids_.end(), ids, ids + n);
      ++count_;
      return;
    }
  }

 private:
  static constexpr size_t kSlots = 1 << 15;
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0;
    uint32_t key_len = 0;
    uint32_t ids_off = 0;
    uint32_t n_ids = 0;  // 0 = empty slot
  };
  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    count_ = 0;
  }

  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t count_ = 0;
};

// The calling thread's cache for the model with unique id `uid` (a few models per thread).
WordCache& thread_cache(uint64_t uid) {
  constexpr int kWays = 4;
  struct Entry {
    uint64_t uid = 0;
    std::unique_ptr<WordCache> cache;
  };
  thread_local std::array<Entry, kWays> entries;
  thread_local int next_victim = 0;
  for (Entry& e : entries) {
    if (e.uid == uid && e.cache) return *e.cache;
  }
  Entry& e = entries[next_victim];
  next_victim = (next_victim + 1) % kWays;
  e.uid = uid;
  e.cache = std::make_unique<WordCache>();
  return *e.cache;
}

std::atomic<uint64_t> g_next_uid{1};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
};

class BpeModel final : public Model {
 public:
  BpeModel(Vocab vocab, MergeMap merges, BpeOptions opt)
      : vocab_(std::move(vocab)), merges_(std::move(merges)), opt_(std::move(opt)) {
    uid_ = g_next_uid.fetch_add(1);
    if (opt_.unk_token) unk_id_ = vocab_.find(*opt_.unk_token);
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
      byte_fallback_ids_[b] = opt_.byte_fallback ? vocab_.find(buf) : -1;
    }
    prefix_ = opt_.continuing_subword_prefix.value_or("");
    suffix_ = opt_.end_of_word_suffix.value_or("");
    simple_chars_ = prefix_.empty() && suffix_.empty();
    for (int c = 0; c < 128; ++c) {
      char ch = static_cast<char>(c);
      ascii_ids_[c] = vocab_.find(std::string_view(&ch, 1));
    }
  }

  const Vocab& vocab() const override { return vocab_; }
  bool consumes_raw_bytes() const override { return raw_; }

  bool enable_raw_bytes() override {
    if (!simple_chars_) return false;
    for (int b = 0; b < 256; ++b) {
      raw_byte_ids_[b] = vocab_.find(byte_level::byte_to_utf8(static_cast<uint8_t>(b)));
    }
    if (opt_.ignore_merges) {
      std::string raw;
      vocab_.for_each([&](std::string_view token, int32_t id) {
        raw.clear();
        if (byte_level::unmap(token, raw)) raw_vocab_.add(raw, id);
      });
      raw_vocab_.finalize();
    }
    raw_ = true;
    return true;
  }

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override {
    if (word.empty()) return;
    uint64_t hash = hash_bytes(word);
    if (opt_.ignore_merges) {
      int32_t id = raw_ ? raw_vocab_.find(word, hash) : vocab_.find(word, hash);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    bool cacheable = word.size() < kMaxCachedWord;
    WordCache* cache = cacheable ? &thread_cache(uid_) : nullptr;
    if (cache && cache->find(word, hash, out)) return;
    size_t start = out.size();
    tokenize_uncached(word, out);
    if (cache) cache->insert(word, hash, out.data() + start, out.size() - start);
  }

 private:
  // Appends the initial symbols of `word` (one per character, or byte-fallback / unk ids).
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const {
    bool pending_unk = false;
    auto add_known = [&](int32_t id) {
      if (pending_unk) {
        ids.push_back(unk_id_);
        pending_unk = false;
      }
      ids.push_back(id);
    };
    auto add_unknown = [&](std::string_view s) {
      if (opt_.byte_fallback) {
        bool all = true;
        for (char ch : s) all = all && byte_fallback_ids_[static_cast<unsigned char>(ch)] >= 0;
        if (all) {
          for (char ch : s) ids.push_back(byte_fallback_ids_[static_cast<unsigned char>(ch)]);
          return;
        }
      }
      if (unk_id_ < 0) return;  // no usable unk token: the character is dropped
      if (pending_unk && !opt_.fuse_unk) ids.push_back(unk_id_);
      pending_unk = true;
    };

    if (raw_) {
      for (char ch : word) {
        auto b = static_cast<unsigned char>(ch);
        int32_t id = raw_byte_ids_[b];
        if (id >= 0) {
          add_known(id);
        } else {
          add_unknown(byte_level::byte_to_utf8(b));
        }
      }
    } else {
      std::string buf;
      size_t i = 0;
      while (i < word.size()) {
        size_t at = i;
        auto lead = static_cast<unsigned char>(word[i]);
        i += utf8::seq_len(lead);
        if (i > word.size()) i = word.size();
        if (simple_chars_) {
          int32_t id = lead < 128 ? ascii_ids_[lead] : vocab_.find(word.substr(at, i - at));
          if (id >= 0) {
            add_known(id);
          } else {
            add_unknown(word.substr(at, i - at));
          }
          continue;
        }
        buf.clear();
        if (at != 0 && opt_.continuing_subword_prefix) buf.append(prefix_);
        buf.append(word.substr(at, i - at));
        if (i == word.size() && opt_.end_of_word_suffix) buf.append(suffix_);
        int32_t id = vocab_.find(buf);
        if (id >= 0) {
          add_known(id);
        } else {
          add_unknown(buf);
        }
      }
    }
    if (pending_unk) ids.push_back(unk_id_);
  }

  void tokenize_uncached(std::string_view word, std::vector<int32_t>& out) const {
    thread_local std::vector<int32_t> ids;
    ids.clear();
    initial_symbols(word, ids);
    if (ids.size() < 2) {
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
    if (ids.size() <= kHeapThreshold) {
      merge_small(ids, out);
    } else {
      merge_heap(ids, out);
    }
  }

  // Linear scan for the lowest-rank pair; O(n^2) but fastest for short words.
  void merge_small(const std::vector<int32_t>& init, std::vector<int32_t>& out) const {
    size_t n = init.size();
    std::array<int32_t, kHeapThreshold> id;
    std::array<uint32_t, kHeapThreshold> rank;   // rank of (i, next(i))
    std::array<int32_t, kHeapThreshold> merged;  // id of the merge of (i, next(i))
    std::array<int32_t, kHeapThreshold> next;
    std::array<int32_t, kHeapThreshold> prev;
    auto pair_rank = [&](size_t i) {
      if (next[i] < 0) {
        rank[i] = UINT32_MAX;
        return;
      }
      const MergeMap::Entry* e = merges_.find(id[i], id[next[i]]);
      rank[i] = e ? e->rank : UINT32_MAX;
      merged[i] = e ? e->merged_id : -1;
    };
    for (size_t i = 0; i < n; ++i) {
      id[i] = init[i];
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
      prev[i] = static_cast<int32_t>(i) - 1;
    }
    for (size_t i = 0; i < n; ++i) pair_rank(i);
    while (true) {
      uint32_t best = UINT32_MAX;
      int32_t best_i = -1;
      for (int32_t i = 0; i >= 0; i = next[i]) {
        if (rank[i] < best) {
          best = rank[i];
          best_i = i;
        }
      }
      if (best_i < 0) break;
      int32_t j = next[best_i];
      id[best_i] = merged[best_i];
      next[best_i] = next[j];
      if (next[j] >= 0) prev[next[j]] = best_i;
      pair_rank(best_i);
      if (prev[best_i] >= 0) pair_rank(prev[best_i]);
    }
    for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
  }

  // Heap of candidate merges ordered by (rank, position); stale entries are skipped.
  void merge_heap(const std::vector<int32_t>& init, std::vector<int32_t>& out) const {
    size_t n = init.size();
    std::vector<Symbol> sym(n);
    for (size_t i = 0; i < n; ++i) {
      sym[i] = {init[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
    }
    struct Cand {
      uint32_t rank;
      int32_t pos;
      int32_t merged_id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto push_pair = [&](int32_t pos) {
      if (pos < 0 || sym[pos].next < 0) return;
      const MergeMap::Entry* e = merges_.find(sym[pos].id, sym[sym[pos].next].id);
      if (e) heap.push({e->rank, pos, e->merged_id});
    };
    for (size_t i = 0; i + 1 < n; ++i) push_pair(static_cast<int32_t>(i));
    std::vector<bool> dead(n, false);
    while (!heap.empty()) {
      Cand c = heap.top();
      heap.pop();
      if (dead[c.pos] || sym[c.pos].next < 0) continue;
      int32_t j = sym[c.pos].next;
      const MergeMap::Entry* e = merges_.find(sym[c.pos].id, sym[j].id);
      if (e == nullptr || e->merged_id != c.merged_id || e->rank != c.rank) continue;
      sym[c.pos].id = c.merged_id;
      sym[c.pos].next = sym[j].next;
      if (sym[j].next >= 0) sym[sym[j].next].prev = c.pos;
      dead[j] = true;
      push_pair(sym[c.pos].prev);
      push_pair(c.pos);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
  }

  Vocab vocab_;
  MergeMap merges_;
  BpeOptions opt_;
  std::string prefix_;
  std::string suffix_;
  bool simple_chars_ = true;  // no continuing_subword_prefix / end_of_word_suffix
  int32_t unk_id_ = -1;
  std::array<int32_t, 256> byte_fallback_ids_{};
  std::array<int32_t, 128> ascii_ids_{};
  bool raw_ = false;
  std::array<int32_t, 256> raw_byte_ids_{};
  Vocab raw_vocab_;
  uint64_t uid_ = 0;
};

}  // namespace

Result<std::unique_ptr<Model>> make_bpe_model(
    Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    BpeOptions options) {
  vocab.finalize();
  size_t prefix_len =
      options.continuing_subword_prefix ? options.continuing_subword_prefix->size() : 0;
  MergeMap map;
  map.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    int32_t a_id = vocab.find(a);
    int32_t b_id = vocab.find(b);
    auto where = [&] { return "merges[" + std::to_string(rank) + "]: "; };
    if (a_id < 0)
      return invalid_argument(where() + "token '" + utf8::lossy(a) + "' is not in the vocabulary");
    if (b_id < 0)
      return invalid_argument(where() + "token '" + utf8::lossy(b) + "' is not in the vocabulary");
    if (b.size() < prefix_len) {
      return invalid_argument(where() + "token '" + utf8::lossy(b) +
                              "' is shorter than continuing_subword_prefix");
    }
    merged.assign(a);
    merged.append(b, prefix_len, std::string::npos);
    int32_t m_id = vocab.find(merged);
    if (m_id < 0) {
      return invalid_argument(where() + "merged token '" + utf8::lossy(merged) +
                              "' is not in the vocabulary");
    }
    map.insert(a_id, b_id, {static_cast<uint32_t>(rank), m_id});
  }
  return std::unique_ptr<Model>(new BpeModel(std::move(vocab), std::move(map), std::move(options)));
}

}  // namespace kite
