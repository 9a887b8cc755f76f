#include "bench/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <limits>
#include <string_view>

#include "bench/arrivals.h"
#include "core/json_util.h"

namespace kite::bench {

namespace bj = boost::json;

extern const std::string_view kW4ChatPromptsJson;  // generated from data/w4_chat_prompts.json

namespace {

Status check_positive(int64_t v, std::string_view flag) {
  if (v <= 0) return invalid_argument(fmt::format("{} must be > 0, got {}", flag, v));
  return ok_status();
}

// Lengths uniform over [floor(n (1 - r)), ceil(n (1 + r))], at least `min_len`.
int64_t ranged_length(Rng& rng, int64_t n, double r, int64_t min_len) {
  const int64_t lo = std::max<int64_t>(min_len, static_cast<int64_t>(std::floor(n * (1.0 - r))));
  const int64_t hi = std::max<int64_t>(lo, static_cast<int64_t>(std::ceil(n * (1.0 + r))));
  return rng.uniform_int(lo, hi);
}

}  // namespace

Result<std::vector<PromptSpec>> random_dataset(const RandomDatasetConfig& c) {
  KITE_RETURN_IF_ERROR(check_positive(c.num_prompts, "--num-prompts"));
  KITE_RETURN_IF_ERROR(check_positive(c.input_len, "--random-input-len"));
  KITE_RETURN_IF_ERROR(check_positive(c.output_len, "--random-output-len"));
  if (c.vocab_size <= 0) {
    return invalid_argument(
        "random prompts need the vocabulary size (--random-vocab-size, or a local model "
        "directory with config.json)");
  }
  if (c.vocab_size > std::numeric_limits<int32_t>::max()) {
    return invalid_argument(fmt::format("vocabulary size {} is too large", c.vocab_size));
  }
  if (!(c.range_ratio >= 0.0 && c.range_ratio < 1.0)) {
    return invalid_argument(
        fmt::format("--random-range-ratio must be in [0, 1), got {}", c.range_ratio));
  }
  if (c.prefix_len < 0) {
    return invalid_argument(fmt::format("--random-prefix-len must be >= 0, got {}", c.prefix_len));
  }
  std::vector<int32_t> allowed_excl = c.excluded_ids;
  std::sort(allowed_excl.begin(), allowed_excl.end());
  allowed_excl.erase(std::unique(allowed_excl.begin(), allowed_excl.end()), allowed_excl.end());
  allowed_excl.erase(std::remove_if(allowed_excl.begin(), allowed_excl.end(),
                                    [&](int32_t id) { return id < 0 || id >= c.vocab_size; }),
                     allowed_excl.end());
  const int64_t num_allowed = c.vocab_size - static_cast<int64_t>(allowed_excl.size());
  if (num_allowed <= 0) return invalid_argument("every token id is excluded");
  Rng rng(c.seed);
  // Draws one allowed id: a uniform index among the allowed ids, mapped past the exclusions.
  auto draw = [&]() {
    int64_t k = rng.uniform_int(0, num_allowed - 1);
    for (int32_t ex : allowed_excl) {
      if (ex <= k) ++k;
    }
    return static_cast<int32_t>(k);
  };
  std::vector<int32_t> prefix;
  prefix.reserve(static_cast<size_t>(c.prefix_len));
  for (int64_t i = 0; i < c.prefix_len; ++i) prefix.push_back(draw());
  std::vector<PromptSpec> out;
  out.reserve(static_cast<size_t>(c.num_prompts));
  for (int64_t i = 0; i < c.num_prompts; ++i) {
    const int64_t in_len = ranged_length(rng, c.input_len, c.range_ratio, 1);
    const int64_t out_len = ranged_length(rng, c.output_len, c.range_ratio, 1);
    std::vector<int32_t> ids = prefix;
    ids.reserve(static_cast<size_t>(c.prefix_len + in_len));
    for (int64_t k = 0; k < in_len; ++k) ids.push_back(draw());
    PromptSpec p;
    p.prompt_len = static_cast<int64_t>(ids.size());
    p.output_len = out_len;
    p.prompt = std::move(ids);
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<PromptSpec>> sharegpt_dataset(const ShareGptConfig& c,
                                                 const TokenCounter& count_tokens) {
  KITE_RETURN_IF_ERROR(check_positive(c.num_prompts, "--num-prompts"));
  KITE_ASSIGN_OR_RETURN(bj::value doc, json::parse_file(c.path));
  if (!doc.is_array()) {
    return invalid_argument(
        fmt::format("{}: a ShareGPT file is a JSON array of conversations", c.path));
  }
  // Pairs (prompt, reply) of entries with at least two turns.
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const bj::value& entry : doc.get_array()) {
    if (!entry.is_object()) continue;
    const bj::value* conv = entry.get_object().if_contains("conversations");
    if (conv == nullptr || !conv->is_array() || conv->get_array().size() < 2) continue;
    const bj::array& turns = conv->get_array();
    const bj::value* a =
        turns[0].is_object() ? turns[0].get_object().if_contains("value") : nullptr;
    const bj::value* b =
        turns[1].is_object() ? turns[1].get_object().if_contains("value") : nullptr;
    if (a == nullptr || b == nullptr || !a->is_string() || !b->is_string()) continue;
    pairs.emplace_back(std::string(a->get_string()), std::string(b->get_string()));
  }
  if (pairs.empty()) {
    return invalid_argument(fmt::format("{}: no conversation with two turns", c.path));
  }
  // Fisher-Yates with our generator (reproducible everywhere).
  Rng rng(c.seed);
  for (size_t i = pairs.size() - 1; i > 0; --i) {
    std::swap(pairs[i], pairs[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(i)))]);
  }
  std::vector<PromptSpec> out;
  for (const auto& [prompt, reply] : pairs) {
    if (static_cast<int64_t>(out.size()) >= c.num_prompts) break;
    PromptSpec p;
    p.prompt = prompt;
    if (count_tokens) {
      KITE_ASSIGN_OR_RETURN(int64_t prompt_len, count_tokens(prompt));
      int64_t reply_len = c.output_len;
      if (reply_len <= 0) {
        KITE_ASSIGN_OR_RETURN(reply_len, count_tokens(reply));
      }
      if (prompt_len < 4 || reply_len < 4 || prompt_len > 1024 || prompt_len + reply_len > 2048) {
        continue;
      }
      p.prompt_len = prompt_len;
      p.output_len = reply_len;
    } else {
      p.output_len = c.output_len > 0
                         ? c.output_len
                         : std::max<int64_t>(4, static_cast<int64_t>(reply.size() / 4));
    }
    out.push_back(std::move(p));
  }
  if (out.empty())
    return invalid_argument(fmt::format("{}: every conversation was filtered out", c.path));
  return out;
}

Result<std::vector<PromptSpec>> jsonl_dataset(const std::string& path, int64_t num_prompts,
                                              int64_t default_output_len) {
  KITE_RETURN_IF_ERROR(check_positive(default_output_len, "--output-len"));
  std::ifstream in(path);
  if (!in) return not_found(fmt::format("cannot open {}", path));
  std::vector<PromptSpec> all;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path, line_no);
    KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(line, where));
    if (!v.is_object()) return invalid_argument(where + ": each line must be a JSON object");
    const bj::object& o = v.get_object();
    PromptSpec p;
    if (const bj::value* text = o.if_contains("prompt"); text && text->is_string()) {
      p.prompt = std::string(text->get_string());
    } else if (const bj::value* ids = o.if_contains("prompt_token_ids"); ids && ids->is_array()) {
      std::vector<int32_t> tokens;
      for (const bj::value& id : ids->get_array()) {
        if (!id.is_int64() || id.get_int64() < 0 || id.get_int64() > INT32_MAX) {
          return invalid_argument(where + ": prompt_token_ids must be non-negative integers");
        }
        tokens.push_back(static_cast<int32_t>(id.get_int64()));
      }
      if (tokens.empty()) return invalid_argument(where + ": empty prompt_token_ids");
      p.prompt_len = static_cast<int64_t>(tokens.size());
      p.prompt = std::move(tokens);
    } else {
      return invalid_argument(where + ": needs \"prompt\" (a string) or \"prompt_token_ids\"");
    }
    p.output_len = default_output_len;
    for (const char* key : {"output_len", "max_tokens"}) {
      KITE_ASSIGN_OR_RETURN(std::optional<int64_t> n, json::get_int(o, key));
      if (n) {
        if (*n <= 0) return invalid_argument(fmt::format("{}: {} must be > 0", where, key));
        p.output_len = *n;
        break;
      }
    }
    all.push_back(std::move(p));
  }
  if (all.empty()) return invalid_argument(fmt::format("{}: no prompts", path));
  if (num_prompts <= 0) return all;
  std::vector<PromptSpec> out;
  out.reserve(static_cast<size_t>(num_prompts));
  for (int64_t i = 0; i < num_prompts; ++i) out.push_back(all[static_cast<size_t>(i) % all.size()]);
  return out;
}

Result<std::vector<PromptSpec>> w4_chat_prompts(int64_t n, int64_t output_len) {
  KITE_ASSIGN_OR_RETURN(bj::value doc, json::parse(kW4ChatPromptsJson, "w4_chat_prompts.json"));
  const bj::array& prompts = doc.at("prompts").as_array();
  if (n <= 0 || n > static_cast<int64_t>(prompts.size())) {
    return invalid_argument(fmt::format("W4 has {} chat prompts; asked for {}", prompts.size(), n));
  }
  std::vector<PromptSpec> out;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int32_t> ids;
    for (const bj::value& id : prompts[static_cast<size_t>(i)].at("token_ids").as_array()) {
      ids.push_back(static_cast<int32_t>(id.as_int64()));
    }
    PromptSpec p;
    p.prompt_len = static_cast<int64_t>(ids.size());
    p.output_len = output_len;
    p.prompt = std::move(ids);
    out.push_back(std::move(p));
  }
  return out;
}

int64_t total_prompt_tokens(const std::vector<PromptSpec>& prompts) {
  int64_t n = 0;
  for (const PromptSpec& p : prompts) n += std::max<int64_t>(p.prompt_len, 0);
  return n;
}

}  // namespace kite::bench
