# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private helper of hf_model: the remote side, built on huggingface_hub (2.x).

huggingface_hub reads its settings from the environment when it is imported, so the
environment is set first and the library is imported lazily: telemetry off (2.4 would
otherwise GET <HF_ENDPOINT>/api/agent-harnesses, huggingface.co when unset), Xet off, no
progress bars, the endpoint and timeouts. Only the listing (HfApi.model_info with
files_metadata) and per-file transfers (hf_hub_url + http_get) are used: no cache folder,
no lock file and nothing under HF_HOME is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import time

from ansible_collections.hpcllm.webui.plugins.module_utils.hf_model import HfModelError, remote_entry

LIBRARY_NAME = "hpcllm.webui.hf_model"
TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)

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
        from huggingface_hub import HfApi, hf_hub_url, constants  # pylint: disable=import-error
        from huggingface_hub.file_download import http_get  # pylint: disable=import-error
        from huggingface_hub.utils import build_hf_headers  # pylint: disable=import-error
        from huggingface_hub import errors  # pylint: disable=import-error

        _HUB.update(HfApi=HfApi, hf_hub_url=hf_hub_url, http_get=http_get, build_hf_headers=build_hf_headers,
                    errors=errors, constants=constants, httpx=httpx2)
    _HUB["constants"].HF_HUB_DOWNLOAD_TIMEOUT = max(1, int(timeout))
    _HUB["constants"].HF_HUB_ETAG_TIMEOUT = max(1, int(timeout))
    _HUB["constants"].HF_HUB_DISABLE_TELEMETRY = True
    _HUB["constants"].HF_HUB_DISABLE_XET = True
    _HUB["constants"].HF_HUB_OFFLINE = False
    # http_get passes this to httpx's iter_bytes: with a size, httpx gathers the body into
    # pieces of that size through a BytesIO (one more copy of every byte, a fifth of the
    # download's CPU time measured by bench/bench_hf_model.py); None hands each read on as it
    # arrives (64 KiB), which HashingWriter hashes and writes the same way
    _HUB["constants"].DOWNLOAD_CHUNK_SIZE = None
    return _HUB


class HashingWriter(object):
    """File wrapper that hashes what is written, so a download need not be read back to be checked.

    http_get only appends, except when a server ignores a Range request: then it seeks back to the
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
        if isinstance(exc, (IOError, OSError)) and "Consistency check failed" in str(exc):
            return "incomplete transfer: %s" % str(exc).splitlines()[0], True
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
        """Write the bytes of entry at commit into the open file fh (one attempt, with the library's own resume).

        Returns the digest of what was written (see HashingWriter), or None if it must be computed from the file.
        """
        url = self.hub["hf_hub_url"](repo_id, entry["path"], revision=commit, endpoint=self.endpoint)
        headers = self.hub["build_hf_headers"](token=self.token, library_name=LIBRARY_NAME)
        headers["Accept-Encoding"] = "identity"
        fh.seek(0)
        fh.truncate()
        writer = HashingWriter(fh, entry)
        try:
            self.hub["http_get"](url, writer, headers=headers, expected_size=entry["size"], displayed_filename=entry["path"])
            return writer.digest()
        except Exception as exc:  # pylint: disable=broad-except
            msg, transient = self.describe(exc)
            if msg is None:
                raise
            raise HfModelError(msg, retry=transient)


def hub_factory(endpoint, token, timeout):
    return HubClient(endpoint, token, timeout)
