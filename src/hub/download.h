// Downloading repo files into the hub cache: parallel, resumable, verified.
#pragma once

#include <string>
#include <vector>

#include "hub/cache.h"
#include "hub/hub_api.h"
#include "kite/status.h"

namespace kite::hub {

struct DownloadOptions {
  int max_parallel = 8;  // files at once
  int max_retries = 5;   // reconnects after a cut connection that brought no new bytes
  bool progress_bar = true;
};

// Makes snapshots/<commit>/<file> exist for each file, as huggingface_hub would: HEAD for the
// ETag, the blob fetched only when missing (into blobs/<etag>.incomplete, resumed with a Range
// request after a cut connection or from an earlier run), then checked — size against the
// hub's, SHA-256 against an LFS file's ETag, git's blob SHA-1 against a git file's — and
// renamed into blobs/<etag> under the blob's lock. A file whose check fails is deleted and is a
// kDataLoss error. Returns the first error; files done before it stay in the cache.
Status download_files(const HubContext& hub, const RepoCache& cache, const std::string& commit,
                      const std::vector<std::string>& files, const DownloadOptions& options);

}  // namespace kite::hub
