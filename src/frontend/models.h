// Tokenizer models ("model" of tokenizer.json): turn one pre-token into ids.
//   BPE       — byte-level (GPT-2, Llama-3, Qwen) and SentencePiece-style (Llama-2, Gemma:
//               byte_fallback, fuse_unk), continuing_subword_prefix / end_of_word_suffix,
//               ignore_merges; a per-thread cache of recent words.
//   WordPiece — BERT's greedy longest-match-first.
//   WordLevel — whole-word lookup.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/vocab.h"
#include "kite/status.h"

namespace kite {

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `word` (a non-empty pre-token: valid UTF-8, or raw bytes when
  // consumes_raw_bytes()).
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual const Vocab& vocab() const = 0;
  // True once enable_raw_bytes() succeeded: words arrive as raw bytes and the model applies the
  // GPT-2 byte-to-unicode mapping itself (saves materialising mapped strings).
  virtual bool consumes_raw_bytes() const { return false; }
  virtual bool enable_raw_bytes() { return false; }

  // Builds a model from its JSON object.
  static Result<std::unique_ptr<Model>> from_json(const boost::json::value& v,
                                                  const std::string& path);
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

// Builds a BPE model from a vocabulary and ranked merges (merges[i] has rank i). Errors name
// merges whose tokens are not in the vocabulary.
Result<std::unique_ptr<Model>> make_bpe_model(
    Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    BpeOptions options);

// WordPiece over `vocab` (finalized): greedy longest-match-first with continuation `prefix`;
// words longer than max_chars characters, or with no match, become unk_id.
std::unique_ptr<Model> make_wordpiece_model(Vocab vocab, std::string prefix, size_t max_chars,
                                            int32_t unk_id);

}  // namespace kite
