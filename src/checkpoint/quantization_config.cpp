// config.json's quantization_config -> QuantizationConfig (the two FP8 formats checkpoints are
// published in; see config.h).
#include <fmt/format.h>

#include <boost/json.hpp>
#include <regex>

#include "checkpoint/config.h"
#include "core/json_util.h"

namespace kite {
namespace {

namespace bj = boost::json;

constexpr std::string_view kSupported =
    "supported: quant_method 'fp8', and 'compressed-tensors' with format 'float-quantized' "
    "(FP8 E4M3 weights) and/or an 8-bit float per-tensor kv_cache_scheme";

Status unsupported(std::string what) {
  return unimplemented(fmt::format("quantization_config: {} ({})", what, kSupported));
}

Status malformed(std::string what) {
  return invalid_argument(fmt::format("quantization_config: {}", what));
}

Result<std::vector<std::string>> string_list(const bj::object& o, std::string_view key) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return out;
  if (!it->value().is_array()) return malformed(fmt::format("'{}' must be a list", key));
  for (const bj::value& v : it->value().get_array()) {
    if (!v.is_string()) return malformed(fmt::format("'{}' must be a list of strings", key));
    out.emplace_back(v.get_string());
  }
  return out;
}

// HF's "fp8" method (FineGrainedFP8, vLLM's Fp8Config): weight_block_size [b0, b1] gives block
// scales in weight_scale_inv; without it one weight_scale per tensor.
Result<QuantizationConfig> parse_fp8(const bj::object& o) {
  QuantizationConfig q;
  q.method = "fp8";
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> fmt_name, json::get_string(o, "fmt"));
  if (fmt_name && *fmt_name != "e4m3") {
    return unsupported(fmt::format("fp8 format '{}' (e4m3 is)", *fmt_name));
  }
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> scheme,
                        json::get_string(o, "activation_scheme"));
  const std::string act = scheme.value_or("dynamic");
  if (act != "dynamic" && act != "static") {
    return malformed(fmt::format("activation_scheme must be dynamic or static, got '{}'", act));
  }
  auto block = o.find("weight_block_size");
  if (block != o.end() && !block->value().is_null()) {
    const bj::value& v = block->value();
    if (!v.is_array() || v.get_array().size() != 2 || !v.get_array()[0].is_int64() ||
        !v.get_array()[1].is_int64() || v.get_array()[0].get_int64() <= 0 ||
        v.get_array()[1].get_int64() <= 0) {
      return malformed("weight_block_size must be two positive integers");
    }
    if (act != "dynamic") return unsupported("block-scaled fp8 with static activation scales");
    q.scheme = QuantScheme::kFp8Block;
    q.block_rows = v.get_array()[0].get_int64();
    q.block_cols = v.get_array()[1].get_int64();
    q.weight_scale_name = "weight_scale_inv";
    // Block-scaled checkpoints quantize activations per token group at run time.
    q.activations = ActivationQuant::kDynamicPerToken;
  } else {
    q.scheme = QuantScheme::kFp8PerTensor;
    q.weight_scale_name = "weight_scale";
    q.activations =
        act == "static" ? ActivationQuant::kStaticPerTensor : ActivationQuant::kDynamicPerTensor;
  }
  // The fp8 method never quantizes the LM head (transformers' default modules_to_not_convert,
  // vLLM's Fp8Config).
  q.ignore.push_back("lm_head");
  for (std::string_view key : {"modules_to_not_convert", "ignored_layers"}) {
    KITE_ASSIGN_OR_RETURN(std::vector<std::string> names, string_list(o, key));
    q.ignore.insert(q.ignore.end(), names.begin(), names.end());
  }
  return q;
}

// compressed-tensors' kv_cache_scheme: static 8-bit float scales, one per tensor (vLLM's
// supported case; its k_scale / v_scale tensors are read by models/kv_cache_scales.h).
Status parse_kv_cache_scheme(const bj::value& v) {
  if (!v.is_object()) return malformed("'kv_cache_scheme' must be an object");
  const bj::object& s = v.get_object();
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> bits, json::get_int(s, "num_bits"));
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> type, json::get_string(s, "type"));
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> strategy, json::get_string(s, "strategy"));
  KITE_ASSIGN_OR_RETURN(std::optional<bool> dynamic, json::get_bool(s, "dynamic"));
  if (bits.value_or(0) != 8 || type.value_or("") != "float") {
    return unsupported(fmt::format("kv_cache_scheme of {}-bit {} values (8-bit float is)",
                                   bits.value_or(0), type.value_or("?")));
  }
  if (strategy.value_or("tensor") != "tensor" || dynamic.value_or(false)) {
    return unsupported(fmt::format("kv_cache_scheme strategy '{}'{} (static per-tensor is)",
                                   strategy.value_or("tensor"),
                                   dynamic.value_or(false) ? ", dynamic" : ""));
  }
  return ok_status();
}

// compressed-tensors (llm-compressor): one config group targeting Linear with 8-bit float
// weights (strategy tensor/channel/block) and optional 8-bit float input activations; and/or a
// kv_cache_scheme (a checkpoint with only FP8 KV scales keeps its float weights).
Result<QuantizationConfig> parse_compressed_tensors(const bj::object& o) {
  QuantizationConfig q;
  q.method = "compressed-tensors";
  auto kv_it = o.find("kv_cache_scheme");
  if (kv_it != o.end() && !kv_it->value().is_null()) {
    KITE_RETURN_IF_ERROR(parse_kv_cache_scheme(kv_it->value()));
    q.kv_cache_scales = true;
  }
  auto groups_it = o.find("config_groups");
  const bool no_groups = groups_it == o.end() || groups_it->value().is_null() ||
                         (groups_it->value().is_object() && groups_it->value().get_object().empty());
  if (no_groups && q.kv_cache_scales) return q;
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> format, json::get_string(o, "format"));
  if (format.value_or("") != "float-quantized") {
    return unsupported(fmt::format("compressed-tensors format '{}'", format.value_or("")));
  }
  if (groups_it == o.end() || !groups_it->value().is_object() ||
      groups_it->value().get_object().empty()) {
    return malformed("compressed-tensors needs a non-empty 'config_groups' object");
  }
  const bj::object& groups = groups_it->value().get_object();
  if (groups.size() != 1) {
    return unsupported(fmt::format("{} config groups (one group is)", groups.size()));
  }
  const bj::value& gv = groups.begin()->value();
  if (!gv.is_object()) return malformed("a config group must be an object");
  const bj::object& g = gv.get_object();
  KITE_ASSIGN_OR_RETURN(std::vector<std::string> targets, string_list(g, "targets"));
  if (targets != std::vector<std::string>{"Linear"}) {
    return unsupported("config group targets other than [\"Linear\"]");
  }
  auto weights_it = g.find("weights");
  if (weights_it == g.end() || !weights_it->value().is_object()) {
    return malformed("the config group has no 'weights' object");
  }
  const bj::object& w = weights_it->value().get_object();
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> bits, json::get_int(w, "num_bits"));
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> type, json::get_string(w, "type"));
  if (bits.value_or(0) != 8 || type.value_or("") != "float") {
    return unsupported(fmt::format("{}-bit {} weights", bits.value_or(0), type.value_or("?")));
  }
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> strategy, json::get_string(w, "strategy"));
  q.weight_scale_name = "weight_scale";
  if (strategy == "tensor") {
    q.scheme = QuantScheme::kFp8PerTensor;
  } else if (strategy == "channel") {
    q.scheme = QuantScheme::kFp8PerChannel;
  } else if (strategy == "block") {
    q.scheme = QuantScheme::kFp8Block;
    auto bs = w.find("block_structure");
    if (bs == w.end() || !bs->value().is_array() || bs->value().get_array().size() != 2 ||
        !bs->value().get_array()[0].is_int64() || !bs->value().get_array()[1].is_int64() ||
        bs->value().get_array()[0].get_int64() <= 0 ||
        bs->value().get_array()[1].get_int64() <= 0) {
      return malformed("strategy 'block' needs block_structure: two positive integers");
    }
    q.block_rows = bs->value().get_array()[0].get_int64();
    q.block_cols = bs->value().get_array()[1].get_int64();
  } else {
    return unsupported(
        fmt::format("weight strategy '{}' (tensor, channel and block are)", strategy.value_or("")));
  }
  auto act_it = g.find("input_activations");
  if (act_it == g.end() || act_it->value().is_null()) {
    q.activations = ActivationQuant::kNone;
  } else {
    if (!act_it->value().is_object()) return malformed("'input_activations' must be an object");
    const bj::object& a = act_it->value().get_object();
    KITE_ASSIGN_OR_RETURN(std::optional<int64_t> abits, json::get_int(a, "num_bits"));
    KITE_ASSIGN_OR_RETURN(std::optional<std::string> atype, json::get_string(a, "type"));
    if (abits.value_or(0) != 8 || atype.value_or("") != "float") {
      return unsupported(
          fmt::format("{}-bit {} activations", abits.value_or(0), atype.value_or("?")));
    }
    KITE_ASSIGN_OR_RETURN(std::optional<bool> dynamic, json::get_bool(a, "dynamic"));
    KITE_ASSIGN_OR_RETURN(std::optional<std::string> astrat, json::get_string(a, "strategy"));
    const std::string s = astrat.value_or("tensor");
    if (dynamic.value_or(false)) {
      if (s == "token") {
        q.activations = ActivationQuant::kDynamicPerToken;
      } else if (s == "tensor") {
        q.activations = ActivationQuant::kDynamicPerTensor;
      } else {
        return unsupported(fmt::format("dynamic activation strategy '{}'", s));
      }
    } else {
      if (s != "tensor") return unsupported(fmt::format("static activation strategy '{}'", s));
      q.activations = ActivationQuant::kStaticPerTensor;
    }
  }
  KITE_ASSIGN_OR_RETURN(q.ignore, string_list(o, "ignore"));
  return q;
}

}  // namespace

std::string_view quant_scheme_name(QuantScheme s) {
  switch (s) {
    case QuantScheme::kNone:
      return "none";
    case QuantScheme::kFp8PerTensor:
      return "fp8 per-tensor";
    case QuantScheme::kFp8PerChannel:
      return "fp8 per-channel";
    case QuantScheme::kFp8Block:
      return "fp8 block";
  }
  return "?";
}

bool QuantizationConfig::quantizes(std::string_view module) const {
  if (!enabled()) return false;
  for (const std::string& pattern : ignore) {
    if (pattern.rfind("re:", 0) == 0) {
      try {
        if (std::regex_match(module.begin(), module.end(), std::regex(pattern.substr(3)))) {
          return false;
        }
      } catch (const std::regex_error&) {
        // An invalid pattern matches nothing (parse_quantization_config rejected it already).
      }
    } else if (pattern == module) {
      return false;
    }
  }
  return true;
}

Result<QuantizationConfig> parse_quantization_config(std::string_view text) {
  KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(text, "quantization_config"));
  if (!v.is_object()) {
    return malformed(fmt::format("must be a JSON object, got {}", json::kind_name(v)));
  }
  const bj::object& o = v.get_object();
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> method, json::get_string(o, "quant_method"));
  if (!method) return malformed("missing field 'quant_method'");
  Result<QuantizationConfig> q =
      *method == "fp8" ? parse_fp8(o)
      : *method == "compressed-tensors"
          ? parse_compressed_tensors(o)
          : Result<QuantizationConfig>(unsupported(fmt::format("quant_method '{}'", *method)));
  if (!q.ok()) return q;
  for (const std::string& pattern : q->ignore) {
    if (pattern.rfind("re:", 0) != 0) continue;
    try {
      std::regex re(pattern.substr(3));
    } catch (const std::regex_error& e) {
      return malformed(
          fmt::format("ignore pattern '{}' is not a valid regex: {}", pattern, e.what()));
    }
  }
  return q;
}

}  // namespace kite
