#include "frontend/added_vocabulary.h"

#include <algorithm>

#include "frontend/unicode.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

// Rust regex \w$ on text: does the last character count as a word character?
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len = 0;
  return unicode::is_word_char(utf8::decode_last(s, &len));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  return unicode::is_word_char(utf8::decode(s, i));
}

// Start of the trailing whitespace run of s (s.size() when none).
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t len = 0;
    if (!unicode::is_whitespace(utf8::decode_last(s.substr(0, end), &len))) break;
    end -= len;
  }
  return end;
}

// Length of the leading whitespace run of s.
size_t leading_space_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t at = i;
    if (!unicode::is_whitespace(utf8::decode(s, i))) return at;
  }
  return s.size();
}

}  // namespace

void AddedVocabulary::Trie::clear() {
  nodes.assign(1, Node{});
  first_byte.fill(false);
}

void AddedVocabulary::Trie::insert(std::string_view key, int32_t id) {
  if (nodes.empty()) clear();
  if (key.empty())
    return;  // an empty pattern would match everywhere; tokenizers' result is
             // degenerate, so kite never matches it
  first_byte[static_cast<unsigned char>(key[0])] = true;
  int32_t node = 0;
  for (char ch : key) {
    auto b = static_cast<uint8_t>(ch);
    auto& ch_list = nodes[node].children;
    auto it = std::lower_bound(ch_list.begin(), ch_list.end(), std::make_pair(b, INT32_MIN));
    if (it != ch_list.end() && it->first == b) {
      node = it->second;
    } else {
      auto next = static_cast<int32_t>(nodes.size());
      ch_list.insert(it, {b, next});
      nodes.emplace_back();
      node = next;
    }
  }
  // Identical contents map to the same id; the first one inserted wins like in tokenizers.
  if (nodes[node].token_id < 0) nodes[node].token_id = id;
}

bool AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos, size_t* end,
                                       int32_t* id) const {
  if (nodes.empty() || !first_byte[static_cast<unsigned char>(text[pos])]) return false;
  int32_t node = 0;
  bool found = false;
  for (size_t i = pos; i < text.size(); ++i) {
    auto b = static_cast<uint8_t>(text[i]);
    const auto& ch_list = nodes[node].children;
    auto it = std::lower_bound(ch_list.begin(), ch_list.end(), std::make_pair(b, INT32_MIN));
    if (it == ch_list.end() || it->first != b) break;
    node = it->second;
    if (nodes[node].token_id >= 0) {
      *end = i + 1;
      *id = nodes[node].token_id;
      found = true;
    }
  }
  return found;
}

int32_t AddedVocabulary::token_to_id(std::string_view token, const Model& model) const {
  auto it = by_content_.find(std::string(token));
  if (it != by_content_.end()) return it->second;
  return model.vocab().find(token);
}

const std::string* AddedVocabulary::content(int32_t id) const {
  auto it = id_strings_.find(id);
  return it == id_strings_.end() ? nullptr : &it->second;
}

const AddedToken* AddedVocabulary::token(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

int64_t AddedVocabulary::id_end() const {
  int64_t end = 0;
  for (const auto& [id, tok] : by_id_) end = std::max<int64_t>(end, int64_t{id} + 1);
  return end;
}

void AddedVocabulary::add(const AddedToken& token, const Model& model) {
  if (token.special && !token.content.empty() && !special_set_.count(token.content)) {
    special_tokens_.push_back(token);
    special_set_.insert(token.content);
  }
  if (token.content.empty()) return;
  // An identical token is ignored. A content always keeps one id, so checking that id suffices.
  if (auto it = by_content_.find(token.content); it != by_content_.end()) {
    auto same = by_id_.find(it->second);
    if (same != by_id_.end() && same->second == token) return;
  }
  int32_t new_id = token_to_id(token.content, model);
  if (new_id < 0) {
    auto vocab_size = static_cast<int64_t>(model.vocab().size());
    int64_t max_added = max_added_id_;
    if (max_added < 0) {
      new_id = static_cast<int32_t>(vocab_size);
    } else if (max_added >= vocab_size || vocab_size == 0) {
      new_id = static_cast<int32_t>(max_added + 1);
    } else {
      new_id = static_cast<int32_t>(vocab_size);
    }
  }
  by_content_[token.content] = new_id;
  by_id_[new_id] = token;
  max_added_id_ = std::max<int64_t>(max_added_id_, new_id);
  if (!special_set_.count(token.content)) plain_tokens_.push_back(token);
}

void AddedVocabulary::build(const Normalizer* normalizer) {
  raw_trie_.clear();
  normalized_trie_.clear();
  auto insert = [&](const AddedToken& t) {
    int32_t id = by_content_.count(t.content) ? by_content_.at(t.content) : -1;
    if (id < 0) return;
    if (!t.normalized) {
      raw_trie_.insert(t.content, id);
      return;
    }
    std::string key = t.content;
    if (normalizer != nullptr) normalizer->normalize(key);
    normalized_trie_.insert(key, id);
  };
  for (const AddedToken& t : special_tokens_) insert(t);
  for (const AddedToken& t : plain_tokens_) insert(t);
  id_strings_.clear();
  for (const auto& [id, t] : by_id_) {
    std::string s = t.content;
    if (t.normalized && normalizer != nullptr) normalizer->normalize(s);
    id_strings_.emplace(id, std::move(s));
  }
}

void AddedVocabulary::split(std::string_view text, bool normalized, bool parse_special,
                            std::vector<AddedSplit>& out) const {
  const Trie& trie = normalized ? normalized_trie_ : raw_trie_;
  const size_t first = out.size();
  size_t start_offset = 0;
  size_t pos = 0;
  bool any_token = trie.nodes.size() > 1;
  while (any_token && pos < text.size()) {
    size_t stop = 0;
    int32_t id = -1;
    if (!trie.longest_at(text, pos, &stop, &id)) {
      ++pos;
      continue;
    }
    size_t start = pos;
    pos = stop;  // matching resumes after the raw match, whatever lstrip/rstrip do below
    const AddedToken& tok = by_id_.at(id);
    if (!parse_special && special_set_.count(tok.content)) continue;
    if (tok.single_word) {
      bool start_space = start == 0 || !ends_with_word(text.substr(0, start));
      bool stop_space = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (tok.rstrip) stop += leading_space_len(text.substr(stop));
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, id});
    start_offset = stop;
  }
  if (start_offset != text.size() || out.size() == first) {
    out.push_back({start_offset, text.size(), -1});
  }
}

}  // namespace kite
