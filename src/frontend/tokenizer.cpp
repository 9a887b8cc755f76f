#include "frontend/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "core/json_util.h"
#include "core/mapped_file.h"
#include "frontend/tokenizer_impl.h"
#include "frontend/utf8.h"

namespace kite {

namespace fs = std::filesystem;

void Tokenizer::Impl::finalize() {
  added.build(normalizer.get());
  if (pre_tokenizer && pre_tokenizer->can_defer_byte_mapping() && model->enable_raw_bytes()) {
    pre_tokenizer->defer_byte_mapping();
  }
}

void Tokenizer::Impl::encode(std::string_view text, bool add_special_tokens, bool parse_special,
                             std::vector<int32_t>& out) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::lossy(text);
    text = repaired;
  }
  thread_local std::vector<AddedSplit> outer;
  thread_local std::vector<AddedSplit> inner;
  thread_local std::string normalized;
  thread_local PreTokenizedString pts;
  outer.clear();
  added.split(text, /*normalized=*/false, parse_special, outer);
  for (const AddedSplit& s1 : outer) {
    if (s1.id >= 0) {
      out.push_back(s1.id);
      continue;
    }
    if (s1.end <= s1.begin) continue;
    normalized.assign(text.substr(s1.begin, s1.end - s1.begin));
    if (normalizer) normalizer->normalize(normalized);
    inner.clear();
    added.split(normalized, /*normalized=*/true, parse_special, inner);
    for (const AddedSplit& s2 : inner) {
      if (s2.id >= 0) {
        out.push_back(s2.id);
        continue;
      }
      if (s2.end <= s2.begin) continue;
      pts.buffer.assign(std::string_view(normalized).substr(s2.begin, s2.end - s2.begin));
      pts.pieces.assign(1, PreToken{0, pts.buffer.size(), s1.begin == 0 && s2.begin == 0});
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(pts);
      for (const PreToken& p : pts.pieces) {
        if (p.end > p.begin) model->tokenize(pts.text(p), out);
      }
    }
  }
  if (add_special_tokens && post_processor) post_processor->process(out);
}

bool Tokenizer::Impl::token_of(int32_t id, std::string_view* out) const {
  if (const std::string* c = added.content(id)) {
    *out = *c;
    return true;
  }
  if (const std::string_view* t = model->vocab().token(id)) {
    *out = *t;
    return true;
  }
  return false;
}

bool Tokenizer::Impl::skipped_by_decode(int32_t id) const {
  std::string_view t;
  return token_of(id, &t) && added.is_special_content(t);
}

std::string Tokenizer::Impl::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    std::string_view t;
    if (!token_of(id, &t)) continue;
    if (skip_special_tokens && added.is_special_content(t)) continue;
    tokens.emplace_back(t);
  }
  if (decoder) {
    decoder->decode_chain(tokens);
    std::string out;
    for (const std::string& t : tokens) out.append(t);
    return out;
  }
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out.append(tokens[i]);
  }
  return out;
}

std::optional<int32_t> Tokenizer::Impl::id_of(const std::optional<std::string>& token) const {
  if (!token) return std::nullopt;
  int32_t id = added.token_to_id(*token, *model);
  if (id < 0) return std::nullopt;
  return id;
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string_view tokenizer_json,
                                                        std::string_view tokenizer_config_json) {
  KITE_ASSIGN_OR_RETURN(boost::json::value root, json::parse(tokenizer_json, "tokenizer.json"));
  auto impl = build_from_tokenizer_json(root);
  if (!impl.ok()) return impl.status().with_context("tokenizer.json");
  if (!tokenizer_config_json.empty()) {
    KITE_ASSIGN_OR_RETURN(boost::json::value cfg,
                          json::parse(tokenizer_config_json, "tokenizer_config.json"));
    Status st = apply_tokenizer_config(**impl, cfg);
    if (!st.ok()) return st.with_context("tokenizer_config.json");
  }
  return std::make_unique<Tokenizer>(std::move(impl).value());
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_pretrained(const std::string& dir_or_file) {
  std::error_code ec;
  fs::path path(dir_or_file);
  fs::path json_path = path;
  fs::path dir = path.parent_path();
  if (fs::is_directory(path, ec)) {
    json_path = path / "tokenizer.json";
    dir = path;
  }
  if (!fs::exists(json_path, ec)) {
    std::string hint;
    if (fs::exists(dir / "vocab.json", ec) || fs::exists(dir / "tokenizer.model", ec)) {
      hint =
          " (the directory has only a slow-tokenizer vocabulary; save a tokenizer.json with "
          "transformers' tokenizer.save_pretrained())";
    }
    return not_found("no tokenizer.json at " + json_path.string() + hint);
  }
  KITE_ASSIGN_OR_RETURN(std::string text, read_file(json_path.string(), kMaxTokenizerFileBytes));
  std::string config;
  fs::path config_path = dir / "tokenizer_config.json";
  if (fs::exists(config_path, ec)) {
    KITE_ASSIGN_OR_RETURN(config, read_file(config_path.string(), kMaxConfigFileBytes));
  }
  auto tok = from_json(text, config);
  if (!tok.ok()) return tok.status().with_context(json_path.string());
  // transformers saves the template beside the config; it takes priority over the config's.
  fs::path jinja = dir / "chat_template.jinja";
  if (fs::exists(jinja, ec)) {
    KITE_ASSIGN_OR_RETURN(std::string tmpl, read_file(jinja.string(), kMaxTemplateFileBytes));
    (*tok)->impl_->chat_template = tmpl;
    (*tok)->impl_->chat_templates["default"] = tmpl;
  }
  return tok;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens,
                                       bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  impl_->encode(text, add_special_tokens, parse_special, ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

int64_t Tokenizer::vocab_size() const {
  return std::max(impl_->model->vocab().id_end(), impl_->added.id_end());
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  int32_t id = impl_->added.token_to_id(token, *impl_->model);
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  std::string_view t;
  return impl_->token_of(id, &t) ? std::string(t) : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* t = impl_->added.token(id);
  return t != nullptr && t->special;
}

std::vector<int32_t> Tokenizer::special_ids() const {
  std::vector<int32_t> ids;
  for (const auto& [id, tok] : impl_->added.by_id()) {
    if (is_special(id)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::optional<int32_t> Tokenizer::bos_token_id() const { return impl_->id_of(impl_->bos_token); }
std::optional<int32_t> Tokenizer::eos_token_id() const { return impl_->id_of(impl_->eos_token); }
std::optional<int32_t> Tokenizer::pad_token_id() const { return impl_->id_of(impl_->pad_token); }
std::optional<int32_t> Tokenizer::unk_token_id() const { return impl_->id_of(impl_->unk_token); }
std::string Tokenizer::bos_token() const { return impl_->bos_token.value_or(""); }
std::string Tokenizer::eos_token() const { return impl_->eos_token.value_or(""); }
std::string Tokenizer::pad_token() const { return impl_->pad_token.value_or(""); }
std::string Tokenizer::unk_token() const { return impl_->unk_token.value_or(""); }
std::optional<bool> Tokenizer::add_bos_token() const { return impl_->add_bos_token; }
std::optional<bool> Tokenizer::add_eos_token() const { return impl_->add_eos_token; }
bool Tokenizer::split_special_tokens() const { return impl_->split_special_tokens; }
const std::optional<std::string>& Tokenizer::chat_template() const { return impl_->chat_template; }
const std::map<std::string, std::string>& Tokenizer::chat_templates() const {
  return impl_->chat_templates;
}

std::vector<int32_t> Tokenizer::added_prefix_ids() const {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
  if (impl_->post_processor) impl_->post_processor->added_ids(prefix, suffix);
  return prefix;
}

std::vector<int32_t> Tokenizer::added_suffix_ids() const {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
  if (impl_->post_processor) impl_->post_processor->added_ids(prefix, suffix);
  return suffix;
}

}  // namespace kite
