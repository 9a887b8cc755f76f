// WeightStore and read_checkpoint's format dispatch.
#include "checkpoint/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <set>

#include "checkpoint/loaders.h"

namespace kite {
namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::kSafetensors:
      return "safetensors";
    case ModelFormat::kGguf:
      return "gguf";
    case ModelFormat::kDummy:
      return "dummy";
  }
  return "unknown";
}

const TensorView* WeightStore::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Result<TensorView> WeightStore::get(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) return not_found(fmt::format("model has no tensor '{}'", name));
  return *t;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

int64_t WeightStore::weight_bytes() const {
  std::set<const void*> seen;
  int64_t total = 0;
  for (const auto& [name, view] : tensors_) {
    if (seen.insert(view.data).second) total += view.nbytes();
  }
  return total;
}

void* WeightStore::own(HostBuffer buf) {
  owned_.push_back(std::move(buf));
  return owned_.back().data();
}

void WeightStore::erase(std::string_view name) {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) tensors_.erase(it);
}

Status read_checkpoint(const std::string& path, const LoadOptions& options, WeightStore* store) {
  const std::string& fmt_name = options.load_format;
  if (fmt_name != "auto" && fmt_name != "safetensors" && fmt_name != "gguf" &&
      fmt_name != "dummy") {
    return invalid_argument(fmt::format(
        "unknown load format '{}' (auto, safetensors, gguf, dummy are supported)", fmt_name));
  }
  if (!exists(path)) return not_found(fmt::format("no such model path: {}", path));
  store->set_path(path);
  const bool dir = is_dir(path);
  if (fmt_name == "dummy") {
    store->set_format(ModelFormat::kDummy);
    return load_hf_configs(path, store);
  }
  if (!dir && (fmt_name == "gguf" || (fmt_name == "auto" && ends_with(path, ".gguf")))) {
    store->set_format(ModelFormat::kGguf);
    return load_gguf_file(path, store);
  }
  if (dir && fmt_name != "gguf") {
    store->set_format(ModelFormat::kSafetensors);
    return load_hf_directory(path, store);
  }
  return invalid_argument(fmt::format("{}: expected {} (load format '{}')", path,
                                      fmt_name == "gguf" ? "a .gguf file"
                                      : fmt_name == "safetensors"
                                          ? "a Hugging Face model directory"
                                          : "a Hugging Face model directory or a .gguf file",
                                      fmt_name));
}

}  // namespace kite
