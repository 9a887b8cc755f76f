#include "hub/repo_ref.h"

#include <filesystem>
#include <vector>

namespace kite::hub {

bool valid_repo_segment(std::string_view s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  if (s.front() == '.' || s.front() == '-' || s.back() == '.' || s.back() == '-') return false;
  return s.find("--") == std::string_view::npos && s.find("..") == std::string_view::npos;
}

std::optional<RepoRef> parse_repo_ref(std::string_view spec) {
  if (spec.empty() || spec.front() == '/' || spec.front() == '.' || spec.front() == '~' ||
      spec.find('\\') != std::string_view::npos) {
    return std::nullopt;
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(std::string(spec)), ec)) return std::nullopt;
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = spec.find('/', start);
    parts.push_back(spec.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2) return std::nullopt;
  RepoRef ref;
  std::string_view name = parts[1];
  if (parts.size() == 2) {
    const size_t colon = name.find(':');
    if (colon != std::string_view::npos) {
      ref.quant_tag = std::string(name.substr(colon + 1));
      name = name.substr(0, colon);
      if (ref.quant_tag.empty()) return std::nullopt;
      for (char c : ref.quant_tag) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (!ok) return std::nullopt;
      }
    }
  } else {
    std::string file;
    for (size_t i = 2; i < parts.size(); ++i) {
      if (parts[i].empty() || parts[i] == "." || parts[i] == "..") return std::nullopt;
      if (!file.empty()) file += '/';
      file += parts[i];
    }
    if (file.size() < 5 || file.compare(file.size() - 5, 5, ".gguf") != 0) return std::nullopt;
    ref.filename = std::move(file);
  }
  if (!valid_repo_segment(parts[0]) || !valid_repo_segment(name)) return std::nullopt;
  ref.repo_id = std::string(parts[0]) + "/" + std::string(name);
  return ref;
}

}  // namespace kite::hub
