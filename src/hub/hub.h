// kite_hub: Hugging Face Hub ids wherever kite takes a model path. A hub id resolves to a
// folder (or .gguf file) inside the hub cache that huggingface_hub and transformers share
// (cache.h), downloading only the files a load needs that are not there yet (download.h).
//
//   auto p = kite::hub::resolve("Qwen/Qwen3-0.6B", kite::hub::Need::kModel, {});
//   // p->path: ~/.cache/huggingface/hub/models--Qwen--Qwen3-0.6B/snapshots/<commit>
//
// Environment, as huggingface_hub reads it: HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN,
// or the file $HF_TOKEN_PATH / $HF_HOME/token), HF_HUB_CACHE (or HUGGINGFACE_HUB_CACHE,
// $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub), HF_HUB_OFFLINE
// (or TRANSFORMERS_OFFLINE), HF_HUB_DISABLE_PROGRESS_BARS.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "hub/download.h"
#include "hub/repo_ref.h"
#include "kite/status.h"

namespace kite::hub {

struct HubOptions {
  std::string revision;         // branch, tag or commit; "" = "main"
  std::string cache_dir;        // "" = default_cache_dir()
  std::string endpoint;         // "" = $HF_ENDPOINT or https://huggingface.co
  std::string token;            // "" = from the environment (above)
  std::optional<bool> offline;  // unset = $HF_HUB_OFFLINE
  DownloadOptions download;
};

// What the caller will load from the repo.
enum class Need {
  kModel,      // config + weights (+ generation config, tokenizer, chat template), or one GGUF
  kTokenizer,  // tokenizer.json (+ tokenizer_config.json, chat template), or one GGUF
  kConfig,     // config + generation config + tokenizer only (random weights: load_format dummy)
};

struct Resolved {
  std::string path;     // local folder or .gguf file to load
  std::string repo_id;  // "" when `spec` was a local path
  std::string commit;   // the snapshot's commit ("" for a local path)
};

// A local path (or anything that is not a hub id, see parse_repo_ref) comes back unchanged.
// A hub id resolves in the cache — online: the revision's commit and file list from the Hub,
// then the missing files downloaded; offline (HF_HUB_OFFLINE, or the Hub unreachable): the
// commit from refs/<revision> and the files already in that snapshot. Errors say what to do:
// kNotFound (no such repo/revision/file, nothing suitable to load, not cached while offline),
// kFailedPrecondition (gated or private: HF_TOKEN), kUnavailable (no network, Hub errors),
// kDataLoss (a checksum mismatch), kUnimplemented (split GGUF files).
Result<Resolved> resolve(std::string_view spec, Need need, const HubOptions& options);

std::string default_cache_dir();
std::string default_endpoint();
std::string token_from_env();
bool offline_from_env();

}  // namespace kite::hub
