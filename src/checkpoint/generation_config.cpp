#include "checkpoint/generation_config.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "core/json_util.h"

namespace kite {
namespace {

namespace bj = boost::json;

Result<std::vector<int32_t>> token_ids(const bj::object& o, std::string_view key) {
  std::vector<int32_t> out;
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return out;
  auto one = [&](const bj::value& v) -> Status {
    if (v.is_int64() && v.get_int64() >= 0 && v.get_int64() <= INT32_MAX) {
      out.push_back(static_cast<int32_t>(v.get_int64()));
      return ok_status();
    }
    return invalid_argument(fmt::format(
        "field '{}' must be a token id or a list of token ids, got {}", key, json::kind_name(v)));
  };
  if (it->value().is_array()) {
    for (const bj::value& v : it->value().get_array()) KITE_RETURN_IF_ERROR(one(v));
  } else {
    KITE_RETURN_IF_ERROR(one(it->value()));
  }
  return out;
}

Result<GenerationConfig> parse_object(const bj::object& o) {
  GenerationConfig g;
  KITE_ASSIGN_OR_RETURN(g.do_sample, json::get_bool(o, "do_sample"));
  KITE_ASSIGN_OR_RETURN(g.temperature, json::get_double(o, "temperature"));
  KITE_ASSIGN_OR_RETURN(g.top_p, json::get_double(o, "top_p"));
  KITE_ASSIGN_OR_RETURN(g.top_k, json::get_int(o, "top_k"));
  KITE_ASSIGN_OR_RETURN(g.min_p, json::get_double(o, "min_p"));
  KITE_ASSIGN_OR_RETURN(g.repetition_penalty, json::get_double(o, "repetition_penalty"));
  KITE_ASSIGN_OR_RETURN(g.max_new_tokens, json::get_int(o, "max_new_tokens"));
  KITE_ASSIGN_OR_RETURN(std::vector<int32_t> bos, token_ids(o, "bos_token_id"));
  if (!bos.empty()) g.bos_token_id = bos[0];
  KITE_ASSIGN_OR_RETURN(g.eos_token_ids, token_ids(o, "eos_token_id"));
  KITE_ASSIGN_OR_RETURN(std::vector<int32_t> pad, token_ids(o, "pad_token_id"));
  if (!pad.empty()) g.pad_token_id = pad[0];
  if (g.temperature && *g.temperature < 0) {
    return invalid_argument(fmt::format("temperature must be >= 0, got {}", *g.temperature));
  }
  if (g.top_p && !(*g.top_p > 0 && *g.top_p <= 1)) {
    return invalid_argument(fmt::format("top_p must be in (0, 1], got {}", *g.top_p));
  }
  if (g.repetition_penalty && !(*g.repetition_penalty > 0)) {
    return invalid_argument(
        fmt::format("repetition_penalty must be positive, got {}", *g.repetition_penalty));
  }
  return g;
}

}  // namespace

Result<GenerationConfig> parse_generation_config(std::string_view json_text) {
  KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(json_text, "generation_config.json"));
  if (!v.is_object()) {
    return invalid_argument(
        fmt::format("generation_config.json: must be a JSON object, got {}", json::kind_name(v)));
  }
  auto g = parse_object(v.get_object());
  if (!g.ok()) return g.status().with_context("generation_config.json");
  return g;
}

}  // namespace kite
