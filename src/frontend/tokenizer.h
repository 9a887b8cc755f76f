// Tokenizer: Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) and GGUF-embedded
// vocabularies, with the token ids and text of Hugging Face `tokenizers` (see docs/tokenizer.md
// for what is supported and how parity is tested).
//
// Thread safety: a loaded Tokenizer is immutable; encode/decode may run concurrently from any
// number of threads (the BPE word cache is per thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kite/status.h"

namespace kite {

class GgufFile;
struct GgufVocab;

class Tokenizer {
 public:
  // dir_or_file: a model directory (tokenizer.json, plus tokenizer_config.json and
  // chat_template.jinja when present) or the path of a tokenizer.json.
  // Errors: kNotFound (no tokenizer.json), kInvalidArgument (malformed or inconsistent file, the
  // message names the field), kUnimplemented (a component kite does not support).
  static Result<std::unique_ptr<Tokenizer>> from_pretrained(const std::string& dir_or_file);
  // tokenizer_config_json may be empty.
  static Result<std::unique_ptr<Tokenizer>> from_json(std::string_view tokenizer_json,
                                                      std::string_view tokenizer_config_json);
  // The tokenizer embedded in a GGUF file (tokenizer.ggml.* metadata; see gguf_vocab.h).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& gguf);
  // Opens a .gguf file and reads only its tokenizer.
  static Result<std::unique_ptr<Tokenizer>> from_gguf_file(const std::string& path);
  static Result<std::unique_ptr<Tokenizer>> from_gguf_vocab(const GgufVocab& vocab);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`. Text may hold any bytes: invalid UTF-8 is first repaired the way Python's
  // bytes.decode("utf-8", "replace") does (each maximal invalid subpart -> U+FFFD), so kite's ids
  // equal tokenizers' ids for that repaired string.
  // add_special_tokens: apply the post-processor (e.g. BOS). parse_special: split out special
  // added tokens written in the text (off = tokenizers' encode_special_tokens=True).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true,
                              bool parse_special = true) const;
  // Text of `ids` (tokenizers' decode). Ids with no token are skipped; bytes that do not form
  // UTF-8 become U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Highest id + 1, added tokens included.
  int64_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The raw vocabulary piece ("Ġthe", "▁the", "<0x0A>", "<|eot_id|>"); "" when no such id.
  std::string id_to_token(int32_t id) const;
  // True for added tokens flagged special. decode(skip_special_tokens=true) skips exactly what
  // tokenizers skips: tokens whose string is the content of a special token (so a `normalized`
  // special token whose normalized string differs, as in TinyStories, is kept).
  bool is_special(int32_t id) const;
  // Ids of every special added token, sorted.
  std::vector<int32_t> special_ids() const;

  // From tokenizer_config.json (or GGUF metadata); nullopt / "" when not defined.
  std::optional<int32_t> bos_token_id() const;
  std::optional<int32_t> eos_token_id() const;
  std::optional<int32_t> pad_token_id() const;
  std::optional<int32_t> unk_token_id() const;
  std::string bos_token() const;
  std::string eos_token() const;
  std::string pad_token() const;
  std::string unk_token() const;
  // add_bos_token / add_eos_token as written in tokenizer_config.json. For tokenizer.json they are
  // informational: its post-processor decides what encode() adds, as in transformers 5, which
  // drops these flags when a tokenizer.json exists. GGUF vocabularies apply them.
  std::optional<bool> add_bos_token() const;
  std::optional<bool> add_eos_token() const;
  // tokenizer_config.json's split_special_tokens (false when absent): callers that follow
  // transformers pass parse_special = !split_special_tokens().
  bool split_special_tokens() const;

  // The default chat template: chat_template.jinja, else tokenizer_config.json's chat_template
  // (a string, or the entry named "default" of a list).
  const std::optional<std::string>& chat_template() const;
  // Every named template (a list-valued chat_template, e.g. "default", "tool_use", "rag").
  const std::map<std::string, std::string>& chat_templates() const;

  // The BOS/EOS-like ids encode(add_special_tokens=true) puts before / after the text.
  std::vector<int32_t> added_prefix_ids() const;
  std::vector<int32_t> added_suffix_ids() const;

  struct Impl;
  // Internal: builders in this folder construct a Tokenizer from a ready Impl.
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kite
