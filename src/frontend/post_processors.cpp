#include "frontend/post_processors.h"

#include <optional>

#include "frontend/json_reader.h"

namespace kite {

namespace {

using tokjson::JsonObj;

// Everything here reduces to "prefix ids, the sequence, suffix ids" for a single sequence.
class AffixProcessor final : public PostProcessor {
 public:
  AffixProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void process(std::vector<int32_t>& ids) const override {
    if (!prefix_.empty()) ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  }
  void added_ids(std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) const override {
    prefix.insert(prefix.end(), prefix_.begin(), prefix_.end());
    suffix.insert(suffix.end(), suffix_.begin(), suffix_.end());
  }

 private:
  std::vector<int32_t> prefix_;
  std::vector<int32_t> suffix_;
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->process(ids);
  }
  void added_ids(std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) const override {
    // Later processors wrap earlier output: their prefix goes first, their suffix last.
    for (const auto& p : parts_) {
      std::vector<int32_t> pre;
      std::vector<int32_t> suf;
      p->added_ids(pre, suf);
      prefix.insert(prefix.begin(), pre.begin(), pre.end());
      suffix.insert(suffix.end(), suf.begin(), suf.end());
    }
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

// ["[SEP]", 102] -> 102
Result<int32_t> token_pair_id(const JsonObj& o, std::string_view key) {
  const boost::json::value* v = o.get(key);
  if (v == nullptr || !v->is_array() || v->get_array().size() != 2 ||
      !v->get_array()[0].is_string() || !v->get_array()[1].is_number()) {
    return invalid_argument(o.child_path(key) + " must be [token, id]");
  }
  const auto& idv = v->get_array()[1];
  int64_t id = idv.is_int64()    ? idv.get_int64()
               : idv.is_uint64() ? static_cast<int64_t>(idv.get_uint64())
                                 : -1;
  if (id < 0 || id > INT32_MAX) return invalid_argument(o.child_path(key) + ": bad id");
  return static_cast<int32_t>(id);
}

// A general single-sequence template: special-token id runs and copies of the sequence ($A).
class TemplateProcessor final : public PostProcessor {
 public:
  // items: a run of special ids, or an empty optional for $A.
  explicit TemplateProcessor(std::vector<std::optional<std::vector<int32_t>>> items)
      : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    for (const auto& item : items_) {
      if (item) {
        out.insert(out.end(), item->begin(), item->end());
      } else {
        out.insert(out.end(), ids.begin(), ids.end());
      }
    }
    ids.swap(out);
  }
  void added_ids(std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) const override {
    size_t first_seq = items_.size();
    size_t last_seq = items_.size();
    for (size_t i = 0; i < items_.size(); ++i) {
      if (!items_[i]) {
        if (first_seq == items_.size()) first_seq = i;
        last_seq = i;
      }
    }
    for (size_t i = 0; i < items_.size(); ++i) {
      if (!items_[i]) continue;
      std::vector<int32_t>& dst = (first_seq == items_.size() || i < first_seq) ? prefix : suffix;
      if (i > first_seq && i < last_seq) continue;  // between two copies of the sequence
      dst.insert(dst.end(), items_[i]->begin(), items_[i]->end());
    }
  }

 private:
  std::vector<std::optional<std::vector<int32_t>>> items_;
};

Result<std::unique_ptr<PostProcessor>> template_from_json(const JsonObj& o) {
  KITE_ASSIGN_OR_RETURN(const boost::json::array* single, o.arr("single"));
  // special_tokens: {name: {"id": name, "ids": [...], "tokens": [...]}}
  const boost::json::value* specials = o.get("special_tokens");
  if (specials != nullptr && !specials->is_object()) {
    return invalid_argument(o.child_path("special_tokens") + " must be an object");
  }
  std::vector<std::optional<std::vector<int32_t>>> items;
  for (size_t i = 0; i < single->size(); ++i) {
    std::string item_path = o.child_path("single") + "[" + std::to_string(i) + "]";
    KITE_ASSIGN_OR_RETURN(JsonObj item, JsonObj::of((*single)[i], item_path));
    if (item.has("Sequence")) {
      KITE_ASSIGN_OR_RETURN(JsonObj seq, item.obj("Sequence"));
      KITE_ASSIGN_OR_RETURN(std::string which, seq.str_or("id", "A"));
      // tokenizers panics on $B in the single template; kite rejects the file.
      if (which != "A") return seq.error("the single template may only use sequence A");
      items.emplace_back(std::nullopt);
      continue;
    }
    if (!item.has("SpecialToken")) {
      return item.error("must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
    KITE_ASSIGN_OR_RETURN(JsonObj st, item.obj("SpecialToken"));
    KITE_ASSIGN_OR_RETURN(std::string name, st.str("id"));
    const boost::json::value* entry =
        specials == nullptr ? nullptr : specials->get_object().if_contains(name);
    if (entry == nullptr) {
      return o.error("special token '" + name + "' used in the template is not in special_tokens");
    }
    KITE_ASSIGN_OR_RETURN(JsonObj e,
                          JsonObj::of(*entry, o.child_path("special_tokens") + "." + name));
    KITE_ASSIGN_OR_RETURN(const boost::json::array* ids, e.arr("ids"));
    std::vector<int32_t> run;
    for (const auto& idv : *ids) {
      int64_t id = idv.is_int64()    ? idv.get_int64()
                   : idv.is_uint64() ? static_cast<int64_t>(idv.get_uint64())
                                     : -1;
      if (id < 0 || id > INT32_MAX) return e.error("ids must be non-negative integers");
      run.push_back(static_cast<int32_t>(id));
    }
    items.emplace_back(std::move(run));
  }
  return std::unique_ptr<PostProcessor>(new TemplateProcessor(std::move(items)));
}

}  // namespace

std::unique_ptr<PostProcessor> PostProcessor::make_template(std::vector<int32_t> prefix,
                                                            std::vector<int32_t> suffix) {
  return std::make_unique<AffixProcessor>(std::move(prefix), std::move(suffix));
}

Result<std::unique_ptr<PostProcessor>> PostProcessor::from_json(const boost::json::value& v,
                                                                const std::string& path) {
  KITE_ASSIGN_OR_RETURN(JsonObj o, JsonObj::of(v, path));
  KITE_ASSIGN_OR_RETURN(std::string type, o.str("type"));
  if (type == "TemplateProcessing") return template_from_json(o);
  if (type == "ByteLevel") return make_template({}, {});
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    KITE_ASSIGN_OR_RETURN(int32_t cls, token_pair_id(o, "cls"));
    KITE_ASSIGN_OR_RETURN(int32_t sep, token_pair_id(o, "sep"));
    return make_template({cls}, {sep});
  }
  if (type == "Sequence") {
    KITE_ASSIGN_OR_RETURN(const boost::json::array* arr, o.arr("processors"));
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t i = 0; i < arr->size(); ++i) {
      KITE_ASSIGN_OR_RETURN(auto part, from_json((*arr)[i], o.child_path("processors") + "[" +
                                                                std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessor(std::move(parts)));
  }
  return o.error("unknown post_processor type '" + type + "'");
}

}  // namespace kite
