"""A local Hugging Face Hub for the hub tests: the routes and headers huggingface_hub's client
uses (huggingface_hub/file_download.py, hf_api.py), served on loopback.

Hub host (http://127.0.0.1:P):
  GET  /api/models/{repo}/revision/{rev}     {"id", "sha", "siblings": [{"rfilename"}]}
  GET  /api/models/{repo}/tree/{rev}         [{"type": "file", "path", "size", "oid", "lfs"}]
  HEAD|GET /{repo}/resolve/{rev}/{path}      git files: 200, ETag "<git blob sha1>";
                                             LFS files: 302 to the blob host, X-Linked-Etag
                                             "<sha256>", X-Linked-Size; always X-Repo-Commit
  errors: 401 RepoNotFound (unknown or private without token), 403 GatedRepo, 404
          RevisionNotFound / EntryNotFound, in X-Error-Code / X-Error-Message as the Hub does.
Blob host (http://localhost:Q, another host name, so clients drop auth as for the Hub's CDN):
  GET  /blobs/{sha256}                       200, or 206 for "Range: bytes=N-" (Content-Range)
Faults: cut_after[sha256] = n closes the first GET of that blob after n bytes; corrupt.add(sha256)
serves it with one byte flipped. Every request is logged in `requests` as (host, method, path,
Range header, Authorization header).
"""

import hashlib
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin")


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, repo_id, files, revisions=None, private=False, gated=False):
        """files: {path: bytes}; revisions: {name: commit} (default: main -> a commit from the
        content)."""
        self.repo_id = repo_id
        self.files = dict(files)
        digest = hashlib.sha1(repo_id.encode())
        for path in sorted(self.files):
            digest.update(path.encode() + hashlib.sha256(self.files[path]).digest())
        self.commit = digest.hexdigest()
        self.revisions = revisions or {"main": self.commit}
        self.private = private
        self.gated = gated

    def is_lfs(self, path):
        return path.endswith(LFS_SUFFIXES)

    def commit_of(self, rev):
        if rev in self.revisions:
            return self.revisions[rev]
        if rev in self.revisions.values():
            return rev
        return None


class LocalHub:
    TOKEN = "hf_test_token"

    def __init__(self):
        self.repos = {}
        self.blobs = {}  # sha256 -> bytes
        self.cut_after = {}
        self.corrupt = set()
        self.requests = []
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._handle(self, head=True)

            def do_GET(self):
                hub._handle(self, head=False)

        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._blob = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._hub.daemon_threads = self._blob.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._hub.server_address[1]}"
        self.blob_host = f"http://localhost:{self._blob.server_address[1]}"
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True)
                         for s in (self._hub, self._blob)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        for s in (self._hub, self._blob):
            s.shutdown()
            s.server_close()

    def add(self, repo):
        self.repos[repo.repo_id] = repo
        for path, data in repo.files.items():
            if repo.is_lfs(path):
                self.blobs[hashlib.sha256(data).hexdigest()] = data
        return repo

    def blob_requests(self, sha):
        return [r for r in self.requests if r[0] == "blob" and r[2] == f"/blobs/{sha}"]

    # ---- routing ---------------------------------------------------------------------------

    def _handle(self, h, head):
        host = "blob" if h.server is self._blob else "hub"
        path = urllib.parse.urlsplit(h.path).path
        with self._lock:
            self.requests.append((host, h.command, path, h.headers.get("Range"),
                                  h.headers.get("Authorization")))
        if host == "blob":
            return self._serve_blob(h, path, head)
        parts = [urllib.parse.unquote(p) for p in path.split("/")]
        # /api/models/{org}/{name}/(revision|tree)/{rev}
        if len(parts) >= 7 and parts[1] == "api" and parts[2] == "models":
            repo = self._repo_or_error(h, f"{parts[3]}/{parts[4]}", api=True)
            if repo is None:
                return
            rev = "/".join(parts[6:])
            commit = repo.commit_of(rev)
            if commit is None:
                return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
            if parts[5] == "revision":
                body = {"id": repo.repo_id, "modelId": repo.repo_id, "sha": commit,
                        "private": repo.private, "gated": "auto" if repo.gated else False,
                        "siblings": [{"rfilename": p} for p in sorted(repo.files)]}
            elif parts[5] == "tree":
                body = []
                for p in sorted(repo.files):
                    data = repo.files[p]
                    entry = {"type": "file", "path": p, "size": len(data),
                             "oid": git_blob_sha1(data)}
                    if repo.is_lfs(p):
                        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(),
                                        "size": len(data), "pointerSize": 134}
                    body.append(entry)
            else:
                return self._error(h, 404, None, "Not Found")
            return self._send(h, 200, json.dumps(body).encode(), head,
                              {"Content-Type": "application/json"})
        # /{org}/{name}/resolve/{rev}/{path...}
        if len(parts) >= 6 and parts[3] == "resolve":
            repo = self._repo_or_error(h, f"{parts[1]}/{parts[2]}", api=False)
            if repo is None:
                return
            commit = repo.commit_of(parts[4])
            if commit is None:
                return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {parts[4]}")
            filename = "/".join(parts[5:])
            headers = {"X-Repo-Commit": commit}
            if filename not in repo.files:
                return self._error(h, 404, "EntryNotFound", "Entry not found", headers)
            data = repo.files[filename]
            if repo.is_lfs(filename):
                sha = hashlib.sha256(data).hexdigest()
                headers.update({
                    "Location": f"{self.blob_host}/blobs/{sha}?X-Amz-Signature=test",
                    "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                    "ETag": f'"{sha}"', "Content-Length": "0"})
                h.send_response(302)
                for k, v in headers.items():
                    h.send_header(k, v)
                h.end_headers()
                return
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
            return self._send(h, 200, data, head, headers)
        return self._error(h, 404, None, "Not Found")

    def _repo_or_error(self, h, repo_id, api):
        repo = self.repos.get(repo_id)
        auth = h.headers.get("Authorization")
        authorized = auth == f"Bearer {self.TOKEN}"
        if auth is not None and not authorized:
            self._error(h, 401, None, "Invalid credentials in Authorization header")
            return None
        if repo is None or (repo.private and not authorized):
            self._error(h, 401, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and not authorized and not api:
            self._error(h, 403, "GatedRepo",
                        "Access to model " + repo_id + " is restricted. You must have access "
                        "to it and be authenticated to access it. Please log in.")
            return None
        return repo

    def _serve_blob(self, h, path, head):
        sha = path.rsplit("/", 1)[-1]
        data = self.blobs.get(sha)
        if data is None:
            return self._error(h, 404, None, "NoSuchKey")
        if sha in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        status = 200
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{sha}"'}
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return self._send(h, 416, b"", head, headers)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        cut = self.cut_after.pop(sha, None) if not head else None
        if cut is not None and cut < len(body):
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:cut])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # a cut connection: fewer bytes than Content-Length
            return
        return self._send(h, status, body, head, headers)

    def _error(self, h, status, code, message, extra=None):
        headers = dict(extra or {})
        if code:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        headers["Content-Type"] = "application/json"
        self._send(h, status, json.dumps({"error": message}).encode(), h.command == "HEAD",
                   headers)

    def _send(self, h, status, body, head, headers):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)


def read_dir(path):
    """{relative path: bytes} of every file below `path`."""
    out = {}
    for root, _, names in os.walk(path):
        for n in names:
            full = os.path.join(root, n)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out
