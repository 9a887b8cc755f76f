// The Hub's HTTP routes kite uses, the same ones huggingface_hub calls:
//   GET  {endpoint}/api/models/{repo_id}/revision/{revision}  -> {"sha", "siblings":
//   [{"rfilename"}]} HEAD {endpoint}/{repo_id}/resolve/{commit}/{filename}     -> X-Repo-Commit,
//   ETag or
//        X-Linked-Etag (+ X-Linked-Size), and for LFS files a redirect to the blob host
//   GET  that location (Range: bytes=N- to resume)
// Errors follow the Hub's X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound,
// GatedRepo) and status (401, 403, 404) into messages that say what to do.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/http.h"
#include "kite/status.h"

namespace kite::hub {

struct HubContext {
  std::string endpoint;  // "https://huggingface.co", no trailing slash
  std::string token;     // "" when none
  std::string repo_id;
  // "Authorization: Bearer ..." when there is a token (only ever sent to the endpoint's host).
  std::vector<std::string> auth_headers() const;
};

struct RepoInfo {
  std::string sha;                 // the commit the revision resolved to
  std::vector<std::string> files;  // every file in the repo at that commit
};

struct FileMetadata {
  std::string etag;      // normalized (no W/, no quotes): sha256 for LFS files, git sha1 else
  std::string commit;    // X-Repo-Commit
  std::string location;  // where to GET it (the blob host for LFS files)
  int64_t size = -1;     // bytes, -1 when unknown
};

Result<RepoInfo> fetch_repo_info(const HubContext& hub, const std::string& revision);
Result<FileMetadata> fetch_file_metadata(const HubContext& hub, const std::string& commit,
                                         const std::string& filename);

// The Status for a non-2xx Hub response to a request about `what` ("revision main", a file).
Status hub_error(const HubContext& hub, const HttpResponse& response, const std::string& what);

// Percent-encodes a path (keeps '/' when keep_slash), as the Hub's URLs need.
std::string url_quote(const std::string& text, bool keep_slash);
// ETag header value -> the blob name huggingface_hub uses (strips W/ and quotes).
std::string normalize_etag(std::string etag);

}  // namespace kite::hub
