// WordPiece and WordLevel models, and the JSON factory for every model type.
#include "frontend/models.h"

#include "frontend/json_reader.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

using tokjson::JsonObj;

class WordPieceModel final : public Model {
 public:
  WordPieceModel(Vocab vocab, std::string prefix, size_t max_chars, int32_t unk_id)
      : vocab_(std::move(vocab)),
        prefix_(std::move(prefix)),
        max_chars_(max_chars),
        unk_id_(unk_id) {}

  const Vocab& vocab() const override { return vocab_; }

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override {
    if (utf8::count_chars(word) > max_chars_) {
      out.push_back(unk_id_);
      return;
    }
    size_t first = out.size();
    std::string buf;
    size_t start = 0;
    while (start < word.size()) {
      size_t end = word.size();
      int32_t found = -1;
      while (start < end) {
        buf.clear();
        if (start > 0) buf.append(prefix_);
        buf.append(word.substr(start, end - start));
        found = vocab_.find(buf);
        if (found >= 0) break;
        size_t len = 0;
        utf8::decode_last(word.substr(start, end - start), &len);
        end -= len;
      }
      if (found < 0) {
        out.resize(first);
        out.push_back(unk_id_);
        return;
      }
      out.push_back(found);
      start = end;
    }
  }

 private:
  Vocab vocab_;
  std::string prefix_;
  size_t max_chars_;
  int32_t unk_id_;
};

class WordLevelModel final : public Model {
 public:
  WordLevelModel(Vocab vocab, int32_t unk_id) : vocab_(std::move(vocab)), unk_id_(unk_id) {}
  const Vocab& vocab() const override { return vocab_; }
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override {
    int32_t id = vocab_.find(word);
    if (id < 0) id = unk_id_;
    if (id >= 0) out.push_back(id);
  }

 private:
  Vocab vocab_;
  int32_t unk_id_;
};

Result<Vocab> read_vocab(const JsonObj& o) {
  const boost::json::value* v = o.get("vocab");
  if (v == nullptr) return o.error("'vocab' is missing");
  if (!v->is_object()) {
    return invalid_argument(o.child_path("vocab") + " must be an object of token -> id, got " +
                            std::string(tokjson::kind_name(*v)));
  }
  Vocab vocab;
  for (const auto& kv : v->get_object()) {
    const boost::json::value& idv = kv.value();
    int64_t id = -1;
    if (idv.is_int64()) {
      id = idv.get_int64();
    } else if (idv.is_uint64() && idv.get_uint64() <= static_cast<uint64_t>(INT32_MAX)) {
      id = static_cast<int64_t>(idv.get_uint64());
    }
    std::string_view token(kv.key().data(), kv.key().size());
    if (id < 0 || id > INT32_MAX) {
      return invalid_argument(o.child_path("vocab") + "['" + utf8::lossy(token) +
                              "'] must be an id in [0, 2^31), got " +
                              std::string(tokjson::kind_name(idv)) +
                              (idv.is_number() ? " " + boost::json::serialize(idv) : ""));
    }
    if (!utf8::is_valid(token)) {
      return invalid_argument(o.child_path("vocab") + ": token '" + utf8::lossy(token) +
                              "' is not valid UTF-8");
    }
    vocab.add(token, static_cast<int32_t>(id));
  }
  return vocab;
}

Result<std::optional<std::string>> optional_string(const JsonObj& o, std::string_view key) {
  const boost::json::value* v = o.get(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) {
    return invalid_argument(o.child_path(key) + " must be a string or null, got " +
                            std::string(tokjson::kind_name(*v)));
  }
  return std::optional<std::string>(std::string(v->get_string()));
}

Result<std::vector<std::pair<std::string, std::string>>> read_merges(const JsonObj& o) {
  std::vector<std::pair<std::string, std::string>> merges;
  const boost::json::value* v = o.get("merges");
  if (v == nullptr) return merges;  // a BPE without merges is a plain character vocabulary
  if (!v->is_array()) {
    return invalid_argument(o.child_path("merges") + " must be an array, got " +
                            std::string(tokjson::kind_name(*v)));
  }
  const auto& arr = v->get_array();
  merges.reserve(arr.size());
  std::string path = o.child_path("merges");
  bool tuples = !arr.empty() && arr[0].is_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const boost::json::value& m = arr[i];
    auto where = [&] { return path + "[" + std::to_string(i) + "]"; };
    if (tuples) {
      if (!m.is_array() || m.get_array().size() != 2 || !m.get_array()[0].is_string() ||
          !m.get_array()[1].is_string()) {
        return invalid_argument(where() + " must be a pair of strings like the other merges");
      }
      merges.emplace_back(std::string(m.get_array()[0].get_string()),
                          std::string(m.get_array()[1].get_string()));
      continue;
    }
    if (!m.is_string()) {
      return invalid_argument(where() +
                              " must be a string \"left right\" like the other merges, got " +
                              std::string(tokjson::kind_name(m)));
    }
    std::string_view line = m.get_string();
    if (line.substr(0, 8) == "#version") continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos) {
      return invalid_argument(where() + " must be two tokens separated by one space, got '" +
                              utf8::lossy(line) + "'");
    }
    merges.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
  return merges;
}

Result<std::unique_ptr<Model>> bpe_from_json(const JsonObj& o) {
  KITE_ASSIGN_OR_RETURN(Vocab vocab, read_vocab(o));
  KITE_ASSIGN_OR_RETURN(auto merges, read_merges(o));
  BpeOptions opt;
  KITE_ASSIGN_OR_RETURN(opt.unk_token, optional_string(o, "unk_token"));
  KITE_ASSIGN_OR_RETURN(opt.continuing_subword_prefix,
                        optional_string(o, "continuing_subword_prefix"));
  KITE_ASSIGN_OR_RETURN(opt.end_of_word_suffix, optional_string(o, "end_of_word_suffix"));
  KITE_ASSIGN_OR_RETURN(opt.fuse_unk, o.bool_or("fuse_unk", false));
  KITE_ASSIGN_OR_RETURN(opt.byte_fallback, o.bool_or("byte_fallback", false));
  KITE_ASSIGN_OR_RETURN(opt.ignore_merges, o.bool_or("ignore_merges", false));
  // BPE dropout is random at encode time; kite always encodes deterministically (dropout off).
  KITE_ASSIGN_OR_RETURN(double dropout, o.number_or("dropout", 0.0));
  if (!(dropout >= 0.0 && dropout <= 1.0)) return o.error("dropout must be in [0, 1]");
  auto model = make_bpe_model(std::move(vocab), merges, std::move(opt));
  if (!model.ok()) return model.status().with_context(o.path());
  return model;
}

Result<std::unique_ptr<Model>> wordpiece_from_json(const JsonObj& o) {
  KITE_ASSIGN_OR_RETURN(Vocab vocab, read_vocab(o));
  vocab.finalize();
  KITE_ASSIGN_OR_RETURN(std::string unk, o.str_or("unk_token", "[UNK]"));
  KITE_ASSIGN_OR_RETURN(std::string prefix, o.str_or("continuing_subword_prefix", "##"));
  KITE_ASSIGN_OR_RETURN(int64_t max_chars, o.int_or("max_input_chars_per_word", 100));
  if (max_chars < 0) return o.error("max_input_chars_per_word must be >= 0");
  int32_t unk_id = vocab.find(unk);
  if (unk_id < 0) return o.error("unk_token '" + utf8::lossy(unk) + "' is not in the vocabulary");
  return std::unique_ptr<Model>(new WordPieceModel(std::move(vocab), std::move(prefix),
                                                   static_cast<size_t>(max_chars), unk_id));
}

Result<std::unique_ptr<Model>> wordlevel_from_json(const JsonObj& o) {
  KITE_ASSIGN_OR_RETURN(Vocab vocab, read_vocab(o));
  vocab.finalize();
  KITE_ASSIGN_OR_RETURN(std::string unk, o.str_or("unk_token", "<unk>"));
  int32_t unk_id = vocab.find(unk);
  if (unk_id < 0) return o.error("unk_token '" + utf8::lossy(unk) + "' is not in the vocabulary");
  return std::unique_ptr<Model>(new WordLevelModel(std::move(vocab), unk_id));
}

}  // namespace

std::unique_ptr<Model> make_wordpiece_model(Vocab vocab, std::string prefix, size_t max_chars,
                                            int32_t unk_id) {
  return std::make_unique<WordPieceModel>(std::move(vocab), std::move(prefix), max_chars, unk_id);
}

Result<std::unique_ptr<Model>> Model::from_json(const boost::json::value& v,
                                                const std::string& path) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(v, path));
  KITE_ASSIGN_OR_RETURN(std::string type, o.str_or("type", ""));
  if (type.empty()) {
    // Files written before models were tagged: recognise them by their fields.
    if (o.has("merges")) {
      type = "BPE";
    } else if (o.has("max_input_chars_per_word") || o.has("continuing_subword_prefix")) {
      type = "WordPiece";
    } else if (o.get("vocab") != nullptr && o.get("vocab")->is_array()) {
      type = "Unigram";
    } else {
      type = "WordLevel";
    }
  }
  if (type == "BPE") return bpe_from_json(o);
  if (type == "WordPiece") return wordpiece_from_json(o);
  if (type == "WordLevel") return wordlevel_from_json(o);
  if (type == "Unigram") {
    return Status(StatusCode::kUnimplemented, o.path() + ": the Unigram model is not supported");
  }
  return o.error("unknown model type '" + type + "'");
}

}  // namespace kite
