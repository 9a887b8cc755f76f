// Builds a tokenizer pipeline from GGUF tokenizer metadata (see gguf_vocab.h).
#include "frontend/gguf_vocab.h"

#include <algorithm>
#include <unordered_map>

#include "frontend/tokenizer_impl.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

namespace bj = boost::json;

// ---- tokenizer.json fragments for the pipelines GGUF vocabularies came from -----------------

bj::value split(std::string_view regex) {
  return bj::object{{"type", "Split"},
                    {"pattern", bj::object{{"Regex", regex}}},
                    {"behavior", "Isolated"},
                    {"invert", false}};
}
bj::value byte_level(bool use_regex) {
  return bj::object{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", use_regex}};
}
bj::value digits(bool individual) {
  return bj::object{{"type", "Digits"}, {"individual_digits", individual}};
}
bj::value sequence(std::initializer_list<bj::value> parts) {
  bj::array arr;
  for (const bj::value& p : parts) arr.push_back(p);
  return bj::object{{"type", "Sequence"}, {"pretokenizers", std::move(arr)}};
}
bj::value nfc() { return bj::object{{"type", "NFC"}}; }

constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kTekkenRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt4oRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D})"
    R"(\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4})"
    R"(\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})"
    R"(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124})"
    R"(\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})"
    R"(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17})"
    R"(\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})"
    R"(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";
constexpr std::string_view kDeepseekPunct = R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)";
constexpr std::string_view kDeepseekCjk = R"([一-龥ࠀ-一가-퟿]+)";

struct PreSpec {
  bj::value pre_tokenizer;
  bj::value normalizer;  // null when none
  bool ignore_merges = false;
};

// The pre-tokenization of a byte-level BPE vocabulary by its tokenizer.ggml.pre name, as the
// Hugging Face tokenizer.json of that model family defines it.
Result<PreSpec> byte_level_pre(const std::string& pre) {
  PreSpec s;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "falcon3" ||
      pre == "falcon-h1" || pre == "pixtral" || pre == "midm-2.0" || pre == "lfm2") {
    s.pre_tokenizer = sequence({split(kLlama3Regex), byte_level(false)});
    s.ignore_merges = true;
  } else if (pre == "dbrx" || pre == "smaug-bpe" || pre == "chatglm-bpe") {
    s.pre_tokenizer = sequence({split(kLlama3Regex), byte_level(false)});
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2" ||
             pre == "hunyuan" || pre == "megrez" || pre == "grok-2") {
    s.pre_tokenizer = sequence({split(kQwen2Regex), byte_level(false)});
    if (pre == "qwen2" || pre == "deepseek-r1-qwen") s.normalizer = nfc();
  } else if (pre == "gpt-2" || pre == "mpt" || pre == "olmo" || pre == "jais" ||
             pre == "trillion" || pre == "granite-docling" || pre == "roberta-bpe") {
    s.pre_tokenizer = byte_level(true);
    if (pre == "mpt") s.normalizer = nfc();
  } else if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" ||
             pre == "codeshell" || pre == "exaone" || pre == "minerva-7b") {
    s.pre_tokenizer = sequence({digits(true), byte_level(true)});
    if (pre == "command-r") s.normalizer = nfc();
  } else if (pre == "falcon") {
    s.pre_tokenizer = sequence({bj::object{{"type", "Punctuation"}, {"behavior", "Contiguous"}},
                                byte_level(true), digits(false), split("[0-9][0-9][0-9]")});
  } else if (pre == "deepseek-llm") {
    s.pre_tokenizer =
        sequence({split(R"([\r\n])"), split(kDeepseekLetters), split(kDeepseekPunct),
                  split(R"(\s+$)"), split(kDeepseekCjk), split(R"(\p{N}+)"), byte_level(false)});
  } else if (pre == "deepseek-coder") {
    s.pre_tokenizer = sequence({split(R"([\r\n])"), split(R"(\s?\p{L}+)"), split(R"(\s?\p{P}+)"),
                                split(kDeepseekCjk), split(R"(\p{N})"), byte_level(false)});
  } else if (pre == "deepseek-v3" || pre == "hunyuan-dense") {
    s.pre_tokenizer = sequence(
        {split(R"(\p{N}{1,3})"), split(R"([一-龥぀-ゟ゠-ヿ]+)"),
         split(
             R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
         byte_level(false)});
  } else if (pre == "poro-chat" || pre == "bloom" || pre == "gpt3-finnish") {
    s.pre_tokenizer = sequence({split(R"( ?[^(\s|.,!?…。，、।۔،)]+)"), byte_level(false)});
  } else if (pre == "viking") {
    s.pre_tokenizer =
        sequence({split(R"( ?[^(\s|.,!?…。，、।۔،)]+)"), split(R"(\p{N})"), byte_level(false)});
  } else if (pre == "tekken") {
    s.pre_tokenizer = sequence({split(kTekkenRegex), byte_level(false)});
  } else if (pre == "gpt-4o" || pre == "minimax-m2") {
    s.pre_tokenizer = sequence({split(kGpt4oRegex), byte_level(false)});
  } else if (pre == "seed-coder") {
    s.pre_tokenizer = sequence(
        {split(
             R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)"),
         byte_level(false)});
  } else if (pre == "bailingmoe") {
    s.pre_tokenizer = sequence(
        {split(
             R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"),
         byte_level(false)});
  } else if (pre.empty() || pre == "default") {
    // llama.cpp's fallback for vocabularies converted without a pre-tokenizer name.
    s.pre_tokenizer = sequence(
        {split(R"([\p{P}\$\+<=>\^~\|]+)"),
         split(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))"),
         split(R"(\p{N}+)"), split("[0-9][0-9][0-9]"), byte_level(false)});
  } else {
    return Status(StatusCode::kUnimplemented,
                  "GGUF tokenizer.ggml.pre '" + pre + "' is not supported");
  }
  (void)kGpt2Regex;
  return s;
}

bj::value template_processing(const std::vector<std::pair<std::string, int32_t>>& prefix,
                              const std::vector<std::pair<std::string, int32_t>>& suffix) {
  bj::array single;
  bj::object specials;
  auto add = [&](const std::pair<std::string, int32_t>& tok) {
    single.push_back(bj::object{{"SpecialToken", bj::object{{"id", tok.first}, {"type_id", 0}}}});
    specials[tok.first] = bj::object{{"id", tok.first},
                                     {"ids", bj::array{tok.second}},
                                     {"tokens", bj::array{bj::string(tok.first)}}};
  };
  for (const auto& t : prefix) add(t);
  single.push_back(bj::object{{"Sequence", bj::object{{"id", "A"}, {"type_id", 0}}}});
  for (const auto& t : suffix) add(t);
  return bj::object{
      {"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}};
}

// transformers' SentencePieceExtractor: every split of every piece into two pieces of the
// vocabulary is a merge, ranked by the score of the whole piece (highest first; ties keep
// vocabulary order, then the (left id, right id) order).
std::vector<std::pair<std::string, std::string>> merges_from_scores(const GgufVocab& v,
                                                                    const Vocab& vocab) {
  struct Merge {
    int32_t left;
    int32_t right;
    float score;
  };
  std::vector<Merge> merges;
  std::vector<size_t> char_starts;
  std::vector<bool> seen(v.tokens.size(), false);
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const std::string& piece = v.tokens[id];
    // dict(vocab_scores) keeps the first position of a repeated piece with its last score; the
    // vocabulary maps the piece to its last id.
    int32_t canonical = vocab.find(piece);
    if (seen[canonical]) continue;
    seen[canonical] = true;
    float score = v.scores[canonical];
    char_starts.clear();
    for (size_t i = 0; i < piece.size(); ++i) {
      if ((static_cast<unsigned char>(piece[i]) & 0xC0) != 0x80) char_starts.push_back(i);
    }
    size_t first = merges.size();
    for (size_t k = 1; k < char_starts.size(); ++k) {
      int32_t l = vocab.find(std::string_view(piece).substr(0, char_starts[k]));
      int32_t r = vocab.find(std::string_view(piece).substr(char_starts[k]));
      if (l >= 0 && r >= 0) merges.push_back({l, r, score});
    }
    std::sort(merges.begin() + static_cast<ptrdiff_t>(first), merges.end(),
              [](const Merge& a, const Merge& b) {
                return a.left != b.left ? a.left < b.left : a.right < b.right;
              });
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const Merge& m : merges) out.emplace_back(*vocab.token(m.left), *vocab.token(m.right));
  return out;
}

// llama.cpp stores BERT vocabularies with a phantom space: "▁word" for word starts, "piece" for
// continuations ("##piece" in the original). Bracketed tokens ("[CLS]") are unchanged.
std::string unphantom(const std::string& t) {
  constexpr std::string_view kPhantom = "\xE2\x96\x81";
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') return t;
  if (t.compare(0, kPhantom.size(), kPhantom) == 0) return t.substr(kPhantom.size());
  return "##" + t;
}

}  // namespace

Result<std::unique_ptr<Tokenizer::Impl>> build_from_gguf_vocab(const GgufVocab& v) {
  const size_t n = v.tokens.size();
  if (n == 0) return invalid_argument("tokenizer.ggml.tokens is missing or empty");
  if (n > static_cast<size_t>(INT32_MAX))
    return invalid_argument("tokenizer.ggml.tokens is too large");
  if (!v.scores.empty() && v.scores.size() != n) {
    return invalid_argument("tokenizer.ggml.scores has " + std::to_string(v.scores.size()) +
                            " entries for " + std::to_string(n) + " tokens");
  }
  if (!v.token_types.empty() && v.token_types.size() != n) {
    return invalid_argument("tokenizer.ggml.token_type has " +
                            std::to_string(v.token_types.size()) + " entries for " +
                            std::to_string(n) + " tokens");
  }
  for (size_t i = 0; i < n; ++i) {
    if (!utf8::is_valid(v.tokens[i])) {
      return invalid_argument("tokenizer.ggml.tokens[" + std::to_string(i) +
                              "] is not valid UTF-8");
    }
  }
  auto valid_id = [&](const std::optional<int64_t>& id) -> std::optional<int32_t> {
    if (!id || *id < 0 || *id >= static_cast<int64_t>(n)) return std::nullopt;
    return static_cast<int32_t>(*id);
  };
  auto type_of = [&](size_t i) {
    return v.token_types.empty() ? kGgufTokenNormal : v.token_types[i];
  };

  auto impl = std::make_unique<Tokenizer::Impl>();
  const bool is_bert = v.model == "bert";
  Vocab vocab;
  for (size_t i = 0; i < n; ++i) {
    vocab.add(is_bert ? unphantom(v.tokens[i]) : v.tokens[i], static_cast<int32_t>(i));
  }
  vocab.finalize();
  // The token of id, from the vocabulary or, once it moved into the model, from the model.
  auto token_str = [&](int32_t id) {
    const Vocab& source = impl->model ? impl->model->vocab() : vocab;
    return std::string(*source.token(id));
  };

  std::optional<int32_t> bos = valid_id(v.bos_id);
  std::optional<int32_t> eos = valid_id(v.eos_id);
  std::optional<int32_t> unk = valid_id(v.unk_id);
  std::optional<int32_t> pad = valid_id(v.pad_id);
  std::vector<std::pair<std::string, int32_t>> prefix;
  std::vector<std::pair<std::string, int32_t>> suffix;

  if (v.model == "llama") {
    if (v.scores.empty())
      return invalid_argument("tokenizer.ggml.scores is missing (llama vocabulary)");
    bool add_space_prefix = v.add_space_prefix.value_or(true);
    auto merges = merges_from_scores(v, vocab);
    BpeOptions opt;
    if (!unk)
      unk = vocab.find("<unk>") >= 0 ? std::optional<int32_t>(vocab.find("<unk>")) : std::nullopt;
    if (unk) opt.unk_token = token_str(*unk);
    opt.byte_fallback = true;
    opt.fuse_unk = true;
    KITE_ASSIGN_OR_RETURN(impl->model, make_bpe_model(std::move(vocab), merges, opt));
    bj::array norm;
    if (add_space_prefix)
      norm.push_back(bj::object{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}});
    norm.push_back(bj::object{{"type", "Replace"},
                              {"pattern", bj::object{{"String", " "}}},
                              {"content", "\xE2\x96\x81"}});
    KITE_ASSIGN_OR_RETURN(impl->normalizer, Normalizer::from_json(bj::object{{"type", "Sequence"},
                                                                             {"normalizers", norm}},
                                                                  "normalizer"));
    bj::array dec{bj::object{{"type", "Replace"},
                             {"pattern", bj::object{{"String", "\xE2\x96\x81"}}},
                             {"content", " "}},
                  bj::object{{"type", "ByteFallback"}}, bj::object{{"type", "Fuse"}}};
    if (add_space_prefix) {
      dec.push_back(bj::object{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    }
    KITE_ASSIGN_OR_RETURN(
        impl->decoder,
        Decoder::from_json(bj::object{{"type", "Sequence"}, {"decoders", dec}}, "decoder"));
    if (v.add_bos.value_or(true) && bos) prefix.emplace_back(token_str(*bos), *bos);
    if (v.add_eos.value_or(false) && eos) suffix.emplace_back(token_str(*eos), *eos);
  } else if (v.model == "gpt2") {
    KITE_ASSIGN_OR_RETURN(PreSpec spec, byte_level_pre(v.pre));
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(v.merges.size());
    for (size_t i = 0; i < v.merges.size(); ++i) {
      const std::string& m = v.merges[i];
      size_t sp = m.find(' ');
      if (sp == std::string::npos || m.find(' ', sp + 1) != std::string::npos) {
        return invalid_argument("tokenizer.ggml.merges[" + std::to_string(i) +
                                "] must be two tokens separated by one space, got '" +
                                utf8::lossy(m) + "'");
      }
      merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    BpeOptions opt;
    opt.ignore_merges = spec.ignore_merges;
    auto model = make_bpe_model(std::move(vocab), merges, opt);
    if (!model.ok()) return model.status().with_context("tokenizer.ggml.merges");
    impl->model = std::move(model).value();
    if (!spec.normalizer.is_null()) {
      KITE_ASSIGN_OR_RETURN(impl->normalizer, Normalizer::from_json(spec.normalizer, "normalizer"));
    }
    KITE_ASSIGN_OR_RETURN(impl->pre_tokenizer,
                          PreTokenizer::from_json(spec.pre_tokenizer, "pre_tokenizer"));
    KITE_ASSIGN_OR_RETURN(impl->decoder,
                          Decoder::from_json(bj::object{{"type", "ByteLevel"}}, "decoder"));
    if (v.add_bos.value_or(false) && bos) prefix.emplace_back(token_str(*bos), *bos);
    if (v.add_eos.value_or(false) && eos) suffix.emplace_back(token_str(*eos), *eos);
  } else if (is_bert) {
    if (!unk)
      unk = vocab.find("[UNK]") >= 0 ? std::optional<int32_t>(vocab.find("[UNK]")) : std::nullopt;
    if (!unk) return invalid_argument("BERT vocabulary has no unknown token");
    impl->model = make_wordpiece_model(std::move(vocab), "##", 100, *unk);
    KITE_ASSIGN_OR_RETURN(
        impl->normalizer,
        Normalizer::from_json(bj::object{{"type", "BertNormalizer"}, {"lowercase", true}},
                              "normalizer"));
    KITE_ASSIGN_OR_RETURN(
        impl->pre_tokenizer,
        PreTokenizer::from_json(bj::object{{"type", "BertPreTokenizer"}}, "pre_tokenizer"));
    KITE_ASSIGN_OR_RETURN(impl->decoder,
                          Decoder::from_json(bj::object{{"type", "WordPiece"}}, "decoder"));
    std::optional<int32_t> cls = valid_id(v.cls_id);
    std::optional<int32_t> sep = valid_id(v.sep_id);
    if (!cls) cls = bos;
    if (!sep) sep = eos;
    if (cls) prefix.emplace_back(token_str(*cls), *cls);
    if (sep) suffix.emplace_back(token_str(*sep), *sep);
    if (!bos) bos = cls;
    if (!eos) eos = sep;
  } else {
    return Status(StatusCode::kUnimplemented, "GGUF tokenizer model '" + v.model +
                                                  "' is not supported (llama, gpt2, bert are)");
  }

  if (!prefix.empty() || !suffix.empty()) {
    KITE_ASSIGN_OR_RETURN(
        impl->post_processor,
        PostProcessor::from_json(template_processing(prefix, suffix), "post_processor"));
  }
  // Control and unknown tokens are special added tokens (split out when parse_special is on);
  // user-defined tokens are plain added tokens (always split out), as llama.cpp treats them.
  for (size_t i = 0; i < n; ++i) {
    int32_t type = type_of(i);
    if (type != kGgufTokenControl && type != kGgufTokenUnknown && type != kGgufTokenUserDefined)
      continue;
    AddedToken t;
    t.content = token_str(static_cast<int32_t>(i));
    t.special = type != kGgufTokenUserDefined;
    t.normalized = false;
    impl->added.add(t, *impl->model);
  }
  auto name_of = [&](std::optional<int32_t> id) -> std::optional<std::string> {
    if (!id) return std::nullopt;
    return token_str(*id);
  };
  impl->bos_token = name_of(bos);
  impl->eos_token = name_of(eos);
  impl->unk_token = name_of(unk);
  impl->pad_token = name_of(pad);
  impl->add_bos_token = v.add_bos;
  impl->add_eos_token = v.add_eos;
  if (v.chat_template) {
    impl->chat_template = v.chat_template;
    impl->chat_templates["default"] = *v.chat_template;
  }
  impl->finalize();
  return impl;
}

}  // namespace kite
