#include "hub/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace kite::hub {
namespace fs = std::filesystem;

bool is_commit_hash(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string repo_folder_name(std::string_view repo_id) {
  std::string out = "models";
  size_t start = 0;
  while (true) {
    const size_t slash = repo_id.find('/', start);
    out += "--";
    out += repo_id.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

RepoCache::RepoCache(std::string cache_dir, std::string_view repo_id)
    : cache_dir_(std::move(cache_dir)),
      repo_dir_((fs::path(cache_dir_) / repo_folder_name(repo_id)).string()) {}

std::optional<std::string> RepoCache::read_ref(const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(fs::path(repo_dir_) / "refs" / revision, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string commit = ss.str();
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == '\r')) commit.pop_back();
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

Status RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit || read_ref(revision) == commit) return ok_status();
  const fs::path ref = fs::path(repo_dir_) / "refs" / revision;
  std::error_code ec;
  fs::create_directories(ref.parent_path(), ec);
  if (ec)
    return internal_error("cannot create " + ref.parent_path().string() + ": " + ec.message());
  std::random_device rd;
  const fs::path tmp = ref.string() + "." + std::to_string(rd()) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << commit;
    if (!out) return internal_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, ref, ec);
  if (ec) return internal_error("cannot write " + ref.string() + ": " + ec.message());
  return ok_status();
}

std::string RepoCache::snapshot_dir(const std::string& commit) const {
  return (fs::path(repo_dir_) / "snapshots" / commit).string();
}

std::string RepoCache::pointer_path(const std::string& commit, const std::string& filename) const {
  return (fs::path(snapshot_dir(commit)) / filename).string();
}

std::string RepoCache::blob_path(const std::string& etag) const {
  return (fs::path(repo_dir_) / "blobs" / etag).string();
}

std::string RepoCache::lock_path(const std::string& etag) const {
  return (fs::path(cache_dir_) / ".locks" / fs::path(repo_dir_).filename() / (etag + ".lock"))
      .string();
}

Status RepoCache::link_pointer(const std::string& commit, const std::string& filename,
                               const std::string& etag) const {
  const fs::path pointer = pointer_path(commit, filename);
  const fs::path blob = blob_path(etag);
  std::error_code ec;
  fs::create_directories(pointer.parent_path(), ec);
  if (ec) {
    return internal_error("cannot create " + pointer.parent_path().string() + ": " + ec.message());
  }
  const fs::path target = fs::relative(blob, pointer.parent_path(), ec);
  if (ec) return internal_error("cannot relate " + blob.string() + ": " + ec.message());
  fs::remove(pointer, ec);
  fs::create_symlink(target, pointer, ec);
  if (ec && !fs::exists(pointer)) {
    return internal_error("cannot link " + pointer.string() + ": " + ec.message());
  }
  return ok_status();
}

Result<FileLock> FileLock::acquire(const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return internal_error("cannot open lock file " + path + ": " + std::strerror(errno));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      const int err = errno;
      ::close(fd);
      return internal_error("cannot lock " + path + ": " + std::strerror(err));
    }
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace kite::hub
