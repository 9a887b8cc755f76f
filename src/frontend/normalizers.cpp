#include "frontend/normalizers.h"

#include <vector>

#include "frontend/byte_level.h"
#include "frontend/json_reader.h"
#include "frontend/pattern.h"
#include "frontend/unicode.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

using tokjson::JsonObj;

template <typename T, typename... Args>
std::unique_ptr<Normalizer> make(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...);
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Rewrites s char by char: fn(cp, out) appends the replacement of cp.
template <typename F>
void map_chars(std::string& s, F&& fn) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) fn(utf8::decode(s, i), out);
  s.swap(out);
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm form) : form_(form) {}
  void normalize(std::string& s) const override {
    if (is_ascii(s)) return;
    s = unicode::normalize(s, form_);
  }

 private:
  unicode::NormalForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    if (is_ascii(s)) {
      for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      }
      return;
    }
    map_chars(s, [](char32_t c, std::string& out) { unicode::append_lowercase(out, c); });
  }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override {
    size_t begin = 0;
    size_t end = s.size();
    if (left_) {
      size_t i = 0;
      while (i < end) {
        size_t at = i;
        if (!unicode::is_whitespace(utf8::decode(s, i))) {
          i = at;
          break;
        }
      }
      begin = i;
    }
    if (right_) {
      while (end > begin) {
        size_t len = 0;
        char32_t c = utf8::decode_last(std::string_view(s).substr(begin, end - begin), &len);
        if (!unicode::is_whitespace(c)) break;
        end -= len;
      }
    }
    s = s.substr(begin, end - begin);
  }

 private:
  bool left_;
  bool right_;
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    if (is_ascii(s)) return;
    map_chars(s, [](char32_t c, std::string& out) {
      if (!unicode::is_combining_mark(c)) utf8::append(out, c);
    });
  }
};

class NmtNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    map_chars(s, [](char32_t c, std::string& out) {
      if ((c >= 0x01 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
          c == 0x8F || c == 0x9F) {
        return;
      }
      switch (c) {
        case 0x09:
        case 0x0A:
        case 0x0C:
        case 0x0D:
        case 0x1680:
        case 0x200B:
        case 0x200C:
        case 0x200D:
        case 0x200E:
        case 0x200F:
        case 0x2028:
        case 0x2029:
        case 0x2581:
        case 0xFEFF:
        case 0xFFFD:
          out.push_back(' ');
          return;
        default:
          utf8::append(out, c);
      }
    });
  }
};

class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        handle_chinese_chars_(handle_chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}

  void normalize(std::string& s) const override {
    if (clean_text_) {
      map_chars(s, [](char32_t c, std::string& out) {
        bool control = c != '\t' && c != '\n' && c != '\r' && unicode::is_other(c);
        if (c == 0 || c == 0xFFFD || control) return;
        bool space = c == '\t' || c == '\n' || c == '\r' || unicode::is_whitespace(c);
        utf8::append(out, space ? U' ' : c);
      });
    }
    if (handle_chinese_chars_ && !is_ascii(s)) {
      map_chars(s, [](char32_t c, std::string& out) {
        if (unicode::is_chinese_char(c)) {
          out.push_back(' ');
          utf8::append(out, c);
          out.push_back(' ');
        } else {
          utf8::append(out, c);
        }
      });
    }
    if (strip_accents_ && !is_ascii(s)) {
      s = unicode::normalize(s, unicode::NormalForm::kNFD);
      map_chars(s, [](char32_t c, std::string& out) {
        if (!unicode::is_mark_nonspacing(c)) utf8::append(out, c);
      });
    }
    if (lowercase_) LowercaseNormalizer().normalize(s);
  }

 private:
  bool clean_text_;
  bool handle_chinese_chars_;
  bool strip_accents_;
  bool lowercase_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& s) const override {
    std::vector<Span> matches;
    pattern_.find_all(s, matches);
    if (matches.empty()) return;
    std::string out;
    out.reserve(s.size() + matches.size() * content_.size());
    size_t prev = 0;
    for (const Span& m : matches) {
      out.append(s, prev, m.begin - prev);
      out.append(content_);
      prev = m.end;
    }
    out.append(s, prev, std::string::npos);
    s.swap(out);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size() * 2);
    byte_level::append_mapped(out, s);
    s.swap(out);
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> Normalizer::from_json(const boost::json::value& v,
                                                          const std::string& path) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(v, path));
  KITE_ASSIGN_OR_RETURN(std::string type, o.str("type"));
  using unicode::NormalForm;
  if (type == "NFC") return make<UnicodeNormalizer>(NormalForm::kNFC);
  if (type == "NFD") return make<UnicodeNormalizer>(NormalForm::kNFD);
  if (type == "NFKC") return make<UnicodeNormalizer>(NormalForm::kNFKC);
  if (type == "NFKD") return make<UnicodeNormalizer>(NormalForm::kNFKD);
  if (type == "Lowercase") return make<LowercaseNormalizer>();
  if (type == "StripAccents") return make<StripAccentsNormalizer>();
  if (type == "Nmt") return make<NmtNormalizer>();
  if (type == "ByteLevel") return make<ByteLevelNormalizer>();
  if (type == "Strip") {
    KITE_ASSIGN_OR_RETURN(bool left, o.bool_or("strip_left", true));
    KITE_ASSIGN_OR_RETURN(bool right, o.bool_or("strip_right", true));
    return make<StripNormalizer>(left, right);
  }
  if (type == "BertNormalizer") {
    KITE_ASSIGN_OR_RETURN(bool clean, o.bool_or("clean_text", true));
    KITE_ASSIGN_OR_RETURN(bool chinese, o.bool_or("handle_chinese_chars", true));
    KITE_ASSIGN_OR_RETURN(bool lower, o.bool_or("lowercase", true));
    KITE_ASSIGN_OR_RETURN(bool strip, o.bool_or("strip_accents", lower));
    return make<BertNormalizer>(clean, chinese, strip, lower);
  }
  if (type == "Replace") {
    const boost::json::value* pv = o.get("pattern");
    if (pv == nullptr) return o.error("Replace needs 'pattern'");
    KITE_ASSIGN_OR_RETURN(Pattern pattern, pattern_from_json(*pv, o.child_path("pattern")));
    KITE_ASSIGN_OR_RETURN(std::string content, o.str("content"));
    if (!utf8::is_valid(content)) return o.error("Replace content is not valid UTF-8");
    return make<ReplaceNormalizer>(std::move(pattern), std::move(content));
  }
  if (type == "Prepend") {
    KITE_ASSIGN_OR_RETURN(std::string prepend, o.str("prepend"));
    if (!utf8::is_valid(prepend)) return o.error("Prepend is not valid UTF-8");
    return make<PrependNormalizer>(std::move(prepend));
  }
  if (type == "Sequence") {
    KITE_ASSIGN_OR_RETURN(const boost::json::array* arr, o.arr("normalizers"));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < arr->size(); ++i) {
      KITE_ASSIGN_OR_RETURN(auto part, from_json((*arr)[i], o.child_path("normalizers") + "[" +
                                                                std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return make<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Precompiled") {
    return Status(StatusCode::kUnimplemented,
                  o.path() +
                      ": the Precompiled (SentencePiece charsmap) normalizer is not "
                      "supported");
  }
  return o.error("unknown normalizer type '" + type + "'");
}

}  // namespace kite
