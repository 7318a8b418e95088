# Test stand-in: a local Hugging Face Hub server for tests and benchmarks (not the real Hub).
"""A tiny threaded HTTP server speaking the part of the Hub API that huggingface_hub 2.4 uses.

Repos are built at test time: ``hub.create_repo("Org/Model")``, then
``hub.commit("Org/Model", "main", {"config.json": b"{}", "model.safetensors": Blob.sparse(path, size)})``.
Each commit gets a 40-hex id; branches and tags point at commits.

Endpoints (matching what huggingface_hub 2.4 sends, see its hf_api.py and file_download.py):
  GET  /api/models/{repo}/revision/{rev}[?blobs=true]      -> {"id", "sha", "siblings": [...]}
  GET  /api/models/{repo}/tree/{rev}[/{path}]?recursive=..  -> [{"type", "path", "size", "oid", "lfs"}]
       ...&cursor=C (text-generation-webui's download-model.py pages so until an empty page: C is base64 of
       base64 of '{"file_name":"<last path>"}:50') -> the entries after that path
  HEAD/GET /{repo}/resolve/{rev}/{path}                     -> file bytes, X-Repo-Commit, ETag, X-Linked-Etag,
                                                               X-Linked-Size, Range support
  anything else                                              -> 404 (e.g. /api/agent-harnesses)
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) like the Hub.

Faults (``hub.add_fault(kind, path=..., times=..., at=...)``) act on GET of file contents
(and ``5xx`` also on API calls when ``path`` is None or matches the API path):
  drop      send full Content-Length, write ``at`` bytes, then close the connection
  truncate  answer a shorter but well-formed body (Content-Length = ``at``)
  corrupt   same length, bytes flipped from offset ``at``
  5xx       answer HTTP 500 (or ``status``) without a body
Like the Hub, LFS files can live on a CDN: ``cdn = Hub.cdn_of(hub).start()`` serves hub's files on another
port with no token check (the real CDN's URLs are signed), and hub's resolve of an LFS file answers 302 to it.
``hub.ignore_range = True`` answers every Range request with the whole file (200), as some CDNs do.
``start(ssl_context=...)`` (and ``serve_until_killed``) serve HTTPS instead: a test that must answer clients which
hard-code https://huggingface.co (text-generation-webui's downloader) points the name at 127.0.0.1, serves on
port 443 with a certificate of a test CA and hands the CA to the client (REQUESTS_CA_BUNDLE for requests).
Every request is logged in ``hub.log`` as dicts (method, path, status, bytes, range). Used as
HTTP(S)_PROXY, it also logs (and refuses) what a client tries to send elsewhere (CONNECT host:443, or an
absolute URL as path), so a test can assert that nothing tried to reach huggingface.co.
"""

from __future__ import annotations

import hashlib
import base64
import binascii
import json
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf", ".model", ".h5", ".msgpack")
CHUNK = 1024 * 1024


def git_blob_sha1(data_or_size, chunks=None) -> str:
    """git's object id for a blob: sha1 of 'blob <size>\\0' + content."""
    if chunks is None:
        data = data_or_size
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    sha = hashlib.sha1(b"blob %d\0" % data_or_size)
    for chunk in chunks:
        sha.update(chunk)
    return sha.hexdigest()


@dataclass
class Blob:
    """File content: in memory (data) or a file on disk (path, possibly sparse)."""

    size: int
    sha256: str
    sha1: str  # git blob id of the content
    data: bytes | None = None
    path: str | None = None
    lfs: bool | None = None

    @classmethod
    def from_bytes(cls, data: bytes, lfs: bool | None = None) -> "Blob":
        return cls(len(data), hashlib.sha256(data).hexdigest(), git_blob_sha1(data), data=data, lfs=lfs)

    @classmethod
    def from_file(cls, path: str, lfs: bool | None = True) -> "Blob":
        size = os.path.getsize(path)
        sha256 = hashlib.sha256()
        sha1 = hashlib.sha1(b"blob %d\0" % size)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                sha256.update(chunk)
                sha1.update(chunk)
        return cls(size, sha256.hexdigest(), sha1.hexdigest(), path=path, lfs=lfs)

    @classmethod
    def sparse(cls, path: str, size: int, seed: bytes = b"") -> "Blob":
        """A sparse file of `size` bytes (zeros, with `seed` at the start to make it unique)."""
        with open(path, "wb") as fh:
            fh.write(seed)
            fh.truncate(size)
        return cls.from_file(path, lfs=True)

    def read(self, start: int = 0, end: int | None = None):
        """Yield the bytes [start, end) in chunks."""
        end = self.size if end is None else end
        if self.data is not None:
            for pos in range(start, end, CHUNK):
                yield self.data[pos:min(end, pos + CHUNK)]
            return
        with open(self.path, "rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk


def is_lfs(path: str, blob: Blob) -> bool:
    if blob.lfs is not None:
        return blob.lfs
    return path.endswith(LFS_SUFFIXES) or blob.size > 10 * 1024 * 1024


def lfs_pointer(blob: Blob) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{blob.sha256}\nsize {blob.size}\n".encode()


@dataclass
class Repo:
    repo_id: str
    token: str | None = None  # gated: requests need "Authorization: Bearer <token>"
    refs: dict = field(default_factory=dict)  # branch/tag name -> commit id
    commits: dict = field(default_factory=dict)  # commit id -> {path: Blob}

    def resolve(self, rev: str) -> str | None:
        if rev in self.refs:
            return self.refs[rev]
        if rev in self.commits:
            return rev
        return None


@dataclass
class Fault:
    kind: str  # drop | truncate | corrupt | 5xx
    path: str | None = None  # substring of the request path; None = any file GET (any request for 5xx)
    times: int = 1
    at: int = 0
    status: int = 500


class Hub:
    """Repos, faults and the request log; `start()` serves them on 127.0.0.1 at a free port."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self._counter = 0
        self.cdn: Hub | None = None  # resolve of LFS files redirects there
        self.is_cdn = False
        self.ignore_range = False
        self.tls = False

    @classmethod
    def cdn_of(cls, hub: "Hub") -> "Hub":
        """A CDN for hub: the same repos, no token check; hub's LFS resolves redirect to it once started."""
        cdn = cls()
        cdn.repos = hub.repos
        cdn.is_cdn = True
        hub.cdn = cdn
        return cdn

    # --- repository building -------------------------------------------------
    def create_repo(self, repo_id: str, token: str | None = None) -> Repo:
        repo = Repo(repo_id, token=token)
        self.repos[repo_id] = repo
        return repo

    def commit(self, repo_id: str, branch: str, files: dict | None = None, delete=(), parent: str | None = None) -> str:
        """New commit on `branch` (created from `parent` or the branch head); returns its id."""
        repo = self.repos[repo_id]
        base_rev = parent or branch
        base = dict(repo.commits.get(repo.resolve(base_rev) or "", {}))
        for path, content in (files or {}).items():
            base[path] = content if isinstance(content, Blob) else Blob.from_bytes(content)
        for path in delete:
            base.pop(path, None)
        with self.lock:
            self._counter += 1
            counter = self._counter
        sha = hashlib.sha1(f"{repo_id}\0{branch}\0{counter}\0{time.time()}".encode()).hexdigest()
        repo.commits[sha] = base
        repo.refs[branch] = sha
        return sha

    def tag(self, repo_id: str, name: str, rev: str) -> None:
        repo = self.repos[repo_id]
        repo.refs[name] = repo.resolve(rev)

    def add_fault(self, kind: str, path: str | None = None, times: int = 1, at: int = 0, status: int = 500) -> Fault:
        fault = Fault(kind, path, times, at, status)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.log.clear()

    def take_fault(self, kinds, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.times > 0 and (fault.path is None or fault.path in path):
                    fault.times -= 1
                    return fault
        return None

    def requests(self, method: str | None = None, contains: str = "") -> list[dict]:
        with self.lock:
            return [r for r in self.log if (method is None or r["method"] == method) and contains in r["path"]]

    # --- serving ---------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def start(self, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> "Hub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = _listen(port, Handler, ssl_context)
        self.tls = ssl_context is not None
        self.thread = threading.Thread(target=self.server.serve_forever, name="hubserver", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _listen(port: int, handler, ssl_context: ssl.SSLContext | None) -> ThreadingHTTPServer:
    """A threaded server of `handler` on 127.0.0.1:port; with an SSL context, HTTPS (the TLS handshake in each
    request's thread, not in the accepting one)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


def serve_until_killed(hub: Hub, port: int, expected_path: str, expected, banner: str,
                       ssl_context: ssl.SSLContext | None = None) -> None:
    """Serve hub on 127.0.0.1:port (a fixed port, for servers started by scripts; HTTPS with an SSL context), write
    `expected` as JSON to expected_path once it answers (atomically: a reader waits for the file), print banner, then
    sleep until killed."""

    class Handler(_Handler):
        pass

    Handler.hub = hub
    hub.server = _listen(port, Handler, ssl_context)
    hub.tls = ssl_context is not None
    threading.Thread(target=hub.server.serve_forever, daemon=True).start()
    tmp = expected_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(expected, fh, indent=1, sort_keys=True)
    os.replace(tmp, expected_path)
    print(banner, flush=True)
    while True:
        time.sleep(3600)


_API_RE = re.compile(r"^/api/models/([^/]+/[^/]+)/(revision|tree)/([^/]+)(?:/(.*))?$")
_RESOLVE_RE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: Hub = None  # set per server
    server_version = "hubserver/1"

    def log_message(self, format, *args):  # noqa: A002 - silence stderr logging
        pass

    # --- helpers -------------------------------------------------------------
    def _record(self, status: int, nbytes: int = 0) -> None:
        with self.hub.lock:
            self.hub.log.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "status": status,
                    "bytes": nbytes,
                    "range": self.headers.get("Range"),
                    "auth": bool(self.headers.get("Authorization")),
                }
            )

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, error_code: str | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if error_code:
            self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", error_code)
        if body and "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self._record(status, len(body) if self.command != "HEAD" else 0)

    def _json(self, obj) -> None:
        self._send(200, json.dumps(obj).encode())

    def _repo_and_auth(self, repo_id: str):
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._send(401, b'{"error":"Repository not found"}', error_code="RepoNotFound")
            return None
        if repo.token and not self.hub.is_cdn:
            auth = self.headers.get("Authorization", "")
            if not auth:
                self._send(401, b'{"error":"gated"}', error_code="GatedRepo")
                return None
            if auth != f"Bearer {repo.token}":
                self._send(403, b'{"error":"gated"}', error_code="GatedRepo")
                return None
        return repo

    def _repo_commit(self, repo_id: str, rev: str):
        """(repo, commit id), or None after answering RepoNotFound / GatedRepo / RevisionNotFound."""
        repo = self._repo_and_auth(repo_id)
        if repo is None:
            return None
        sha = repo.resolve(rev)
        if sha is None:
            self._send(404, b'{"error":"Invalid rev id"}', error_code="RevisionNotFound")
            return None
        return repo, sha

    # --- verbs -----------------------------------------------------------------
    def do_HEAD(self):  # noqa: N802
        self._dispatch()

    def do_GET(self):  # noqa: N802
        self._dispatch()

    def do_CONNECT(self):  # noqa: N802 - a client using this server as its proxy: log and refuse
        self.close_connection = True
        self._send(403, b'{"error":"not a proxy"}')

    def _dispatch(self):
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self):
        split = urlsplit(self.path)
        raw_path = split.path
        query = parse_qs(split.query)
        fault = self.hub.take_fault(("5xx",), raw_path)
        if fault is not None:
            self._send(fault.status, b'{"error":"injected"}')
            return
        match = _API_RE.match(raw_path)
        if match:
            repo_id, kind, rev, sub = unquote(match.group(1)), match.group(2), unquote(match.group(3)), match.group(4)
            found = self._repo_commit(repo_id, rev)
            if found is None:
                return
            repo, sha = found
            files = repo.commits[sha]
            if kind == "revision":
                self._json(self._model_info(repo, sha, files, "true" in query.get("blobs", [])))
            else:
                prefix = unquote(sub).rstrip("/") + "/" if sub else ""
                recursive = "true" in query.get("recursive", []) or "True" in query.get("recursive", [])
                entries = self._tree(files, prefix, recursive)
                if "cursor" in query:
                    entries = _after_cursor(entries, query["cursor"][0])
                    if entries is None:
                        self._send(400, b'{"error":"Invalid cursor"}')
                        return
                self._json(entries)
            return
        match = _RESOLVE_RE.match(raw_path)
        if match:
            self._resolve(unquote(match.group(1)), unquote(match.group(2)), unquote(match.group(3)))
            return
        self._send(404, b'{"error":"not found"}')

    @staticmethod
    def _sibling(path: str, blob: Blob, blobs: bool) -> dict:
        entry = {"rfilename": path}
        if blobs:
            lfs = is_lfs(path, blob)
            entry["size"] = blob.size
            entry["blobId"] = git_blob_sha1(lfs_pointer(blob)) if lfs else blob.sha1
            if lfs:
                entry["lfs"] = {"size": blob.size, "sha256": blob.sha256, "pointerSize": len(lfs_pointer(blob))}
        return entry

    def _model_info(self, repo: Repo, sha: str, files: dict, blobs: bool) -> dict:
        return {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": sha,
            "private": False,
            "gated": "manual" if repo.token else False,
            "disabled": False,
            "tags": [],
            "siblings": [self._sibling(p, files[p], blobs) for p in sorted(files)],
        }

    @staticmethod
    def _tree(files: dict, prefix: str, recursive: bool) -> list:
        out, dirs = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            parts = rest.split("/")
            for i in range(1, len(parts)):
                dirs.add(prefix + "/".join(parts[:i]))
            if "/" in rest and not recursive:
                continue
            blob = files[path]
            entry = {"type": "file", "oid": blob.sha1, "size": blob.size, "path": path}
            if is_lfs(path, blob):
                pointer = lfs_pointer(blob)
                entry["oid"] = git_blob_sha1(pointer)
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(pointer)}
            out.append(entry)
        for directory in sorted(dirs):
            if recursive or "/" not in directory[len(prefix):]:
                out.append({"type": "directory", "oid": hashlib.sha1(directory.encode()).hexdigest(), "size": 0, "path": directory})
        return out

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        found = self._repo_commit(repo_id, rev)
        if found is None:
            return
        repo, sha = found
        blob = repo.commits[sha].get(path)
        if blob is None:
            self._send(404, b'{"error":"Entry not found"}', error_code="EntryNotFound")
            return
        lfs = is_lfs(path, blob)
        if lfs and self.hub.cdn is not None:
            # the Hub's answer for an LFS file: its identity, and the CDN's (absolute) URL for the bytes
            self._send(302, b"", {"Location": f"{self.hub.cdn.url}{self.path}", "X-Repo-Commit": sha,
                                  "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
            return
        headers = {
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename*=UTF-8\'\'{quote(path.rsplit("/", 1)[-1])}',
        }
        if lfs:
            headers["ETag"] = f'"{blob.sha256}"'
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(blob.size)
        else:
            headers["ETag"] = f'"{blob.sha1}"'
        start, end = 0, blob.size
        status = 200
        range_header = self.headers.get("Range")
        if range_header and self.command == "GET" and not self.hub.ignore_range:
            match = re.match(r"bytes=(\d+)-(\d*)$", range_header.strip())
            if match:
                start = int(match.group(1))
                end = min(blob.size, int(match.group(2)) + 1) if match.group(2) else blob.size
                if start >= blob.size:
                    self._send(416, b"", {"Content-Range": f"bytes */{blob.size}"})
                    return
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        fault = self.hub.take_fault(("drop", "truncate", "corrupt"), self.path) if self.command == "GET" else None
        length = end - start
        if fault is not None and fault.kind == "truncate":
            length = min(length, fault.at)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            self._record(status)
            return
        sent = 0
        limit = fault.at if fault is not None and fault.kind == "drop" else length
        for chunk in blob.read(start, start + length):
            if sent + len(chunk) > limit:
                chunk = chunk[: limit - sent]
            if fault is not None and fault.kind == "corrupt":
                chunk = _corrupt(chunk, start + sent, fault.at)
            self.wfile.write(chunk)
            sent += len(chunk)
            if sent >= limit:
                break
        if fault is not None and fault.kind == "drop":
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
        self._record(status, sent)


def _after_cursor(entries: list, cursor: str) -> list | None:
    """The listing's entries after the one a page cursor names, None for a cursor that names none. The cursor is
    base64 of '{"file_name": PATH}' with ':PAGE_SIZE' added, base64-encoded once more by text-generation-webui's
    download-model.py (which leaves its "+" unescaped in the query: read as a space)."""
    text = cursor.replace(" ", "+")
    for _layer in range(2):
        try:
            text = base64.b64decode(text, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        text = re.sub(r":[0-9]+$", "", text)
        if text.startswith("{"):
            break
    try:
        name = json.loads(text)["file_name"]
    except (ValueError, KeyError, TypeError):
        return None
    paths = [entry["path"] for entry in entries]
    if name not in paths:
        return None
    return entries[paths.index(name) + 1:]


def _corrupt(chunk: bytes, offset: int, at: int) -> bytes:
    """Flip one byte at absolute offset `at` if it falls in this chunk."""
    if offset <= at < offset + len(chunk):
        i = at - offset
        return chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
    return chunk


def main() -> None:  # pragma: no cover - manual use: serve an empty hub until interrupted
    hub = Hub().start()
    print(hub.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
