#include "hub/download.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "core/logging.h"
#include "hub/digest.h"
#include "hub/progress.h"

namespace kite::hub {
namespace {
namespace fs = std::filesystem;

std::string host_of_url(const std::string& url) {
  size_t b = url.find("://");
  b = b == std::string::npos ? 0 : b + 3;
  const size_t e = url.find_first_of("/?#", b);
  return url.substr(b, e == std::string::npos ? e : e - b);
}

struct Job {
  const HubContext& hub;
  const RepoCache& cache;
  const std::string& commit;
  const DownloadOptions& options;
  DownloadProgress& progress;
  std::atomic<bool>& stop;
};

// Fetches meta.location into `incomplete`, resuming from what is there; verifies it.
Status fetch_blob(const Job& job, const std::string& filename, const FileMetadata& meta,
                  const std::string& incomplete) {
  const std::optional<Digest::Kind> kind = Digest::kind_of_etag(meta.etag);
  std::error_code ec;
  int64_t have =
      fs::exists(incomplete, ec) ? static_cast<int64_t>(fs::file_size(incomplete, ec)) : 0;
  if (meta.size >= 0 && have > meta.size) {  // not a prefix of this file: start over
    fs::remove(incomplete, ec);
    have = 0;
  }
  std::optional<Digest> digest;
  auto reset_digest = [&] {
    digest.reset();
    if (kind) digest.emplace(*kind, meta.size);
  };
  reset_digest();
  if (have > 0 && digest) {  // hash the part already there
    std::FILE* f = std::fopen(incomplete.c_str(), "rb");
    if (f == nullptr) return internal_error("cannot read " + incomplete);
    std::vector<char> buf(1 << 20);
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) digest->update(buf.data(), n);
    std::fclose(f);
  }
  if (meta.size >= 0) job.progress.add_total(meta.size);
  job.progress.add_done(have);

  // Auth goes only to the Hub's own host, never to the blob host it redirects to.
  std::vector<std::string> auth;
  if (host_of_url(meta.location) == host_of_url(job.hub.endpoint)) auth = job.hub.auth_headers();
  int failures = 0;
  while (meta.size < 0 || have < meta.size) {
    if (job.stop) return aborted("stopped after another file failed");
    std::FILE* out = std::fopen(incomplete.c_str(), "ab");
    if (out == nullptr) return internal_error("cannot write " + incomplete);
    HttpRequest req;
    req.url = meta.location;
    req.headers = auth;
    req.follow_redirects = true;
    if (have > 0) req.headers.push_back(fmt::format("Range: bytes={}-", have));
    int64_t got = 0;
    bool first = true;
    Status write_error;
    auto sink = [&](long status, const char* data, size_t n) {
      if (first) {
        first = false;
        if (status == 200 && have > 0) {  // the server ignored the range: start over
          if (::ftruncate(::fileno(out), 0) != 0) return false;
          std::fseek(out, 0, SEEK_SET);
          job.progress.add_done(-have);
          have = 0;
          reset_digest();
        }
      }
      if (std::fwrite(data, 1, n, out) != n) {
        write_error = internal_error("cannot write " + incomplete + " (disk full?)");
        return false;
      }
      if (digest) digest->update(data, n);
      got += static_cast<int64_t>(n);
      job.progress.add_done(static_cast<int64_t>(n));
      return !job.stop.load();
    };
    Result<HttpResponse> r = http_request(req, sink);
    std::fclose(out);
    if (!write_error.ok()) return write_error;
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kUnavailable || ++failures > job.options.max_retries) {
        return r.status();
      }
    } else if (r->status == 416 && meta.size >= 0 && have == meta.size) {
      break;  // already complete
    } else if (r->status < 200 || r->status >= 300) {
      return hub_error(job.hub, *r, filename);
    } else {
      have += got;
      if (r->transfer_error.empty()) {
        if (meta.size < 0 || have >= meta.size) break;
        r->transfer_error = "the body ended early";
      }
      if (got == 0 && ++failures > job.options.max_retries) {
        return unavailable(fmt::format("downloading {} of {} failed: {}", filename, job.hub.repo_id,
                                       r->transfer_error));
      }
      if (got > 0) failures = 0;
      KITE_LOG_WARN("downloading {}: {} after {} of {} bytes; resuming", filename,
                    r->transfer_error, have, meta.size);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  const int64_t size = static_cast<int64_t>(fs::file_size(incomplete, ec));
  if (meta.size >= 0 && size != meta.size) {
    fs::remove(incomplete, ec);
    return data_loss(
        fmt::format("{} of {}: got {} bytes, the Hub said {}; the partial file was "
                    "deleted, run again",
                    filename, job.hub.repo_id, size, meta.size));
  }
  if (digest) {
    const std::string actual = digest->hex();
    if (actual != meta.etag) {
      fs::remove(incomplete, ec);
      return data_loss(fmt::format(
          "{} of {} is corrupt: its {} is {}, the Hub's is {}; the download was deleted, run "
          "again",
          filename, job.hub.repo_id, *kind == Digest::Kind::kSha256 ? "sha256" : "git sha1", actual,
          meta.etag));
    }
  }
  return ok_status();
}

Status download_one(const Job& job, const std::string& filename) {
  std::error_code ec;
  if (fs::exists(job.cache.pointer_path(job.commit, filename), ec)) return ok_status();
  KITE_ASSIGN_OR_RETURN(FileMetadata meta, fetch_file_metadata(job.hub, job.commit, filename));
  const std::string blob = job.cache.blob_path(meta.etag);
  if (!fs::exists(blob, ec)) {
    fs::create_directories(fs::path(blob).parent_path(), ec);
    KITE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(job.cache.lock_path(meta.etag)));
    if (!fs::exists(blob, ec)) {  // another process may have written it meanwhile
      const auto t0 = std::chrono::steady_clock::now();
      const std::string incomplete = blob + ".incomplete";
      KITE_RETURN_IF_ERROR(fetch_blob(job, filename, meta, incomplete));
      const mode_t mask = ::umask(0);
      ::umask(mask);
      fs::permissions(incomplete, static_cast<fs::perms>(0666 & ~mask), ec);
      fs::rename(incomplete, blob, ec);
      if (ec) return internal_error("cannot rename " + incomplete + ": " + ec.message());
      job.progress.file_done(
          filename, meta.size,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  return job.cache.link_pointer(job.commit, filename, meta.etag);
}

}  // namespace

Status download_files(const HubContext& hub, const RepoCache& cache, const std::string& commit,
                      const std::vector<std::string>& files, const DownloadOptions& options) {
  std::vector<std::string> todo;
  std::error_code ec;
  for (const std::string& f : files) {
    if (!fs::exists(cache.pointer_path(commit, f), ec)) todo.push_back(f);
  }
  if (todo.empty()) return ok_status();
  DownloadProgress progress(hub.repo_id, static_cast<int>(todo.size()), options.progress_bar);
  std::atomic<bool> stop{false};
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  Job job{hub, cache, commit, options, progress, stop};
  auto worker = [&] {
    while (!stop) {
      const size_t i = next++;
      if (i >= todo.size()) return;
      Status s = download_one(job, todo[i]);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok() && s.code() != StatusCode::kAborted) first_error = s;
        stop = true;
      }
    }
  };
  const size_t n = std::min(todo.size(), static_cast<size_t>(std::max(1, options.max_parallel)));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  progress.finish();
  return first_error;
}

}  // namespace kite::hub
