#include "frontend/decoders.h"

#include "frontend/byte_level.h"
#include "frontend/json_reader.h"
#include "frontend/pattern.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

using tokjson::JsonObj;

template <typename T, typename... Args>
std::unique_ptr<Decoder> make(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

// tokenizers' wordpiece::cleanup.
void cleanup(std::string& s) {
  replace_all(s, " .", ".");
  replace_all(s, " ?", "?");
  replace_all(s, " !", "!");
  replace_all(s, " ,", ",");
  replace_all(s, " ' ", "'");
  replace_all(s, " n't", "n't");
  replace_all(s, " 'm", "'m");
  replace_all(s, " do not", " don't");
  replace_all(s, " 's", "'s");
  replace_all(s, " 've", "'ve");
  replace_all(s, " 're", "'re");
}

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      if (!byte_level::unmap(t, bytes)) bytes.append(t);
    }
    tokens.assign(1, utf8::lossy(bytes));
  }
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB; -1 when the token is not a byte token. Mirrors u8::from_str_radix on the two
// characters after "<0x" (which accepts a leading '+').
int byte_token_value(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  if (t[3] == '+') return hex_value(t[4]);
  int hi = hex_value(t[3]);
  int lo = hex_value(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (utf8::is_valid(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(utf8::kReplacementUtf8);
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int b = byte_token_value(t);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all.append(t);
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<std::pair<size_t, size_t>> chars;  // byte offset, length
      size_t i = 0;
      std::vector<char32_t> cps;
      while (i < t.size()) {
        size_t at = i;
        cps.push_back(utf8::decode(t, i));
        chars.emplace_back(at, i - at);
      }
      size_t n = cps.size();
      size_t start_cut = 0;
      for (size_t k = 0; k < start_ && k < n; ++k) {
        if (cps[k] != content_) break;
        start_cut = k + 1;
      }
      size_t stop_cut = n;
      for (size_t k = 0; k < stop_ && k < n; ++k) {
        size_t index = n - k - 1;
        if (cps[index] != content_) break;
        stop_cut = index;
      }
      if (stop_cut < start_cut) stop_cut = start_cut;
      size_t b = start_cut < n ? chars[start_cut].first : t.size();
      size_t e = stop_cut < n ? chars[stop_cut].first : t.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  size_t start_;
  size_t stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<Span> matches;
    for (std::string& t : tokens) {
      matches.clear();
      pattern_.find_all(t, matches);
      if (matches.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const Span& m : matches) {
        out.append(t, prev, m.begin - prev);
        out.append(content_);
        prev = m.end;
      }
      out.append(t, prev, std::string::npos);
      t.swap(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepend)
      : replacement_(std::move(replacement)), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      replace_all(tokens[i], replacement_, i == 0 && prepend_ ? "" : " ");
    }
  }

 private:
  std::string replacement_;
  bool prepend_;  // prepend_scheme != never: the first token loses its replacement characters
};

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else if (prefix_.empty()) {
          // replacen("", "", 1) leaves the token unchanged
        } else {
          t = " " + t;
        }
      }
      if (cleanup_) cleanup(t);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

class CtcDecoder final : public Decoder {
 public:
  CtcDecoder(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;  // dedup consecutive repeats
      std::string t = tokens[i];
      replace_all(t, pad_, "");
      if (cleanup_) {
        cleanup(t);
        replace_all(t, delimiter_, " ");
      }
      if (!t.empty()) out.push_back(std::move(t));
    }
    tokens.swap(out);
  }

 private:
  std::string pad_;
  std::string delimiter_;
  bool cleanup_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

Result<std::unique_ptr<Decoder>> Decoder::from_json(const boost::json::value& v,
                                                    const std::string& path) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(v, path));
  KITE_ASSIGN_OR_RETURN(std::string type, o.str("type"));
  if (type == "ByteLevel") return make<ByteLevelDecoder>();
  if (type == "ByteFallback") return make<ByteFallbackDecoder>();
  if (type == "Fuse") return make<FuseDecoder>();
  if (type == "Strip") {
    KITE_ASSIGN_OR_RETURN(std::string content, o.single_char("content", " "));
    KITE_ASSIGN_OR_RETURN(int64_t start, o.int_or("start", 0));
    KITE_ASSIGN_OR_RETURN(int64_t stop, o.int_or("stop", 0));
    if (start < 0 || stop < 0) return o.error("Strip start/stop must be >= 0");
    size_t i = 0;
    return make<StripDecoder>(utf8::decode(content, i), static_cast<size_t>(start),
                              static_cast<size_t>(stop));
  }
  if (type == "Replace") {
    const boost::json::value* pv = o.get("pattern");
    if (pv == nullptr) return o.error("Replace needs 'pattern'");
    KITE_ASSIGN_OR_RETURN(Pattern pattern, pattern_from_json(*pv, o.child_path("pattern")));
    KITE_ASSIGN_OR_RETURN(std::string content, o.str("content"));
    return make<ReplaceDecoder>(std::move(pattern), std::move(content));
  }
  if (type == "Metaspace") {
    KITE_ASSIGN_OR_RETURN(std::string replacement, o.single_char("replacement", "\xE2\x96\x81"));
    KITE_ASSIGN_OR_RETURN(std::string scheme, o.str_or("prepend_scheme", ""));
    bool prepend = scheme != "never";
    if (!scheme.empty() && scheme != "always" && scheme != "first" && scheme != "never") {
      return o.error("unknown prepend_scheme '" + scheme + "'");
    }
    if (o.has("add_prefix_space")) {
      KITE_ASSIGN_OR_RETURN(bool add_prefix_space, o.bool_or("add_prefix_space", true));
      if (!add_prefix_space) prepend = false;
    }
    return make<MetaspaceDecoder>(std::move(replacement), prepend);
  }
  if (type == "WordPiece") {
    KITE_ASSIGN_OR_RETURN(std::string prefix, o.str_or("prefix", "##"));
    KITE_ASSIGN_OR_RETURN(bool clean, o.bool_or("cleanup", true));
    return make<WordPieceDecoder>(std::move(prefix), clean);
  }
  if (type == "BPEDecoder") {
    KITE_ASSIGN_OR_RETURN(std::string suffix, o.str_or("suffix", "</w>"));
    return make<BpeDecoder>(std::move(suffix));
  }
  if (type == "CTC") {
    KITE_ASSIGN_OR_RETURN(std::string pad, o.str_or("pad_token", "<pad>"));
    KITE_ASSIGN_OR_RETURN(std::string delim, o.str_or("word_delimiter_token", "|"));
    KITE_ASSIGN_OR_RETURN(bool clean, o.bool_or("cleanup", true));
    return make<CtcDecoder>(std::move(pad), std::move(delim), clean);
  }
  if (type == "Sequence") {
    KITE_ASSIGN_OR_RETURN(const boost::json::array* arr, o.arr("decoders"));
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < arr->size(); ++i) {
      KITE_ASSIGN_OR_RETURN(auto part, from_json((*arr)[i], o.child_path("decoders") + "[" +
                                                                std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return make<SequenceDecoder>(std::move(parts));
  }
  return o.error("unknown decoder type '" + type + "'");
}

}  // namespace kite
