#include "hub/digest.h"

#include <openssl/evp.h>

#include <cstdio>
#include <optional>
#include <vector>

namespace kite::hub {

struct Digest::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Digest::Digest(Kind kind, int64_t size) : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_->md, kind == Kind::kSha256 ? EVP_sha256() : EVP_sha1(), nullptr);
  if (kind == Kind::kGitBlobSha1) {
    const std::string header = "blob " + std::to_string(size);
    EVP_DigestUpdate(ctx_->md, header.data(), header.size() + 1);  // with its '\0'
  }
}

Digest::~Digest() = default;

void Digest::update(const void* data, size_t size) { EVP_DigestUpdate(ctx_->md, data, size); }

std::string Digest::hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < len; ++i) {
    s += kHex[out[i] >> 4];
    s += kHex[out[i] & 15];
  }
  return s;
}

std::optional<Digest::Kind> Digest::kind_of_etag(std::string_view etag) {
  for (char c : etag) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  if (etag.size() == 64) return Kind::kSha256;
  if (etag.size() == 40) return Kind::kGitBlobSha1;
  return std::nullopt;
}

Result<std::string> file_digest(const std::string& path, Digest::Kind kind, int64_t size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return not_found("cannot read " + path);
  Digest d(kind, size);
  std::vector<char> buf(1 << 20);
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) d.update(buf.data(), n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return data_loss("error reading " + path);
  return d.hex();
}

}  // namespace kite::hub
