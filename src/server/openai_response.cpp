#include "server/openai_response.h"

#include <chrono>
#include <cmath>
#include <random>

namespace kite::server {

namespace bj = boost::json;

void ChoiceAccum::add(const ChoiceDelta& delta) {
  text += sanitize_utf8(delta.text);
  token_ids.insert(token_ids.end(), delta.token_ids.begin(), delta.token_ids.end());
  logprobs.insert(logprobs.end(), delta.logprobs.begin(), delta.logprobs.end());
  if (delta.finish_reason != FinishReason::kNone) {
    finish_reason = delta.finish_reason;
    stop_reason = delta.stop_reason;
  }
}

bj::value finish_reason_json(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return nullptr;
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return nullptr;
}

bj::value stop_reason_json(const std::variant<std::monostate, std::string, int32_t>& r) {
  if (const auto* s = std::get_if<std::string>(&r)) return bj::value(*s);
  if (const auto* id = std::get_if<int32_t>(&r)) return bj::value(*id);
  return nullptr;
}

bj::object usage_json(const Usage& u) {
  bj::object o;
  o["prompt_tokens"] = u.prompt_tokens;
  o["completion_tokens"] = u.completion_tokens;
  o["total_tokens"] = u.prompt_tokens + u.completion_tokens;
  return o;
}

double json_logprob(float lp) {
  if (std::isnan(lp)) return -9999.0;
  return std::max(static_cast<double>(lp), -9999.0);
}

int64_t utf8_length(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;  // count every byte that does not continue a code point
  }
  return n;
}

namespace {

// At s[i]: the length of a valid UTF-8 sequence (> 0), or minus the length of the maximal
// invalid subpart to replace with one U+FFFD (Unicode's "maximal subpart" practice, which
// Python's errors="replace" and Rust's from_utf8_lossy follow). Overlong forms, surrogates and
// code points past U+10FFFF are invalid.
int utf8_step(std::string_view s, size_t i) {
  auto c = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = c(i);
  if (b0 < 0x80) return 1;
  int n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k < n; ++k) {
    if (i + k >= s.size()) return -k;
    unsigned char b = c(i + k);
    bool ok = k == 1 ? (b >= lo && b <= hi) : ((b & 0xC0) == 0x80);
    if (!ok) return -k;
  }
  return n;
}

}  // namespace

std::string sanitize_utf8(std::string s) {
  size_t i = 0;
  while (i < s.size()) {
    int step = utf8_step(s, i);
    if (step < 0) break;
    i += static_cast<size_t>(step);
  }
  if (i == s.size()) return s;  // the common case: already valid, no copy
  std::string out(s, 0, i);
  while (i < s.size()) {
    int step = utf8_step(s, i);
    if (step > 0) {
      out.append(s, i, static_cast<size_t>(step));
      i += static_cast<size_t>(step);
    } else {
      out += "\xEF\xBF\xBD";
      i += static_cast<size_t>(-step);
    }
  }
  return out;
}

bj::object empty_completion_logprobs() {
  bj::object o;
  o["tokens"] = bj::array();
  o["token_logprobs"] = bj::array();
  o["top_logprobs"] = bj::array();
  o["text_offset"] = bj::array();
  return o;
}

void append_completion_logprobs(bj::object& out, std::span<const LogprobEntry> entries,
                                const TokenText& token_text, int64_t& text_offset,
                                size_t num_without_logprob) {
  if (!out.contains("tokens")) out = empty_completion_logprobs();
  bj::array& tokens = out["tokens"].as_array();
  bj::array& token_logprobs = out["token_logprobs"].as_array();
  bj::array& top_logprobs = out["top_logprobs"].as_array();
  bj::array& text_offsets = out["text_offset"].as_array();
  for (size_t i = 0; i < entries.size(); ++i) {
    const LogprobEntry& e = entries[i];
    std::string tok = token_text(e.token_id);
    text_offsets.emplace_back(text_offset);
    text_offset += utf8_length(tok);
    if (i < num_without_logprob) {
      token_logprobs.emplace_back(nullptr);
      top_logprobs.emplace_back(nullptr);
    } else {
      token_logprobs.emplace_back(json_logprob(e.logprob));
      bj::object top;
      for (const TokenLogprob& t : e.top) {
        // Two ids may decode to the same text; the first (most likely) one is kept.
        std::string key = token_text(t.token_id);
        if (!top.contains(key)) top[key] = json_logprob(t.logprob);
      }
      // As vLLM: the sampled token is always listed (so up to logprobs + 1 entries).
      if (!top.contains(tok)) top[tok] = json_logprob(e.logprob);
      top_logprobs.emplace_back(std::move(top));
    }
    tokens.emplace_back(std::move(tok));
  }
}

namespace {

bj::array utf8_bytes(const std::string& s) {
  bj::array b;
  b.reserve(s.size());
  for (unsigned char c : s) b.emplace_back(static_cast<int64_t>(c));
  return b;
}

}  // namespace

void append_chat_logprobs(bj::array& content, std::span<const LogprobEntry> entries,
                          const TokenText& token_text) {
  for (const LogprobEntry& e : entries) {
    std::string tok = token_text(e.token_id);
    bj::object entry;
    entry["token"] = tok;
    entry["logprob"] = json_logprob(e.logprob);
    entry["bytes"] = utf8_bytes(tok);
    bj::array top;
    top.reserve(e.top.size());
    for (const TokenLogprob& t : e.top) {
      std::string ttok = token_text(t.token_id);
      bj::object o;
      o["token"] = ttok;
      o["logprob"] = json_logprob(t.logprob);
      o["bytes"] = utf8_bytes(ttok);
      top.emplace_back(std::move(o));
    }
    entry["top_logprobs"] = std::move(top);
    content.emplace_back(std::move(entry));
  }
}

std::string random_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int w = 0; w < 2; ++w) {
    uint64_t x = rng();
    for (int i = 0; i < 16; ++i) {
      id.push_back(kHex[x & 0xF]);
      x >>= 4;
    }
  }
  return id;
}

int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace kite::server
