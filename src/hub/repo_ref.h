// Telling a Hugging Face Hub id from a local path, and what part of the repo it names.
//   org/name              the repo (safetensors checkpoint, or its only / Q4_K_M GGUF file)
//   org/name:Q4_K_M       the GGUF file of that quantization (llama.cpp's `-hf` syntax)
//   org/name/dir/f.gguf   that GGUF file
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kite::hub {

struct RepoRef {
  std::string repo_id;    // "org/name"
  std::string filename;   // a .gguf path inside the repo, or ""
  std::string quant_tag;  // "Q4_K_M", or ""
};

// The hub reference `spec` spells, or nullopt when it is not one: an existing local path, an
// absolute or ./ ~/ path, anything with a backslash, or a name the Hub would refuse
// (segments of [A-Za-z0-9._-], not starting or ending with '.' or '-', no "--" or "..",
// at most 96 characters).
std::optional<RepoRef> parse_repo_ref(std::string_view spec);

// Whether `name` is a valid repo name segment (the Hub's rules above).
bool valid_repo_segment(std::string_view name);

}  // namespace kite::hub
