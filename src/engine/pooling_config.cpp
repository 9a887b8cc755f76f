#include "engine/pooling_config.h"

#include <boost/json.hpp>
#include <filesystem>

#include "core/json_util.h"

namespace kite {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;

// "pooling_mode_mean_tokens" -> "MEAN", "pooling_mode_lasttoken" -> "LAST",
// "pooling_mode_cls_token" -> "CLS" (vLLM's get_pooling_config_name).
Result<std::string> pooling_type_name(std::string key) {
  if (key.rfind("pooling_mode_", 0) == 0) key = key.substr(13);
  if (auto u = key.find('_'); u != std::string::npos) key = key.substr(0, u);
  if (key.find("lasttoken") != std::string::npos) key = "last";
  if (key == "last") return std::string("LAST");
  if (key == "mean") return std::string("MEAN");
  if (key == "cls") return std::string("CLS");
  return unimplemented("pooling mode '" + key + "' is not supported (last, mean and cls are)");
}

}  // namespace

Result<PoolingInfo> read_pooling_config(const std::string& model_path, int64_t hidden_size) {
  PoolingInfo p;
  p.type = "LAST";
  p.normalize = true;
  p.embedding_size = hidden_size;
  std::error_code ec;
  const fs::path dir(model_path);
  if (!fs::is_directory(dir, ec)) return p;
  if (fs::exists(dir / "modules.json", ec)) {
    KITE_ASSIGN_OR_RETURN(bj::value modules, json::parse_file((dir / "modules.json").string()));
    if (!modules.is_array()) return invalid_argument("modules.json must be a list of modules");
    p.normalize = false;
    std::string pooling_path;
    for (const bj::value& m : modules.get_array()) {
      if (!m.is_object()) return invalid_argument("modules.json: every module must be an object");
      KITE_ASSIGN_OR_RETURN(std::optional<std::string> type,
                            json::get_string(m.get_object(), "type"));
      KITE_ASSIGN_OR_RETURN(std::optional<std::string> path,
                            json::get_string(m.get_object(), "path"));
      if (type == "sentence_transformers.models.Normalize") p.normalize = true;
      if (type == "sentence_transformers.models.Pooling") pooling_path = path.value_or("");
    }
    if (!pooling_path.empty()) {
      const fs::path file = dir / pooling_path / "config.json";
      KITE_ASSIGN_OR_RETURN(bj::value cfg, json::parse_file(file.string()));
      if (!cfg.is_object()) return invalid_argument(file.string() + " must be an object");
      for (const auto& kv : cfg.get_object()) {
        if (kv.value().is_bool() && kv.value().get_bool()) {
          KITE_ASSIGN_OR_RETURN(p.type, pooling_type_name(std::string(kv.key())));
          break;
        }
      }
    }
  }
  if (fs::exists(dir / "config.json", ec)) {
    KITE_ASSIGN_OR_RETURN(bj::value cfg, json::parse_file((dir / "config.json").string()));
    if (cfg.is_object()) {
      const bj::object& o = cfg.get_object();
      KITE_ASSIGN_OR_RETURN(std::optional<bool> m, json::get_bool(o, "is_matryoshka"));
      p.is_matryoshka = m.value_or(false);
      if (auto it = o.find("matryoshka_dimensions"); it != o.end() && !it->value().is_null()) {
        if (!it->value().is_array()) {
          return invalid_argument("config.json: matryoshka_dimensions must be a list of sizes");
        }
        for (const bj::value& d : it->value().get_array()) {
          if (!d.is_int64() || d.get_int64() < 1 || d.get_int64() > hidden_size) {
            return invalid_argument("config.json: matryoshka_dimensions must be sizes in [1, " +
                                    std::to_string(hidden_size) + "]");
          }
          p.matryoshka_dimensions.push_back(d.get_int64());
        }
        p.is_matryoshka = true;
      }
    }
  }
  return p;
}

}  // namespace kite
