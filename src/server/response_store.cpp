#include "server/response_store.h"

namespace kite::server {

void ResponseStore::put(const std::string& id, std::string conversation) {
  if (conversation.size() > max_bytes_ || max_entries_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_id_.find(id); it != by_id_.end()) {
    bytes_ -= it->second->conversation.size();
    lru_.erase(it->second);
    by_id_.erase(it);
  }
  bytes_ += conversation.size();
  lru_.push_front({id, std::move(conversation)});
  by_id_[id] = lru_.begin();
  while (lru_.size() > max_entries_ || bytes_ > max_bytes_) {
    bytes_ -= lru_.back().conversation.size();
    by_id_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

std::optional<std::string> ResponseStore::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->conversation;
}

size_t ResponseStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

}  // namespace kite::server
