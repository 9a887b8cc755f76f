// Reading tokenizer.json and tokenizer_config.json into a Tokenizer::Impl.
#include "frontend/json_reader.h"
#include "frontend/tokenizer_impl.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

using tokjson::JsonObj;

Result<AddedToken> read_added_token(const boost::json::value& v, const std::string& path) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(v, path));
  AddedToken t;
  KITE_ASSIGN_OR_RETURN(t.content, o.str("content"));
  if (!utf8::is_valid(t.content)) return o.error("content is not valid UTF-8");
  KITE_ASSIGN_OR_RETURN(t.special, o.bool_or("special", false));
  KITE_ASSIGN_OR_RETURN(t.single_word, o.bool_or("single_word", false));
  KITE_ASSIGN_OR_RETURN(t.lstrip, o.bool_or("lstrip", false));
  KITE_ASSIGN_OR_RETURN(t.rstrip, o.bool_or("rstrip", false));
  KITE_ASSIGN_OR_RETURN(t.normalized, o.bool_or("normalized", !t.special));
  return t;
}

// A special token entry of tokenizer_config.json: "<s>", {"content": "<s>", ...} or null.
Result<std::optional<std::string>> config_token(const JsonObj& o, std::string_view key) {
  const boost::json::value* v = o.get(key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(std::string(v->get_string()));
  if (v->is_object()) {
    KITE_ASSIGN_OR_RETURN(JsonObj t, JsonObj::of(*v, o.child_path(key)));
    KITE_ASSIGN_OR_RETURN(std::string content, t.str("content"));
    return std::optional<std::string>(std::move(content));
  }
  return invalid_argument(o.child_path(key) +
                          " must be a string or an object with 'content', got " +
                          std::string(tokjson::kind_name(*v)));
}

Result<std::optional<bool>> config_bool(const JsonObj& o, std::string_view key) {
  const boost::json::value* v = o.get(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_bool()) {
    return invalid_argument(o.child_path(key) + " must be a bool, got " +
                            std::string(tokjson::kind_name(*v)));
  }
  return std::optional<bool>(v->get_bool());
}

}  // namespace

Result<std::unique_ptr<Tokenizer::Impl>> build_from_tokenizer_json(const boost::json::value& root) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(root, ""));
  if (o.has("version")) {
    KITE_ASSIGN_OR_RETURN(std::string version, o.str("version"));
    if (version != "1.0") return o.error("unknown tokenizer.json version '" + version + "'");
  }
  auto impl = std::make_unique<Tokenizer::Impl>();
  const boost::json::value* model = o.get("model");
  if (model == nullptr) return invalid_argument("'model' is missing");
  KITE_ASSIGN_OR_RETURN(impl->model, Model::from_json(*model, "model"));
  if (const auto* v = o.get("normalizer")) {
    KITE_ASSIGN_OR_RETURN(impl->normalizer, Normalizer::from_json(*v, "normalizer"));
  }
  if (const auto* v = o.get("pre_tokenizer")) {
    KITE_ASSIGN_OR_RETURN(impl->pre_tokenizer, PreTokenizer::from_json(*v, "pre_tokenizer"));
  }
  if (const auto* v = o.get("post_processor")) {
    KITE_ASSIGN_OR_RETURN(impl->post_processor, PostProcessor::from_json(*v, "post_processor"));
  }
  if (const auto* v = o.get("decoder")) {
    KITE_ASSIGN_OR_RETURN(impl->decoder, Decoder::from_json(*v, "decoder"));
  }
  if (const auto* v = o.get("added_tokens")) {
    if (!v->is_array()) {
      return invalid_argument("added_tokens must be an array, got " +
                              std::string(tokjson::kind_name(*v)));
    }
    const auto& arr = v->get_array();
    for (size_t i = 0; i < arr.size(); ++i) {
      std::string path = "added_tokens[" + std::to_string(i) + "]";
      KITE_ASSIGN_OR_RETURN(AddedToken t, read_added_token(arr[i], path));
      // The "id" field is informative only: tokenizers assigns ids itself (existing vocabulary
      // id of the content, else the next free id) and so does kite.
      if (arr[i].get_object().if_contains("id") == nullptr)
        return invalid_argument(path + ".id is missing");
      impl->added.add(t, *impl->model);
    }
  }
  impl->finalize();
  return impl;
}

Status apply_tokenizer_config(Tokenizer::Impl& impl, const boost::json::value& config) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(config, ""));
  KITE_ASSIGN_OR_RETURN(impl.bos_token, config_token(o, "bos_token"));
  KITE_ASSIGN_OR_RETURN(impl.eos_token, config_token(o, "eos_token"));
  KITE_ASSIGN_OR_RETURN(impl.pad_token, config_token(o, "pad_token"));
  KITE_ASSIGN_OR_RETURN(impl.unk_token, config_token(o, "unk_token"));
  KITE_ASSIGN_OR_RETURN(impl.add_bos_token, config_bool(o, "add_bos_token"));
  KITE_ASSIGN_OR_RETURN(impl.add_eos_token, config_bool(o, "add_eos_token"));
  KITE_ASSIGN_OR_RETURN(impl.split_special_tokens, o.bool_or("split_special_tokens", false));
  if (const boost::json::value* ct = o.get("chat_template")) {
    if (ct->is_string()) {
      impl.chat_template = std::string(ct->get_string());
      impl.chat_templates["default"] = *impl.chat_template;
    } else if (ct->is_array()) {
      const auto& arr = ct->get_array();
      for (size_t i = 0; i < arr.size(); ++i) {
        std::string path = "chat_template[" + std::to_string(i) + "]";
        KITE_ASSIGN_OR_RETURN(JsonObj t, JsonObj::of(arr[i], path));
        KITE_ASSIGN_OR_RETURN(std::string name, t.str("name"));
        KITE_ASSIGN_OR_RETURN(std::string tmpl, t.str("template"));
        impl.chat_templates[name] = tmpl;
      }
      auto it = impl.chat_templates.find("default");
      if (it != impl.chat_templates.end()) impl.chat_template = it->second;
    } else {
      return invalid_argument("chat_template must be a string or a list of {name, template}, got " +
                              std::string(tokjson::kind_name(*ct)));
    }
  }
  return ok_status();
}

}  // namespace kite
