// Streaming digests of downloaded files (OpenSSL EVP): SHA-256, the hub's ETag of LFS files, and
// git's blob SHA-1 ("blob <size>\0" + contents), the ETag of files stored in git.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite::hub {

class Digest {
 public:
  enum class Kind { kSha256, kGitBlobSha1 };
  // kGitBlobSha1 needs the file's size up front (it is part of the hashed header).
  Digest(Kind kind, int64_t size);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void update(const void* data, size_t size);
  std::string hex();  // lowercase; the digest is finished after this

  // Which digest an ETag is: 64 hex -> sha256, 40 hex -> git blob sha1, else none.
  static std::optional<Kind> kind_of_etag(std::string_view etag);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The digest of a whole file (to verify a blob, or the part of a resumed download already there).
Result<std::string> file_digest(const std::string& path, Digest::Kind kind, int64_t size);

}  // namespace kite::hub
