// resolve(): which files a load needs, online (from the Hub's listing) or offline (from the
// cached snapshot), and the path the loaders are given.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/json_util.h"
#include "core/logging.h"
#include "hub/hub.h"

namespace kite::hub {
namespace {
namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string home_dir() {
  std::string h = env("HOME");
  return h.empty() ? std::string("/root") : h;
}

std::string expand_user(std::string p) {
  if (!p.empty() && p.front() == '~') p = home_dir() + p.substr(1);
  return p;
}

std::string hf_home() {
  std::string h = env("HF_HOME");
  if (!h.empty()) return expand_user(h);
  std::string xdg = env("XDG_CACHE_HOME");
  return (fs::path(xdg.empty() ? home_dir() + "/.cache" : expand_user(xdg)) / "huggingface")
      .string();
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string basename_of(const std::string& p) { return p.substr(p.rfind('/') + 1); }

bool is_gguf_weights(const std::string& f) {
  return ends_with(f, ".gguf") && basename_of(f).find("mmproj") == std::string::npos;
}

// The .gguf file of a repo (listed files) that a tag / filename / default picks.
Result<std::string> pick_gguf(const std::vector<std::string>& files, const RepoRef& ref,
                              const std::string& where) {
  std::vector<std::string> ggufs;
  for (const auto& f : files) {
    if (is_gguf_weights(f)) ggufs.push_back(f);
  }
  if (!ref.filename.empty()) {
    if (std::find(files.begin(), files.end(), ref.filename) != files.end()) return ref.filename;
    return not_found(fmt::format("{} has no file {} ({})", ref.repo_id, ref.filename, where));
  }
  if (ggufs.empty()) {
    return not_found(fmt::format("{} has no .gguf file ({})", ref.repo_id, where));
  }
  const std::string tag = upper(ref.quant_tag.empty() ? "Q4_K_M" : ref.quant_tag);
  std::vector<std::string> matches;
  for (const auto& f : ggufs) {
    const std::string name = upper(basename_of(f));
    for (size_t at = name.find(tag); at != std::string::npos; at = name.find(tag, at + 1)) {
      const char before = at == 0 ? '-' : name[at - 1];
      const char after = at + tag.size() < name.size() ? name[at + tag.size()] : '.';
      if ((before == '-' || before == '.' || before == '_') && (after == '.' || after == '-')) {
        matches.push_back(f);
        break;
      }
    }
  }
  if (ref.quant_tag.empty() && ggufs.size() == 1) matches = ggufs;
  if (matches.size() == 1) {
    if (matches[0].find("-of-") != std::string::npos) {
      return unimplemented(
          fmt::format("{} is split into several files; kite loads one .gguf file", matches[0]));
    }
    return matches[0];
  }
  std::vector<std::string> names;
  for (const auto& f : ggufs) names.push_back(basename_of(f));
  if (matches.size() > 1) {
    bool split = std::all_of(matches.begin(), matches.end(),
                             [](const auto& m) { return m.find("-of-") != std::string::npos; });
    if (split) {
      return unimplemented(
          fmt::format("the {} GGUF of {} is split into {} files; kite loads one "
                      ".gguf file",
                      tag, ref.repo_id, matches.size()));
    }
  }
  return not_found(fmt::format(
      "{}: {} ({}); name one as {}:<quant> or {}/<file>.gguf. Files: {}", ref.repo_id,
      matches.empty() ? "no .gguf file matches " + tag : "several .gguf files match " + tag, where,
      ref.repo_id, ref.repo_id, fmt::join(names, ", ")));
}

bool contains(const std::vector<std::string>& files, const std::string& f) {
  return std::find(files.begin(), files.end(), f) != files.end();
}

const char* const kConfigFiles[] = {"config.json", "generation_config.json"};
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json",
                                       "chat_template.jinja"};

// Shard file names listed by model.safetensors.index.json.
Result<std::vector<std::string>> index_shards(const std::string& index_path) {
  KITE_ASSIGN_OR_RETURN(boost::json::value v, json::parse_file(index_path));
  const auto* obj = v.if_object();
  const auto* map = obj ? obj->if_contains("weight_map") : nullptr;
  if (map == nullptr || !map->is_object()) {
    return data_loss(index_path + ": no \"weight_map\" object");
  }
  std::set<std::string> shards;
  for (const auto& kv : map->as_object()) {
    if (!kv.value().is_string()) return data_loss(index_path + ": a weight_map value is no string");
    std::string shard(kv.value().as_string());
    if (shard.find("..") != std::string::npos || shard.empty() || shard.front() == '/') {
      return data_loss(index_path + ": bad shard name " + shard);
    }
    shards.insert(std::move(shard));
  }
  return std::vector<std::string>(shards.begin(), shards.end());
}

// Files (relative paths) below a snapshot folder.
std::vector<std::string> list_snapshot(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // lexically: fs::relative would follow the symlink into blobs/
    if (it->is_regular_file(ec)) out.push_back(it->path().lexically_relative(dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Plan {
  std::vector<std::string> files;  // to have in the snapshot
  std::string load;                // "" (the snapshot folder) or a file in it
  bool safetensors_index = false;  // shards come from the index once it is there
};

Result<Plan> plan_files(const RepoRef& ref, Need need, const std::vector<std::string>& files,
                        const std::string& where) {
  Plan plan;
  const bool want_gguf = !ref.filename.empty() || !ref.quant_tag.empty();
  const bool has_safetensors =
      contains(files, "model.safetensors") || contains(files, "model.safetensors.index.json");
  if (need == Need::kTokenizer && !want_gguf && contains(files, "tokenizer.json")) {
    for (const char* f : kTokenizerFiles) {
      if (contains(files, f)) plan.files.emplace_back(f);
    }
    return plan;
  }
  if (need == Need::kConfig && !want_gguf && contains(files, "config.json")) {
    for (const char* f : kConfigFiles) {
      if (contains(files, f)) plan.files.emplace_back(f);
    }
    for (const char* f : kTokenizerFiles) {
      if (contains(files, f)) plan.files.emplace_back(f);
    }
    return plan;
  }
  if (!want_gguf && has_safetensors && need == Need::kModel) {
    if (!contains(files, "config.json")) {
      return not_found(
          fmt::format("{} has safetensors weights but no config.json ({})", ref.repo_id, where));
    }
    for (const char* f : kConfigFiles) {
      if (contains(files, f)) plan.files.emplace_back(f);
    }
    for (const char* f : kTokenizerFiles) {
      if (contains(files, f)) plan.files.emplace_back(f);
    }
    if (contains(files, "model.safetensors.index.json")) {
      plan.files.emplace_back("model.safetensors.index.json");
      plan.safetensors_index = true;
    } else {
      plan.files.emplace_back("model.safetensors");
    }
    return plan;
  }
  const bool any_gguf = std::any_of(files.begin(), files.end(), is_gguf_weights);
  if (want_gguf || any_gguf) {
    KITE_ASSIGN_OR_RETURN(std::string gguf, pick_gguf(files, ref, where));
    plan.files.push_back(gguf);
    plan.load = gguf;
    return plan;
  }
  if (need == Need::kTokenizer) {
    return not_found(
        fmt::format("{} has no tokenizer.json or .gguf file ({})", ref.repo_id, where));
  }
  const bool has_bin = std::any_of(files.begin(), files.end(), [](const std::string& f) {
    return ends_with(f, ".bin") || ends_with(f, ".pt") || ends_with(f, ".pth");
  });
  return not_found(
      fmt::format("{} has no model.safetensors(.index.json) or .gguf file ({}){}", ref.repo_id,
                  where, has_bin ? "; kite reads safetensors and GGUF, not PyTorch pickles" : ""));
}

std::string describe(const RepoRef& ref, const std::string& revision) {
  std::string s = ref.repo_id;
  if (!ref.filename.empty()) s += "/" + ref.filename;
  if (!ref.quant_tag.empty()) s += ":" + ref.quant_tag;
  if (revision != "main") s += " (revision " + revision + ")";
  return s;
}

Result<Resolved> resolve_offline(const RepoRef& ref, Need need, const RepoCache& cache,
                                 const std::string& revision, const std::string& why) {
  const std::optional<std::string> commit = cache.read_ref(revision);
  const std::string snapshot = commit ? cache.snapshot_dir(*commit) : std::string();
  std::error_code ec;
  if (!commit || !fs::is_directory(snapshot, ec)) {
    return not_found(fmt::format("{} is not in the Hugging Face cache ({}) and {}",
                                 describe(ref, revision), cache.cache_dir(), why));
  }
  const std::vector<std::string> files = list_snapshot(snapshot);
  const std::string where = "cached snapshot " + *commit;
  KITE_ASSIGN_OR_RETURN(Plan plan, plan_files(ref, need, files, where));
  std::vector<std::string> needed = plan.files;
  if (plan.safetensors_index) {
    KITE_ASSIGN_OR_RETURN(
        auto shards, index_shards(cache.pointer_path(*commit, "model.safetensors.index.json")));
    needed.insert(needed.end(), shards.begin(), shards.end());
  }
  for (const auto& f : needed) {
    if (!contains(files, f)) {
      return not_found(fmt::format("the cached snapshot of {} lacks {} and {}",
                                   describe(ref, revision), f, why));
    }
  }
  Resolved out;
  out.repo_id = ref.repo_id;
  out.commit = *commit;
  out.path = plan.load.empty() ? snapshot : cache.pointer_path(*commit, plan.load);
  return out;
}

}  // namespace

std::string default_cache_dir() {
  for (const char* name : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}) {
    std::string v = env(name);
    if (!v.empty()) return expand_user(v);
  }
  return (fs::path(hf_home()) / "hub").string();
}

std::string default_endpoint() {
  std::string e = env("HF_ENDPOINT");
  if (e.empty()) e = "https://huggingface.co";
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

std::string token_from_env() {
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    std::string v = env(name);
    if (!v.empty()) return v;
  }
  std::string path = env("HF_TOKEN_PATH");
  path = path.empty() ? (fs::path(hf_home()) / "token").string() : expand_user(path);
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

bool offline_from_env() {
  for (const char* name : {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}) {
    const std::string v = upper(env(name));
    if (v == "1" || v == "ON" || v == "YES" || v == "TRUE") return true;
  }
  return false;
}

Result<Resolved> resolve(std::string_view spec, Need need, const HubOptions& options) {
  const std::optional<RepoRef> ref = parse_repo_ref(spec);
  if (!ref) return Resolved{std::string(spec), "", ""};
  const std::string revision = options.revision.empty() ? "main" : options.revision;
  const RepoCache cache(options.cache_dir.empty() ? default_cache_dir() : options.cache_dir,
                        ref->repo_id);
  if (options.offline.value_or(offline_from_env())) {
    return resolve_offline(*ref, need, cache, revision, "HF_HUB_OFFLINE is set");
  }
  HubContext hub{options.endpoint.empty() ? default_endpoint() : options.endpoint,
                 options.token.empty() ? token_from_env() : options.token, ref->repo_id};
  while (!hub.endpoint.empty() && hub.endpoint.back() == '/') hub.endpoint.pop_back();
  Result<RepoInfo> info = fetch_repo_info(hub, revision);
  if (!info.ok()) {
    if (info.status().code() != StatusCode::kUnavailable) return info.status();
    // No network or the Hub is down: a cached snapshot still serves (as huggingface_hub).
    Result<Resolved> cached = resolve_offline(
        *ref, need, cache, revision, "the Hub cannot be reached: " + info.status().message());
    if (cached.ok()) {
      KITE_LOG_WARN("{}; using the cached snapshot {}", info.status().message(), cached->commit);
    }
    return cached;
  }
  const std::string where = fmt::format("revision {}, commit {}", revision, info->sha);
  KITE_ASSIGN_OR_RETURN(Plan plan, plan_files(*ref, need, info->files, where));
  KITE_RETURN_IF_ERROR(cache.write_ref(revision, info->sha));
  std::vector<std::string> files = plan.files;
  if (plan.safetensors_index) {
    KITE_RETURN_IF_ERROR(
        download_files(hub, cache, info->sha, {"model.safetensors.index.json"}, options.download));
    KITE_ASSIGN_OR_RETURN(
        auto shards, index_shards(cache.pointer_path(info->sha, "model.safetensors.index.json")));
    for (const auto& s : shards) {
      if (!contains(info->files, s)) {
        return not_found(fmt::format("{}: the index names {}, which is not in the repo ({})",
                                     ref->repo_id, s, where));
      }
    }
    files.insert(files.end(), shards.begin(), shards.end());
  }
  KITE_RETURN_IF_ERROR(download_files(hub, cache, info->sha, files, options.download));
  Resolved out;
  out.repo_id = ref->repo_id;
  out.commit = info->sha;
  out.path =
      plan.load.empty() ? cache.snapshot_dir(info->sha) : cache.pointer_path(info->sha, plan.load);
  return out;
}

}  // namespace kite::hub
