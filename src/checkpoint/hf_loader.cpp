// Hugging Face directories: config.json, generation_config.json and safetensors weights (one
// file, or shards listed by model.safetensors.index.json).
#include <fmt/format.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <map>
#include <set>

#include "checkpoint/loaders.h"
#include "checkpoint/safetensors.h"
#include "core/json_util.h"
#include "core/logging.h"

namespace kite {
namespace {

namespace bj = boost::json;

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join(const std::string& dir, std::string_view name) {
  return dir + "/" + std::string(name);
}

// Adds a shard's tensors to the store. Tensors kite cannot view (unsupported dtype) are noted as
// unusable with the reason, reported only if the model needs them.
Status add_shard(const SafetensorsFile& shard, WeightStore* store, std::set<std::string>* seen) {
  for (const SafetensorsTensor& t : shard.tensors()) {
    if (!seen->insert(t.name).second) {
      return data_loss(fmt::format("tensor '{}' is stored in more than one shard ({} is one)",
                                   t.name, shard.name()));
    }
    auto view = shard.view(t);
    if (!view.ok()) {
      store->set_unusable(t.name, view.status().with_context(shard.name()));
      continue;
    }
    store->put(t.name, *view);
  }
  // `__metadata__` may alias a missing name to a stored tensor (tied embeddings saved once:
  // {"model.embed_tokens.weight": "lm_head.weight"}).
  for (const auto& [key, value] : shard.metadata()) {
    if (store->find(key) == nullptr && shard.find(key) == nullptr) {
      if (const TensorView* target = store->find(value)) store->put(key, *target);
    }
  }
  store->keep_file(shard.file());
  return ok_status();
}

struct ShardIndex {
  std::vector<std::string> shards;                           // distinct file names, in order
  std::vector<std::pair<std::string, std::string>> tensors;  // tensor -> file name
};

Result<ShardIndex> read_index(const std::string& index_path) {
  KITE_ASSIGN_OR_RETURN(bj::value v, json::parse_file(index_path));
  if (!v.is_object()) return invalid_argument(index_path + ": must be a JSON object");
  auto it = v.get_object().find("weight_map");
  if (it == v.get_object().end() || !it->value().is_object()) {
    return invalid_argument(index_path + ": missing object 'weight_map'");
  }
  ShardIndex index;
  std::set<std::string> seen;
  for (const auto& kv : it->value().get_object()) {
    if (!kv.value().is_string()) {
      return invalid_argument(fmt::format("{}: weight_map entry '{}' must be a file name",
                                          index_path, std::string_view(kv.key())));
    }
    const std::string file(kv.value().get_string());
    // Shards live next to the index: a path elsewhere is a malformed (or hostile) index.
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
      return invalid_argument(
          fmt::format("{}: weight_map entry '{}' names '{}', which is not a "
                      "file name in the model directory",
                      index_path, std::string_view(kv.key()), file));
    }
    if (seen.insert(file).second) index.shards.push_back(file);
    index.tensors.emplace_back(std::string(kv.key()), file);
  }
  if (index.shards.empty()) return invalid_argument(index_path + ": weight_map is empty");
  return index;
}

// Each tensor the index lists must be in the shard it names.
Status check_index(const std::string& index_path, const ShardIndex& index,
                   const std::map<std::string, std::string>& where) {
  for (const auto& [name, file] : index.tensors) {
    auto it = where.find(name);
    if (it == where.end()) {
      return data_loss(fmt::format("{}: index lists tensor '{}' in {}, which does not hold it",
                                   index_path, name, file));
    }
    if (it != where.end() && it->second != file) {
      return data_loss(fmt::format("{}: index lists tensor '{}' in {}, but it is in {}", index_path,
                                   name, file, it->second));
    }
  }
  return ok_status();
}

}  // namespace

Status load_hf_configs(const std::string& path, WeightStore* store) {
  std::string config_path = path;
  std::string dir = path;
  if (is_dir(path)) {
    config_path = join(path, "config.json");
  } else {
    const size_t slash = path.rfind('/');
    dir = slash == std::string::npos ? "." : path.substr(0, slash);
  }
  if (!file_exists(config_path)) {
    return not_found(fmt::format("no config.json in {}", dir));
  }
  KITE_ASSIGN_OR_RETURN(std::string text, read_file(config_path, kMaxConfigFileBytes));
  auto config = parse_hf_config(text);
  if (!config.ok()) return config.status().with_context(dir);
  store->set_config(std::move(*config));
  const std::string gen_path = join(dir, "generation_config.json");
  if (file_exists(gen_path)) {
    KITE_ASSIGN_OR_RETURN(std::string gen_text, read_file(gen_path, kMaxConfigFileBytes));
    auto gen = parse_generation_config(gen_text);
    if (!gen.ok()) return gen.status().with_context(dir);
    store->set_generation_config(std::move(*gen));
  }
  return ok_status();
}

Status load_hf_directory(const std::string& dir, WeightStore* store) {
  KITE_RETURN_IF_ERROR(load_hf_configs(dir, store));

  std::set<std::string> seen;
  const std::string index_path = join(dir, "model.safetensors.index.json");
  const std::string single_path = join(dir, "model.safetensors");
  if (file_exists(index_path)) {
    KITE_ASSIGN_OR_RETURN(ShardIndex index, read_index(index_path));
    std::map<std::string, std::string> where;  // tensor -> shard file
    for (const std::string& name : index.shards) {
      const std::string shard_path = join(dir, name);
      if (!file_exists(shard_path)) {
        return not_found(fmt::format(
            "{}: shard {} listed in model.safetensors.index.json is missing", dir, name));
      }
      KITE_ASSIGN_OR_RETURN(SafetensorsFile shard, SafetensorsFile::open(shard_path));
      for (const SafetensorsTensor& t : shard.tensors()) where.emplace(t.name, name);
      KITE_RETURN_IF_ERROR(add_shard(shard, store, &seen));
    }
    KITE_RETURN_IF_ERROR(check_index(index_path, index, where));
  } else if (file_exists(single_path)) {
    KITE_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(single_path));
    KITE_RETURN_IF_ERROR(add_shard(file, store, &seen));
  } else if (file_exists(join(dir, "pytorch_model.bin")) ||
             file_exists(join(dir, "pytorch_model.bin.index.json"))) {
    return unimplemented(fmt::format(
        "{}: PyTorch .bin checkpoints are not supported; convert them to safetensors", dir));
  } else {
    return not_found(
        fmt::format("no model.safetensors or model.safetensors.index.json in {}", dir));
  }
  return ok_status();
}

}  // namespace kite
