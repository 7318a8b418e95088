# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private helper of hf_model: the remote side, built on huggingface_hub (2.x).

huggingface_hub reads its settings from the environment when it is imported, so the
environment is set first and the library is imported lazily: telemetry off (2.4 would
otherwise GET <HF_ENDPOINT>/api/agent-harnesses, huggingface.co when unset), Xet off, no
progress bars, the endpoint and timeouts. Only the listing (HfApi.model_info with
files_metadata) and each file's metadata (hf_hub_url + get_hf_file_metadata: the Hub's errors,
and where the bytes are) come from it: no cache folder, no lock file and nothing under HF_HOME
is written.

The bytes themselves are read with ansible's open_url (urllib) into one reused buffer of
BUFFER bytes, hashed and written as they come: huggingface_hub's http_get reads through httpx
in pieces of 64 KiB with a copy of each, which held a download to about a fifth of what
`curl --parallel` gets from the same loopback server (bench/bench_hf_model.py). As
huggingface_hub does, the token goes only to the Hub's own host, never to a CDN the file's
location points to, and is never sent on a redirect.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import itertools
import os
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlsplit
from ansible.module_utils.urls import open_url

from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model import HfModelError, remote_entry

LIBRARY_NAME = "hpcllm.webui.hf_model"
TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
# bytes read from the socket at a time, into one of BUFFERS buffers per transfer (reused in turn)
BUFFER = 1024 * 1024
BUFFERS = 4
# a broken transfer resumes (Range) from what it wrote; this many breaks in a row without new bytes end it
STALLS = 5

_HUB = {}


def hub_environment(endpoint, timeout):
    """Environment huggingface_hub must see before it is imported."""
    env = {
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_ETAG_TIMEOUT": str(max(1, int(timeout))),
        "HF_HUB_DOWNLOAD_TIMEOUT": str(max(1, int(timeout))),
    }
    if endpoint:
        env["HF_ENDPOINT"] = endpoint.rstrip("/")
    return env


def import_hub(endpoint, timeout):
    """Set the environment, import huggingface_hub; return a namespace dict or raise ImportError."""
    os.environ.update(hub_environment(endpoint, timeout))
    if not _HUB:
        import httpx2  # pylint: disable=import-error
        from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url, constants  # pylint: disable=import-error
        from huggingface_hub.utils import build_hf_headers  # pylint: disable=import-error
        from huggingface_hub import errors  # pylint: disable=import-error

        _HUB.update(HfApi=HfApi, hf_hub_url=hf_hub_url, get_hf_file_metadata=get_hf_file_metadata,
                    build_hf_headers=build_hf_headers, errors=errors, constants=constants, httpx=httpx2)
    _HUB["constants"].HF_HUB_DOWNLOAD_TIMEOUT = max(1, int(timeout))
    _HUB["constants"].HF_HUB_ETAG_TIMEOUT = max(1, int(timeout))
    _HUB["constants"].HF_HUB_DISABLE_TELEMETRY = True
    _HUB["constants"].HF_HUB_DISABLE_XET = True
    _HUB["constants"].HF_HUB_OFFLINE = False
    return _HUB


class HashingWriter(object):
    """File wrapper that hashes what is written, so a download need not be read back to be checked.

    A transfer only appends, except when a server ignores a Range request: then it seeks back to the
    start and truncates. Any other seek or truncate makes the digest unknown (None), and the caller
    hashes the file instead.
    """

    def __init__(self, fh, entry):
        self.fh = fh
        self.entry = entry
        self.valid = True
        self._reset()

    def _reset(self):
        if self.entry.get("sha256"):
            self.kind, self.hash = "sha256", hashlib.sha256()
        else:
            self.kind, self.hash = "git-sha1", hashlib.sha1(b"blob %d\0" % self.entry["size"])

    def write(self, data):
        self.hash.update(data)
        return self.fh.write(data)

    def tell(self):
        return self.fh.tell()

    def seek(self, pos, whence=0):
        result = self.fh.seek(pos, whence)
        if self.fh.tell() == 0:
            self._reset()
        else:
            self.valid = False
        return result

    def truncate(self, size=None):
        result = self.fh.truncate(size)
        if self.fh.tell() != 0 or (size or 0) != 0:
            self.valid = False
        return result

    def flush(self):
        return self.fh.flush()

    def digest(self):
        """('sha256' or 'git-sha1', hex) of the bytes written, or None if unknown."""
        return (self.kind, self.hash.hexdigest()) if self.valid else None


class HubClient(object):
    """Listing and downloads for one endpoint and token; errors become HfModelError."""

    def __init__(self, endpoint, token, timeout, hub=None, sleep=time.sleep):
        self.hub = hub or import_hub(endpoint, timeout)
        self.endpoint = (endpoint or self.hub["constants"].ENDPOINT).rstrip("/")
        self.token = token or None
        self.timeout = timeout
        self.sleep = sleep

    def pause(self, attempt):
        self.sleep(min(0.5 * attempt, 2.0))

    def describe(self, exc):
        """A message for exc (never containing the token) and whether retrying may help."""
        errors = self.hub["errors"]
        httpx = self.hub["httpx"]
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, errors.GatedRepoError):
            return "access denied: the repository is gated or the token is not authorized (HTTP %s)" % status, False
        if isinstance(exc, errors.RevisionNotFoundError):
            return "revision not found (HTTP %s)" % status, False
        if isinstance(exc, errors.RepositoryNotFoundError):
            return ("repository not found at %s, or private and the token is missing or not authorized (HTTP %s)"
                    % (self.endpoint, status), False)
        if isinstance(exc, errors.RemoteEntryNotFoundError):
            return "file not found in the revision (HTTP %s)" % status, False
        if isinstance(exc, errors.HfHubHTTPError):
            if status in (401, 403):
                return "unauthorized (HTTP %s): check the token" % status, False
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return "HTTP %s from %s: %s" % (status, self.endpoint, first), status in TRANSIENT_STATUS
        if isinstance(exc, httpx.ConnectError):
            return "network unreachable: cannot connect to %s (%s)" % (self.endpoint, exc), True
        if isinstance(exc, httpx.TimeoutException):
            return "timed out talking to %s (%s)" % (self.endpoint, exc), True
        if isinstance(exc, httpx.HTTPError):
            return "transfer from %s failed: %s" % (self.endpoint, exc), True
        return None, False

    def _call(self, func, *args, **kwargs):
        """func(*args, **kwargs), retried on transient errors; HfModelError otherwise."""
        for attempt in range(1, 4):
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # pylint: disable=broad-except
                msg, transient = self.describe(exc)
                if msg is None:
                    raise
                if not transient or attempt == 3:
                    raise HfModelError(msg, retry=transient)
                self.pause(attempt)
        raise HfModelError("unreachable")  # pragma: no cover

    def listing(self, repo_id, revision):
        """(commit, [remote_entry]) for repo_id at revision."""
        api = self.hub["HfApi"](endpoint=self.endpoint, token=self.token, library_name=LIBRARY_NAME)
        info = self._call(api.model_info, repo_id, revision=revision, files_metadata=True, timeout=self.timeout)
        if not info.sha or info.siblings is None:
            raise HfModelError("the Hub did not return a commit and a file list")
        entries = []
        for sib in info.siblings:
            lfs = sib.lfs
            entries.append(remote_entry(sib.rfilename, sib.size, lfs.sha256 if lfs else None, sib.blob_id))
        return info.sha, entries

    def download(self, repo_id, commit, entry, fh):
        """Write the bytes of entry at commit into the open file fh (one attempt; a broken transfer resumes).

        Returns the digest of what was written (see HashingWriter), or None if it must be computed from the file.
        """
        url = self.hub["hf_hub_url"](repo_id, entry["path"], revision=commit, endpoint=self.endpoint)
        try:
            # the Hub's own answer first (its errors: gated, not found ...), and where the bytes are
            meta = self.hub["get_hf_file_metadata"](url, token=self.token, library_name=LIBRARY_NAME, timeout=self.timeout,
                                                    endpoint=self.endpoint)
        except Exception as exc:  # pylint: disable=broad-except
            msg, transient = self.describe(exc)
            if msg is None:
                raise
            raise HfModelError(msg, retry=transient)
        location = meta.location or url
        headers = self.hub["build_hf_headers"](token=self.token, library_name=LIBRARY_NAME)
        if not same_host(url, location):
            # as huggingface_hub does: a CDN gets no token
            headers = dict((k, v) for k, v in headers.items() if k.lower() != "authorization")
        headers["Accept-Encoding"] = "identity"
        fh.seek(0)
        fh.truncate()
        writer = HashingWriter(fh, entry)
        views = [memoryview(bytearray(BUFFER)) for dummy in range(BUFFERS)]
        stalls = 0
        # one thread hashes and writes while this one reads the next buffer: a single stream
        # then uses two cores (hashing costs more than receiving and writing together)
        with ThreadPoolExecutor(max_workers=1) as pool:
            while True:
                done = fh.tell()
                try:
                    self._transfer(location, headers, done, entry, writer, views, pool)
                except (http_client.HTTPException, socket.timeout, ssl.SSLError, ConnectionError) as exc:
                    # the connection broke mid-body: resume from what was written, as long as bytes keep coming
                    stalls = 0 if fh.tell() > done else stalls + 1
                    if stalls >= STALLS:
                        raise HfModelError("transfer from %s broke %d times without progress: %s"
                                           % (self.endpoint, STALLS, type(exc).__name__), retry=True)
                    continue
                written = fh.tell()
                if written != entry["size"]:
                    raise HfModelError("incomplete transfer: the server sent %d of %d bytes" % (written, entry["size"]),
                                       retry=True)
                return writer.digest()

    def _transfer(self, location, headers, done, entry, writer, views, pool):
        """One GET of location (from byte `done` on, when done > 0), appended to writer by pool's one thread.

        Returns (or raises) only once every buffer read is written: the file's size is then what arrived.
        """
        if done:
            headers = dict(headers, Range="bytes=%d-" % done)
        try:
            # Authorization unredirected: a redirect from here on gets no token
            resp = open_url(location, headers=headers, method="GET", timeout=self.timeout, follow_redirects="safe",
                            unredirected_headers=["authorization"], decompress=False, use_netrc=False)
        except HTTPError as exc:
            msg, retry = http_status_message(exc.code, location, self.endpoint)
            raise HfModelError(msg, retry=retry)
        except URLError as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout):
                raise HfModelError("timed out talking to %s (%s)" % (self.endpoint, reason), retry=True)
            raise HfModelError("network unreachable: cannot connect to %s (%s)" % (self.endpoint, reason), retry=True)
        with resp:
            if done and resp.status == 200:
                # the server ignored the Range: start again from the first byte
                writer.seek(0)
                writer.truncate()
            elif resp.status not in (200, 206):
                raise HfModelError("HTTP %s from %s for %s" % (resp.status, self.endpoint, entry["path"]), retry=True)
            pending = [None] * len(views)
            try:
                for slot in itertools.cycle(range(len(views))):
                    if pending[slot] is not None:
                        pending[slot].result()  # this buffer is written (or the write's error is raised)
                    n = resp.readinto(views[slot])
                    if not n:
                        if resp.length:
                            # the server announced more than it sent before the connection ended
                            raise http_client.IncompleteRead(b"", resp.length)
                        return
                    pending[slot] = pool.submit(writer.write, views[slot][:n])
            finally:
                # a write's error (a full disk) outranks the read's
                for future in pending:
                    if future is not None:
                        future.result()


def same_host(url, other):
    """True if other is on url's scheme, host and port."""
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def http_status_message(status, location, endpoint):
    """(message, whether retrying may help) for an HTTP error status of a file transfer."""
    if status in (401, 403):
        return "unauthorized (HTTP %s): check the token" % status, False
    if status == 404:
        return "file not found in the revision (HTTP %s)" % status, False
    where = endpoint if same_host(endpoint, location) else "%s (for %s)" % (urlsplit(location).netloc, endpoint)
    return "HTTP %s from %s" % (status, where), status in TRANSIENT_STATUS


def hub_factory(endpoint, token, timeout):
    return HubClient(endpoint, token, timeout)
