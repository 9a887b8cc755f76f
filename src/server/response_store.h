// ResponseStore: the conversations of stored /v1/responses answers (store: true, OpenAI's
// default), kept in memory so a later request can continue one with previous_response_id.
// Bounded: at most `max_entries` conversations and `max_bytes` of their text; the least
// recently used go first, and a restart forgets them all. Thread-safe.
#pragma once

#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace kite::server {

class ResponseStore {
 public:
  static constexpr size_t kDefaultMaxEntries = 1024;
  static constexpr size_t kDefaultMaxBytes = size_t{64} << 20;

  explicit ResponseStore(size_t max_entries = kDefaultMaxEntries,
                         size_t max_bytes = kDefaultMaxBytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // Keeps `conversation` (chat messages, a JSON array) under `id`; one larger than max_bytes is
  // not kept.
  void put(const std::string& id, std::string conversation);
  // The conversation kept under `id` (and marks it recently used).
  std::optional<std::string> get(const std::string& id);
  size_t size() const;

 private:
  struct Entry {
    std::string id;
    std::string conversation;
  };
  size_t max_entries_;
  size_t max_bytes_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> by_id_;
  size_t bytes_ = 0;
};

}  // namespace kite::server
