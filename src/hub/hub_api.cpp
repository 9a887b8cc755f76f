#include "hub/hub_api.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "core/json_util.h"

namespace kite::hub {
namespace {

std::string header(const HttpResponse& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

// "https://host:port/path" -> "https://host:port".
std::string origin_of(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t slash = url.find('/', scheme + 3);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

std::string host_of(const std::string& url) {
  std::string origin = origin_of(url);
  const size_t scheme = origin.find("://");
  if (scheme != std::string::npos) origin = origin.substr(scheme + 3);
  const size_t at = origin.rfind('@');
  if (at != std::string::npos) origin = origin.substr(at + 1);
  if (!origin.empty() && origin.front() == '[') return origin.substr(0, origin.find(']') + 1);
  return origin.substr(0, origin.find(':'));
}

// Location may be relative ("/org/name/resolve/...") or absolute.
std::string join_location(const std::string& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  if (!location.empty() && location.front() == '/') return origin_of(base) + location;
  return base.substr(0, base.rfind('/') + 1) + location;
}

}  // namespace

std::vector<std::string> HubContext::auth_headers() const {
  if (token.empty()) return {};
  return {"Authorization: Bearer " + token};
}

std::string url_quote(const std::string& text, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string normalize_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

Status hub_error(const HubContext& hub, const HttpResponse& r, const std::string& what) {
  const std::string code = header(r, "x-error-code");
  const std::string message = header(r, "x-error-message");
  const std::string detail = message.empty() ? "" : " (" + message + ")";
  const std::string page = hub.endpoint + "/" + hub.repo_id;
  if (code == "GatedRepo") {
    return failed_precondition(fmt::format(
        "{} is a gated model: accept its conditions at {} and set HF_TOKEN to a token of that "
        "account (HTTP {}{})",
        hub.repo_id, page, r.status, detail));
  }
  if (code == "RevisionNotFound") {
    return not_found(
        fmt::format("{} not found in {} (HTTP {}{})", what, hub.repo_id, r.status, detail));
  }
  if (code == "EntryNotFound") {
    return not_found(fmt::format("{} is not in {} (HTTP {})", what, hub.repo_id, r.status));
  }
  if (r.status == 401 || code == "RepoNotFound" || r.status == 404) {
    if (r.status == 401 && !hub.token.empty() &&
        message == "Invalid credentials in Authorization header") {
      return failed_precondition(fmt::format(
          "the Hub refused HF_TOKEN for {} (HTTP 401{}): check the token", hub.repo_id, detail));
    }
    return not_found(fmt::format(
        "{} is not a model on {} and not a local path (HTTP {}{}); if it is private or gated, "
        "set HF_TOKEN{}",
        hub.repo_id, hub.endpoint, r.status, detail,
        hub.token.empty() ? "" : " to a token with access to it"));
  }
  if (r.status == 403) {
    return failed_precondition(
        fmt::format("access to {} was refused (HTTP 403{}){}", hub.repo_id, detail,
                    hub.token.empty() ? ": set HF_TOKEN" : ": HF_TOKEN has no access to it"));
  }
  return unavailable(
      fmt::format("the Hub answered HTTP {} for {} of {}{}", r.status, what, hub.repo_id, detail));
}

Result<RepoInfo> fetch_repo_info(const HubContext& hub, const std::string& revision) {
  HttpRequest req;
  req.url = fmt::format("{}/api/models/{}/revision/{}", hub.endpoint, hub.repo_id,
                        url_quote(revision, false));
  req.headers = hub.auth_headers();
  req.follow_redirects = true;  // renamed repos redirect on the same host
  KITE_ASSIGN_OR_RETURN(HttpResponse r, http_request(req));
  if (!r.transfer_error.empty()) return unavailable("reading " + req.url + ": " + r.transfer_error);
  if (r.status != 200) return hub_error(hub, r, "revision " + revision);
  KITE_ASSIGN_OR_RETURN(boost::json::value v, json::parse(r.body, req.url));
  RepoInfo info;
  const auto* obj = v.if_object();
  const auto* sha = obj ? obj->if_contains("sha") : nullptr;
  if (sha == nullptr || !sha->is_string()) {
    return data_loss(req.url + ": the answer has no \"sha\" (is HF_ENDPOINT a Hub?)");
  }
  info.sha = std::string(sha->as_string());
  if (const auto* sib = obj->if_contains("siblings"); sib != nullptr && sib->is_array()) {
    for (const auto& s : sib->as_array()) {
      const auto* so = s.if_object();
      const auto* name = so ? so->if_contains("rfilename") : nullptr;
      if (name != nullptr && name->is_string()) info.files.emplace_back(name->as_string());
    }
  }
  return info;
}

Result<FileMetadata> fetch_file_metadata(const HubContext& hub, const std::string& commit,
                                         const std::string& filename) {
  // As huggingface_hub: follow redirects that stay on the Hub's host; a redirect elsewhere (the
  // LFS blob host) carries the metadata itself, and auth must not leave the Hub.
  std::string url = fmt::format("{}/{}/resolve/{}/{}", hub.endpoint, hub.repo_id,
                                url_quote(commit, false), url_quote(filename, true));
  for (int hop = 0; hop < 10; ++hop) {
    HttpRequest req;
    req.method = "HEAD";
    req.url = url;
    req.headers = hub.auth_headers();
    req.headers.push_back("Accept-Encoding: identity");
    KITE_ASSIGN_OR_RETURN(HttpResponse r, http_request(req));
    if (r.status >= 400 || r.status < 200) return hub_error(hub, r, filename);
    const std::string location = header(r, "location");
    if (r.status >= 300 && !location.empty()) {
      const std::string target = join_location(url, location);
      if (host_of(target) == host_of(url)) {
        url = target;
        continue;
      }
    }
    FileMetadata m;
    m.commit = header(r, "x-repo-commit");
    std::string etag = header(r, "x-linked-etag");
    if (etag.empty()) etag = header(r, "etag");
    m.etag = normalize_etag(etag);
    m.location = r.status >= 300 && !location.empty() ? join_location(url, location) : url;
    std::string size = header(r, "x-linked-size");
    if (size.empty() && r.status < 300) size = header(r, "content-length");
    if (!size.empty()) m.size = std::strtoll(size.c_str(), nullptr, 10);
    if (m.commit.empty()) {
      return data_loss(url + ": no X-Repo-Commit header in the answer (is HF_ENDPOINT a Hub?)");
    }
    if (m.etag.empty() || m.etag.find('/') != std::string::npos) {
      return data_loss(url + ": no usable ETag in the answer");
    }
    return m;
  }
  return unavailable("too many redirects resolving " + filename + " in " + hub.repo_id);
}

}  // namespace kite::hub
