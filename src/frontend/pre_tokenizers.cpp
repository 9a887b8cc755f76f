#include "frontend/pre_tokenizers.h"

#include "frontend/byte_level.h"
#include "frontend/json_reader.h"
#include "frontend/unicode.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

using tokjson::JsonObj;

template <typename T, typename... Args>
std::unique_ptr<PreTokenizer> make(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...);
}

// GPT-2's pre-tokenization regex (ByteLevel with use_regex).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Segment {
  Span span;
  bool is_match;
};

// Splits every piece by the matches `find(text, matches)` reports (offsets relative to text).
template <typename Finder>
void split_pieces(PreTokenizedString& pts, Finder&& find, SplitBehavior behavior, bool invert) {
  std::vector<PreToken> out;
  out.reserve(pts.pieces.size() * 2);
  std::vector<Span> matches;
  std::vector<Span> kept;
  for (const PreToken& piece : pts.pieces) {
    std::string_view text = pts.text(piece);
    matches.clear();
    kept.clear();
    find(text, matches);
    split_spans(text.size(), matches, behavior, invert, kept);
    for (const Span& s : kept) {
      out.push_back({piece.begin + s.begin, piece.begin + s.end, piece.at_origin && s.begin == 0});
    }
  }
  pts.pieces.swap(out);
}

// Splits on single characters satisfying pred.
template <typename Pred>
void split_on_chars(PreTokenizedString& pts, Pred&& pred, SplitBehavior behavior) {
  split_pieces(
      pts,
      [&](std::string_view text, std::vector<Span>& matches) {
        size_t i = 0;
        while (i < text.size()) {
          size_t at = i;
          if (pred(utf8::decode(text, i))) matches.push_back({at, i});
        }
      },
      behavior, false);
}

// Rebuilds the buffer: fn(text, at_origin, out_buffer, out_pieces) appends each piece's
// replacement pieces.
template <typename F>
void rewrite_pieces(PreTokenizedString& pts, F&& fn) {
  PreTokenizedString out;
  out.buffer.reserve(pts.buffer.size() + pts.pieces.size() * 3);
  out.pieces.reserve(pts.pieces.size());
  for (const PreToken& piece : pts.pieces) fn(pts.text(piece), piece.at_origin, out);
  pts = std::move(out);
}

Result<SplitBehavior> parse_behavior(const JsonObj& o, std::string_view key,
                                     SplitBehavior fallback) {
  KITE_ASSIGN_OR_RETURN(std::string b, o.str_or(key, ""));
  if (b.empty()) return fallback;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return o.error("unknown split behavior '" + b + "'");
}

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, std::shared_ptr<const Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}

  void pre_tokenize(PreTokenizedString& pts) const override {
    if (add_prefix_space_) {
      rewrite_pieces(pts, [](std::string_view text, bool origin, PreTokenizedString& out) {
        size_t begin = out.buffer.size();
        if (text.empty() || text[0] != ' ') out.buffer.push_back(' ');
        out.buffer.append(text);
        out.pieces.push_back({begin, out.buffer.size(), origin});
      });
    }
    if (regex_) {
      split_pieces(
          pts, [&](std::string_view text, std::vector<Span>& m) { regex_->find_all(text, m); },
          SplitBehavior::kIsolated, false);
    }
    if (map_bytes_) {
      rewrite_pieces(pts, [](std::string_view text, bool origin, PreTokenizedString& out) {
        size_t begin = out.buffer.size();
        byte_level::append_mapped(out.buffer, text);
        out.pieces.push_back({begin, out.buffer.size(), origin});
      });
    }
  }

  bool can_defer_byte_mapping() const override { return true; }
  void defer_byte_mapping() override { map_bytes_ = false; }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> regex_;  // null without use_regex
  bool map_bytes_ = true;
};

class SplitPre final : public PreTokenizer {
 public:
  SplitPre(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    split_pieces(
        pts, [&](std::string_view text, std::vector<Span>& m) { pattern_.find_all(text, m); },
        behavior_, invert_);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class DigitsPre final : public PreTokenizer {
 public:
  explicit DigitsPre(bool individual) : individual_(individual) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    split_on_chars(pts, unicode::is_numeric,
                   individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }

 private:
  bool individual_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePre final : public PreTokenizer {
 public:
  MetaspacePre(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {
    size_t i = 0;
    replacement_char_ = utf8::decode(replacement_, i);
  }

  void pre_tokenize(PreTokenizedString& pts) const override {
    rewrite_pieces(pts, [&](std::string_view text, bool origin, PreTokenizedString& out) {
      size_t begin = out.buffer.size();
      bool starts_with_replacement =
          text.substr(0, replacement_.size()) == replacement_ || (!text.empty() && text[0] == ' ');
      bool prepend = !starts_with_replacement && (scheme_ == PrependScheme::kAlways ||
                                                  (scheme_ == PrependScheme::kFirst && origin));
      if (prepend) out.buffer.append(replacement_);
      for (char c : text) {
        if (c == ' ') {
          out.buffer.append(replacement_);
        } else {
          out.buffer.push_back(c);
        }
      }
      out.pieces.push_back({begin, out.buffer.size(), origin});
    });
    if (split_) {
      char32_t rep = replacement_char_;
      split_on_chars(
          pts, [rep](char32_t c) { return c == rep; }, SplitBehavior::kMergedWithNext);
    }
  }

 private:
  std::string replacement_;
  char32_t replacement_char_ = 0;
  PrependScheme scheme_;
  bool split_;
};

// tokenizers' Whitespace: keeps the matches of \w+|[^\w\s]+, a Rust `regex` pattern there (its
// Unicode \w: Alphabetic, marks, decimal digits, connector punctuation, Join_Control).
class WhitespacePre final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& pts) const override {
    split_pieces(
        pts,
        [](std::string_view text, std::vector<Span>& m) {
          // 0 = space, 1 = word, 2 = other
          auto cls = [](char32_t c) {
            if (unicode::is_whitespace(c)) return 0;
            return unicode::is_word_char(c) ? 1 : 2;
          };
          size_t i = 0;
          while (i < text.size()) {
            size_t start = i;
            int c = cls(utf8::decode(text, i));
            if (c == 0) continue;
            size_t end = i;
            while (i < text.size()) {
              size_t at = i;
              if (cls(utf8::decode(text, i)) != c) {
                i = at;
                break;
              }
              end = i;
            }
            m.push_back({start, end});
          }
        },
        SplitBehavior::kRemoved, true);
  }
};

class WhitespaceSplitPre final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& pts) const override {
    split_on_chars(pts, unicode::is_whitespace, SplitBehavior::kRemoved);
  }
};

class BertPre final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& pts) const override {
    split_on_chars(pts, unicode::is_whitespace, SplitBehavior::kRemoved);
    split_on_chars(pts, unicode::is_punctuation, SplitBehavior::kIsolated);
  }
};

class PunctuationPre final : public PreTokenizer {
 public:
  explicit PunctuationPre(SplitBehavior behavior) : behavior_(behavior) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    split_on_chars(pts, unicode::is_punctuation, behavior_);
  }

 private:
  SplitBehavior behavior_;
};

class CharDelimiterPre final : public PreTokenizer {
 public:
  explicit CharDelimiterPre(char32_t delimiter) : delimiter_(delimiter) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    char32_t d = delimiter_;
    split_on_chars(
        pts, [d](char32_t c) { return c == d; }, SplitBehavior::kRemoved);
  }

 private:
  char32_t delimiter_;
};

class FixedLengthPre final : public PreTokenizer {
 public:
  explicit FixedLengthPre(size_t length) : length_(length) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    if (length_ == 0) return;
    std::vector<PreToken> out;
    for (const PreToken& piece : pts.pieces) {
      std::string_view text = pts.text(piece);
      size_t i = 0;
      while (i < text.size()) {
        size_t start = i;
        for (size_t n = 0; n < length_ && i < text.size(); ++n) utf8::decode(text, i);
        out.push_back({piece.begin + start, piece.begin + i, piece.at_origin && start == 0});
      }
    }
    pts.pieces.swap(out);
  }

 private:
  size_t length_;
};

class UnicodeScriptsPre final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& pts) const override {
    constexpr int kAny = -1;
    constexpr int kHan = 17;       // USCRIPT_HAN
    constexpr int kHiragana = 20;  // USCRIPT_HIRAGANA
    constexpr int kKatakana = 22;  // USCRIPT_KATAKANA
    constexpr int kUnknown = 103;  // USCRIPT_UNKNOWN
    auto fixed_script = [&](char32_t c) {
      if (c == 0x30FC) return kHan;
      if (c == ' ') return kAny;
      // Characters missing from tokenizers' script table (assigned after its Unicode version, or
      // unassigned) count as "Any" there.
      if (!unicode::in_script_tables(c)) return kAny;
      int s = unicode::script_of(c);
      if (s == kUnknown) return kAny;  // private use and unassigned code points
      return (s == kHiragana || s == kKatakana) ? kHan : s;
    };
    std::vector<PreToken> out;
    std::vector<size_t> cuts;
    for (const PreToken& piece : pts.pieces) {
      std::string_view text = pts.text(piece);
      cuts.clear();
      bool have_last = false;
      int last = 0;
      size_t i = 0;
      while (i < text.size()) {
        size_t at = i;
        int s = fixed_script(utf8::decode(text, i));
        if (s != kAny && !(have_last && last == kAny) && !(have_last && last == s)) {
          cuts.push_back(at);
        }
        if (s != kAny) {
          last = s;
          have_last = true;
        }
      }
      cuts.push_back(text.size());
      // Like tokenizers, text before the first cut (leading spaces) is dropped.
      for (size_t k = 0; k + 1 < cuts.size(); ++k) {
        if (cuts[k] == cuts[k + 1]) continue;
        out.push_back(
            {piece.begin + cuts[k], piece.begin + cuts[k + 1], piece.at_origin && cuts[k] == 0});
      }
    }
    pts.pieces.swap(out);
  }
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    for (const auto& p : parts_) p->pre_tokenize(pts);
  }
  bool can_defer_byte_mapping() const override {
    return !parts_.empty() && parts_.back()->can_defer_byte_mapping();
  }
  void defer_byte_mapping() override { parts_.back()->defer_byte_mapping(); }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

}  // namespace

void split_spans(size_t len, const std::vector<Span>& matches, SplitBehavior behavior, bool invert,
                 std::vector<Span>& out) {
  if (len == 0) return;
  // Segments covering the whole text, each flagged as a match or a gap.
  std::vector<Segment> segs;
  segs.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const Span& m : matches) {
    if (prev != m.begin) segs.push_back({{prev, m.begin}, invert});
    segs.push_back({m, !invert});
    prev = m.end;
  }
  if (prev != len) segs.push_back({{prev, len}, invert});

  auto emit = [&out](Span s) {
    if (s.end > s.begin) out.push_back(s);
  };
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Segment& s : segs) emit(s.span);
      break;
    case SplitBehavior::kRemoved:
      for (const Segment& s : segs) {
        if (!s.is_match) emit(s.span);
      }
      break;
    case SplitBehavior::kContiguous: {
      std::vector<Span> merged;
      bool prev_match = false;
      for (const Segment& s : segs) {
        if (s.is_match == prev_match && !merged.empty()) {
          merged.back().end = s.span.end;
        } else {
          merged.push_back(s.span);
        }
        prev_match = s.is_match;
      }
      for (const Span& s : merged) emit(s);
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      std::vector<Span> merged;
      bool prev_match = false;
      for (const Segment& s : segs) {
        if (s.is_match && !prev_match && !merged.empty()) {
          merged.back().end = s.span.end;
        } else {
          merged.push_back(s.span);
        }
        prev_match = s.is_match;
      }
      for (const Span& s : merged) emit(s);
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      std::vector<Span> merged;  // built back to front
      bool prev_match = false;
      for (size_t k = segs.size(); k-- > 0;) {
        const Segment& s = segs[k];
        if (s.is_match && !prev_match && !merged.empty()) {
          merged.back().begin = s.span.begin;
        } else {
          merged.push_back(s.span);
        }
        prev_match = s.is_match;
      }
      for (size_t k = merged.size(); k-- > 0;) emit(merged[k]);
      break;
    }
  }
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::from_json(const boost::json::value& v,
                                                              const std::string& path) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(v, path));
  KITE_ASSIGN_OR_RETURN(std::string type, o.str("type"));
  if (type == "ByteLevel") {
    KITE_ASSIGN_OR_RETURN(bool add_prefix_space, o.bool_or("add_prefix_space", true));
    KITE_ASSIGN_OR_RETURN(bool use_regex, o.bool_or("use_regex", true));
    std::shared_ptr<const Regex> re;
    if (use_regex) {
      static const auto gpt2 = Regex::compile(kGpt2Pattern);
      if (!gpt2.ok()) return gpt2.status();
      re = *gpt2;
    }
    return make<ByteLevelPre>(add_prefix_space, std::move(re));
  }
  if (type == "Split") {
    const boost::json::value* pv = o.get("pattern");
    if (pv == nullptr) return o.error("Split needs 'pattern'");
    KITE_ASSIGN_OR_RETURN(Pattern pattern, pattern_from_json(*pv, o.child_path("pattern")));
    if (!o.has("behavior")) return o.error("Split needs 'behavior'");
    KITE_ASSIGN_OR_RETURN(SplitBehavior behavior,
                          parse_behavior(o, "behavior", SplitBehavior::kIsolated));
    KITE_ASSIGN_OR_RETURN(bool invert, o.bool_or("invert", false));
    return make<SplitPre>(std::move(pattern), behavior, invert);
  }
  if (type == "Digits") {
    KITE_ASSIGN_OR_RETURN(bool individual, o.bool_or("individual_digits", false));
    return make<DigitsPre>(individual);
  }
  if (type == "Metaspace") {
    KITE_ASSIGN_OR_RETURN(std::string replacement, o.single_char("replacement", "\xE2\x96\x81"));
    KITE_ASSIGN_OR_RETURN(std::string scheme_name, o.str_or("prepend_scheme", ""));
    PrependScheme scheme = PrependScheme::kAlways;
    if (scheme_name == "first") {
      scheme = PrependScheme::kFirst;
    } else if (scheme_name == "never") {
      scheme = PrependScheme::kNever;
    } else if (!scheme_name.empty() && scheme_name != "always") {
      return o.error("unknown prepend_scheme '" + scheme_name + "'");
    }
    if (o.has("add_prefix_space")) {
      KITE_ASSIGN_OR_RETURN(bool add_prefix_space, o.bool_or("add_prefix_space", true));
      if (!add_prefix_space) {
        if (!scheme_name.empty() && scheme != PrependScheme::kNever) {
          return o.error("add_prefix_space=false contradicts prepend_scheme '" + scheme_name + "'");
        }
        scheme = PrependScheme::kNever;
      }
    }
    KITE_ASSIGN_OR_RETURN(bool split, o.bool_or("split", true));
    return make<MetaspacePre>(std::move(replacement), scheme, split);
  }
  if (type == "Whitespace") return make<WhitespacePre>();
  if (type == "WhitespaceSplit") return make<WhitespaceSplitPre>();
  if (type == "BertPreTokenizer") return make<BertPre>();
  if (type == "UnicodeScripts") return make<UnicodeScriptsPre>();
  if (type == "Punctuation") {
    KITE_ASSIGN_OR_RETURN(SplitBehavior behavior,
                          parse_behavior(o, "behavior", SplitBehavior::kIsolated));
    return make<PunctuationPre>(behavior);
  }
  if (type == "CharDelimiterSplit") {
    KITE_ASSIGN_OR_RETURN(std::string d, o.single_char("delimiter", ""));
    size_t i = 0;
    return make<CharDelimiterPre>(utf8::decode(d, i));
  }
  if (type == "FixedLength") {
    KITE_ASSIGN_OR_RETURN(int64_t length, o.int_or("length", 5));
    if (length < 0) return o.error("FixedLength length must be >= 0");
    return make<FixedLengthPre>(static_cast<size_t>(length));
  }
  if (type == "Sequence") {
    KITE_ASSIGN_OR_RETURN(const boost::json::array* arr, o.arr("pretokenizers"));
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < arr->size(); ++i) {
      KITE_ASSIGN_OR_RETURN(auto part, from_json((*arr)[i], o.child_path("pretokenizers") + "[" +
                                                                std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return make<SequencePre>(std::move(parts));
  }
  return o.error("unknown pre_tokenizer type '" + type + "'");
}

}  // namespace kite
