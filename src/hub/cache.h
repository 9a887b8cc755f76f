// The Hugging Face Hub cache, laid out exactly as huggingface_hub writes it, so a model one of
// them downloaded is used as is by the other:
//   <cache>/models--org--name/refs/<revision>             commit hash the branch/tag last resolved
//                                                          to (40 hex, no newline)
//   <cache>/models--org--name/blobs/<etag>                file contents, named by the hub's ETag:
//                                                          sha256 for LFS files, git blob sha1 else
//   <cache>/models--org--name/blobs/<etag>.incomplete     a download in progress (resumed from)
//   <cache>/models--org--name/snapshots/<commit>/<path>   relative symlink to ../../blobs/<etag>
//   <cache>/.locks/models--org--name/<etag>.lock          flock()ed while the blob is written
//                                                          (huggingface_hub's filelock does too)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite::hub {

// 40 lowercase hex digits.
bool is_commit_hash(std::string_view s);
// "org/name" -> "models--org--name".
std::string repo_folder_name(std::string_view repo_id);

class RepoCache {
 public:
  RepoCache(std::string cache_dir, std::string_view repo_id);

  const std::string& cache_dir() const { return cache_dir_; }
  const std::string& repo_dir() const { return repo_dir_; }  // <cache>/models--org--name

  // The commit `revision` names: itself when it is a commit hash, else refs/<revision>.
  std::optional<std::string> read_ref(const std::string& revision) const;
  // Records refs/<revision> = commit (atomically; nothing for a commit hash or an unchanged ref).
  Status write_ref(const std::string& revision, const std::string& commit) const;

  std::string snapshot_dir(const std::string& commit) const;
  std::string pointer_path(const std::string& commit, const std::string& filename) const;
  std::string blob_path(const std::string& etag) const;
  std::string lock_path(const std::string& etag) const;

  // snapshots/<commit>/<filename> -> ../../blobs/<etag> (relative, as huggingface_hub makes it).
  Status link_pointer(const std::string& commit, const std::string& filename,
                      const std::string& etag) const;

 private:
  std::string cache_dir_;
  std::string repo_dir_;
};

// An exclusive flock() on a lock file (created with its folders), released by the destructor.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::string& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace kite::hub
