// Tokenizer::Impl: the assembled pipeline (added tokens -> normalizer -> pre-tokenizer -> model
// -> post-processor; decoder) and the configuration read beside it. Internal to src/frontend.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "frontend/added_vocabulary.h"
#include "frontend/decoders.h"
#include "frontend/gguf_vocab.h"
#include "frontend/models.h"
#include "frontend/normalizers.h"
#include "frontend/post_processors.h"
#include "frontend/pre_tokenizers.h"
#include "frontend/tokenizer.h"

namespace kite {

struct Tokenizer::Impl {
  std::unique_ptr<Model> model;
  std::unique_ptr<Normalizer> normalizer;         // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;    // may be null
  std::unique_ptr<PostProcessor> post_processor;  // may be null
  std::unique_ptr<Decoder> decoder;               // may be null: tokens joined with " "
  AddedVocabulary added;

  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  std::optional<std::string> unk_token;
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  bool split_special_tokens = false;
  std::optional<std::string> chat_template;
  std::map<std::string, std::string> chat_templates;

  // Call once every component and added token is in place: builds the added-token matchers and
  // lets a byte-level BPE consume raw bytes.
  void finalize();

  void encode(std::string_view text, bool add_special_tokens, bool parse_special,
              std::vector<int32_t>& out) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  // True when decode(skip_special_tokens=true) leaves id out (its string is a special token's).
  bool skipped_by_decode(int32_t id) const;
  // The token string of id ("" + false when none).
  bool token_of(int32_t id, std::string_view* out) const;
  std::optional<int32_t> id_of(const std::optional<std::string>& token) const;
};

// Builds the pipeline of a parsed tokenizer.json. Errors name the offending field.
Result<std::unique_ptr<Tokenizer::Impl>> build_from_tokenizer_json(const boost::json::value& root);
// Builds the pipeline a GGUF vocabulary was converted from (see gguf_vocab.h).
Result<std::unique_ptr<Tokenizer::Impl>> build_from_gguf_vocab(const GgufVocab& vocab);
// Applies a parsed tokenizer_config.json (special token names, flags, chat templates).
Status apply_tokenizer_config(Tokenizer::Impl& impl, const boost::json::value& config);

}  // namespace kite
