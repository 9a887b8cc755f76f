// Tokenizer::from_gguf: reads the tokenizer.ggml.* metadata of a GGUF file into a GgufVocab.
#include <fmt/format.h>

#include "checkpoint/gguf.h"
#include "core/mapped_file.h"
#include "frontend/gguf_vocab.h"
#include "frontend/tokenizer.h"
#include "frontend/tokenizer_impl.h"

namespace kite {

namespace {

// Bounds on the embedded vocabulary, checked on the file's counts and string lengths before any
// copy is made (the parser already bounds array element counts): the tokens and merges together
// may hold as many bytes as a tokenizer.json may have, one token at most kMaxTokenBytes.
constexpr size_t kMaxVocabBytes = kMaxTokenizerFileBytes;  // 128 MiB
constexpr size_t kMaxTokenBytes = size_t{64} << 10;        // 64 KiB

// The strings of an array key, each and in all within the limits above; `total` accumulates
// across calls.
Result<std::vector<std::string_view>> bounded_strings(const GgufFile& f, std::string_view key,
                                                      size_t* total) {
  KITE_ASSIGN_OR_RETURN(auto strings, f.get_array_strings(key));
  for (size_t i = 0; i < strings.size(); ++i) {
    if (strings[i].size() > kMaxTokenBytes) {
      return invalid_argument(fmt::format("{}[{}] is {} bytes, over the limit of {} bytes", key,
                                          i, strings[i].size(), kMaxTokenBytes));
    }
    *total += strings[i].size();
    if (*total > kMaxVocabBytes) {
      return invalid_argument(
          fmt::format("the vocabulary's strings are over the limit of {} bytes at {}[{}]",
                      kMaxVocabBytes, key, i));
    }
  }
  return strings;
}

// A per-token array (scores, token types) must have one entry per token; checked before the
// array is decoded.
Status check_per_token(const GgufFile& f, std::string_view key, size_t num_tokens) {
  KITE_ASSIGN_OR_RETURN(uint64_t count, f.get_array_size(key));
  if (count != num_tokens) {
    return invalid_argument(
        fmt::format("{} has {} entries for {} tokens", key, count, num_tokens));
  }
  return ok_status();
}

// An optional metadata field: absent -> nullopt; present with a bad type -> error.
template <typename T, typename Getter>
Result<std::optional<T>> optional_field(const GgufFile& f, std::string_view key, Getter get) {
  if (!f.has(key)) return std::optional<T>();
  auto v = get(key);
  if (!v.ok()) return v.status();
  return std::optional<T>(static_cast<T>(*v));
}

Result<GgufVocab> read_vocab(const GgufFile& f) {
  GgufVocab v;
  auto str = [&](std::string_view k) { return f.get_string(k); };
  auto integer = [&](std::string_view k) { return f.get_int(k); };
  auto boolean = [&](std::string_view k) { return f.get_bool(k); };
  if (!f.has("tokenizer.ggml.model")) {
    return not_found(f.name() + ": no tokenizer.ggml.model (the file embeds no tokenizer)");
  }
  KITE_ASSIGN_OR_RETURN(std::string_view model, f.get_string("tokenizer.ggml.model"));
  v.model = std::string(model);
  KITE_ASSIGN_OR_RETURN(auto pre, optional_field<std::string>(f, "tokenizer.ggml.pre", str));
  v.pre = pre.value_or("");
  size_t vocab_bytes = 0;
  KITE_ASSIGN_OR_RETURN(auto tokens, bounded_strings(f, "tokenizer.ggml.tokens", &vocab_bytes));
  std::vector<std::string_view> merges;
  if (f.has("tokenizer.ggml.merges")) {
    KITE_ASSIGN_OR_RETURN(merges, bounded_strings(f, "tokenizer.ggml.merges", &vocab_bytes));
  }
  if (f.has("tokenizer.ggml.scores")) {
    KITE_RETURN_IF_ERROR(check_per_token(f, "tokenizer.ggml.scores", tokens.size()));
  }
  if (f.has("tokenizer.ggml.token_type")) {
    KITE_RETURN_IF_ERROR(check_per_token(f, "tokenizer.ggml.token_type", tokens.size()));
  }
  if (f.has("tokenizer.chat_template")) {
    KITE_ASSIGN_OR_RETURN(std::string_view tmpl, f.get_string("tokenizer.chat_template"));
    if (tmpl.size() > kMaxTemplateFileBytes) {
      return invalid_argument(fmt::format(
          "tokenizer.chat_template is {} bytes, over the limit of {} bytes", tmpl.size(),
          kMaxTemplateFileBytes));
    }
  }
  // Every bound holds: copy.
  v.tokens.assign(tokens.begin(), tokens.end());
  v.merges.assign(merges.begin(), merges.end());
  if (f.has("tokenizer.ggml.scores")) {
    KITE_ASSIGN_OR_RETURN(v.scores, f.get_array_f32("tokenizer.ggml.scores"));
  }
  if (f.has("tokenizer.ggml.token_type")) {
    KITE_ASSIGN_OR_RETURN(v.token_types, f.get_array_i32("tokenizer.ggml.token_type"));
  }
  KITE_ASSIGN_OR_RETURN(v.bos_id,
                        optional_field<int64_t>(f, "tokenizer.ggml.bos_token_id", integer));
  KITE_ASSIGN_OR_RETURN(v.eos_id,
                        optional_field<int64_t>(f, "tokenizer.ggml.eos_token_id", integer));
  KITE_ASSIGN_OR_RETURN(v.unk_id,
                        optional_field<int64_t>(f, "tokenizer.ggml.unknown_token_id", integer));
  KITE_ASSIGN_OR_RETURN(v.pad_id,
                        optional_field<int64_t>(f, "tokenizer.ggml.padding_token_id", integer));
  // "seperator" is llama.cpp's spelling of the key.
  KITE_ASSIGN_OR_RETURN(v.sep_id,
                        optional_field<int64_t>(f, "tokenizer.ggml.seperator_token_id", integer));
  KITE_ASSIGN_OR_RETURN(v.cls_id,
                        optional_field<int64_t>(f, "tokenizer.ggml.cls_token_id", integer));
  KITE_ASSIGN_OR_RETURN(v.mask_id,
                        optional_field<int64_t>(f, "tokenizer.ggml.mask_token_id", integer));
  KITE_ASSIGN_OR_RETURN(v.add_bos,
                        optional_field<bool>(f, "tokenizer.ggml.add_bos_token", boolean));
  KITE_ASSIGN_OR_RETURN(v.add_eos,
                        optional_field<bool>(f, "tokenizer.ggml.add_eos_token", boolean));
  KITE_ASSIGN_OR_RETURN(v.add_space_prefix,
                        optional_field<bool>(f, "tokenizer.ggml.add_space_prefix", boolean));
  KITE_ASSIGN_OR_RETURN(auto tmpl, optional_field<std::string>(f, "tokenizer.chat_template", str));
  v.chat_template = tmpl;
  return v;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf_vocab(const GgufVocab& vocab) {
  auto impl = build_from_gguf_vocab(vocab);
  if (!impl.ok()) return impl.status();
  return std::make_unique<Tokenizer>(std::move(impl).value());
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& gguf) {
  auto vocab = read_vocab(gguf);
  if (!vocab.ok()) return vocab.status().with_context(gguf.name());
  auto tok = from_gguf_vocab(*vocab);
  if (!tok.ok()) return tok.status().with_context(gguf.name());
  return tok;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf_file(const std::string& path) {
  KITE_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  return from_gguf(f);
}

}  // namespace kite
