// GgufVocab: the tokenizer a GGUF file embeds (its `tokenizer.ggml.*` metadata), independent of
// the file parser. Tokenizer::from_gguf_vocab() rebuilds from it the Hugging Face pipeline the
// vocabulary was converted from, so GGUF models tokenize like their tokenizer.json:
//   model "llama" (SentencePiece BPE): merges from the piece scores (as transformers' converter
//       does), byte fallback, Prepend("▁") when add_space_prefix, Replace(" " -> "▁");
//   model "gpt2" (byte-level BPE): the pre-tokenizer of `tokenizer.ggml.pre` ("llama-bpe",
//       "qwen2", "deepseek-llm", "falcon", "starcoder", ...), ignore_merges for Llama-3;
//   model "bert" (WordPiece): BertNormalizer + BertPreTokenizer, vocabulary mapped back from
//       llama.cpp's phantom-space form ("▁word" -> "word", "piece" -> "##piece").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kite {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum GgufTokenType : int32_t {
  kGgufTokenUndefined = 0,
  kGgufTokenNormal = 1,
  kGgufTokenUnknown = 2,
  kGgufTokenControl = 3,
  kGgufTokenUserDefined = 4,
  kGgufTokenUnused = 5,
  kGgufTokenByte = 6,
};

struct GgufVocab {
  std::string model;                 // tokenizer.ggml.model: "llama", "gpt2", "bert", ...
  std::string pre;                   // tokenizer.ggml.pre ("" when absent)
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens; id = index
  std::vector<float> scores;         // tokenizer.ggml.scores (empty when absent)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (empty when absent)
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "left right"
  // Special token ids; values outside [0, tokens.size()) mean "none" (files write -1 or
  // 0xFFFFFFFF).
  std::optional<int64_t> bos_id;
  std::optional<int64_t> eos_id;
  std::optional<int64_t> unk_id;
  std::optional<int64_t> pad_id;
  std::optional<int64_t> sep_id;
  std::optional<int64_t> cls_id;
  std::optional<int64_t> mask_id;
  std::optional<bool> add_bos;               // tokenizer.ggml.add_bos_token
  std::optional<bool> add_eos;               // tokenizer.ggml.add_eos_token
  std::optional<bool> add_space_prefix;      // tokenizer.ggml.add_space_prefix
  std::optional<std::string> chat_template;  // tokenizer.chat_template
};

}  // namespace kite
