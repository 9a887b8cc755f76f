// Added tokens ("added_tokens" of tokenizer.json): ids assigned and text split out exactly as
// Hugging Face `tokenizers`' AddedVocabulary does — leftmost-longest matching, the
// single_word / lstrip / rstrip / normalized / special flags, special-token parsing on or off.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "frontend/models.h"
#include "frontend/normalizers.h"

namespace kite {

struct AddedToken {
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;

  friend bool operator==(const AddedToken&, const AddedToken&) = default;
};

// A piece of split text: [begin, end) of the text, and the added token's id (-1 for plain text).
struct AddedSplit {
  size_t begin;
  size_t end;
  int32_t id;
};

class AddedVocabulary {
 public:
  // Adds one token like tokenizers' add_tokens()/add_special_tokens(): an identical token already
  // present is ignored; the id is the existing id of the content (added or model vocabulary) or
  // the next free id. Call build() after the last add.
  void add(const AddedToken& token, const Model& model);
  // Builds the matchers; normalized tokens are matched by their content passed through
  // `normalizer` (may be null).
  void build(const Normalizer* normalizer);

  // -1 when absent. Added tokens shadow the model vocabulary.
  int32_t token_to_id(std::string_view token, const Model& model) const;
  // The string of the added token with this id as tokenizers reports it (id_to_token, decode):
  // its content, passed through the normalizer when the token is `normalized`. nullptr when the
  // id is not an added token.
  const std::string* content(int32_t id) const;
  const AddedToken* token(int32_t id) const;
  bool is_special_content(std::string_view content) const {
    return special_set_.count(std::string(content)) > 0;
  }
  // Highest added id + 1 (0 when none).
  int64_t id_end() const;
  const std::unordered_map<int32_t, AddedToken>& by_id() const { return by_id_; }

  // Splits `text` on the tokens of the non-normalized (normalized = false) or normalized
  // (normalized = true) set. With parse_special false, special tokens are left as text.
  // Appends pieces covering the text in order (pieces may be empty).
  void split(std::string_view text, bool normalized, bool parse_special,
             std::vector<AddedSplit>& out) const;

 private:
  // A byte trie over token contents; node 0 is the root.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
      int32_t token_id = -1;                              // id when a token ends here
    };
    std::vector<Node> nodes;
    std::array<bool, 256> first_byte{};
    void clear();
    void insert(std::string_view key, int32_t id);
    // Longest token starting at text[pos]: returns its end and id, or false.
    bool longest_at(std::string_view text, size_t pos, size_t* end, int32_t* id) const;
  };

  std::unordered_map<std::string, int32_t> by_content_;
  std::unordered_map<int32_t, AddedToken> by_id_;
  std::unordered_map<int32_t, std::string> id_strings_;  // filled by build()
  std::vector<AddedToken> special_tokens_;               // in insertion order
  std::vector<AddedToken> plain_tokens_;                 // in insertion order
  std::unordered_set<std::string> special_set_;
  int64_t max_added_id_ = -1;
  Trie raw_trie_;         // tokens with normalized = false
  Trie normalized_trie_;  // tokens with normalized = true, by normalized content
};

}  // namespace kite
