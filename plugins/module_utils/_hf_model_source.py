# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private helper of hf_model: a local folder in place of the Hub (option `source`).

The folder holds an earlier hf_model download of the same repo: its files and the manifest
(.hf_model.json) that run wrote. SourceClient has HubClient's interface (listing, download,
pause), so HfModel plans, stages, verifies and records exactly as it does for a Hub: the
listing and the commit come from the source's manifest, and a "download" copies the file
from the folder. No network, no huggingface_hub.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import stat

from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model_hub import HashingWriter
from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model import (
    MANIFEST_NAME,
    HfModelError,
    check_inside,
    check_remote_path,
    expected_digest,
    is_commit,
    read_manifest,
    remote_entry,
)

CHUNK = 1024 * 1024
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _entry_problem(path, record):
    """None when a manifest file record is usable as a listing entry, else what is wrong with it."""
    if not isinstance(record, dict):
        return "%s: the record is not a mapping" % path
    size = record.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "%s: invalid size %r" % (path, size)
    sha256, blob_id = record.get("sha256"), record.get("blob_id")
    if sha256 is not None and not (isinstance(sha256, str) and _HEX64.match(sha256)):
        return "%s: invalid sha256 %r" % (path, sha256)
    if blob_id is not None and not (isinstance(blob_id, str) and _HEX40.match(blob_id)):
        return "%s: invalid blob_id %r" % (path, blob_id)
    if sha256 is None and blob_id is None:
        return "%s: neither sha256 nor blob_id is recorded, so the copy could not be verified" % path
    return None


class SourceClient(object):
    """Listing and copies from a folder holding an earlier hf_model download; errors become HfModelError."""

    # HfModel renames the verified copies into dest only when every copy succeeded, so a bad
    # source file leaves dest as it was (a Hub download keeps the files it completed instead).
    stage_all = True

    def __init__(self, source, allow_patterns=None, ignore_patterns=None):
        self.source = os.path.abspath(os.path.expanduser(source))
        self.allow_patterns = allow_patterns
        self.ignore_patterns = ignore_patterns

    def pause(self, attempt):
        """Nothing to wait for: a local copy is not retried after a pause."""

    def _manifest(self, repo_id, revision):
        if not os.path.isdir(self.source):
            what = "is not a directory" if os.path.lexists(self.source) else "does not exist"
            raise HfModelError("source %s %s" % (self.source, what))
        try:
            manifest = read_manifest(self.source)
        except HfModelError as exc:
            raise HfModelError("source %s: %s" % (self.source, exc.msg))
        where = os.path.join(self.source, MANIFEST_NAME)
        if manifest is None:
            raise HfModelError("source %s has no %s: it must be a folder written by hf_model" % (self.source, MANIFEST_NAME))
        if manifest.get("repo_id") != repo_id:
            raise HfModelError("source %s holds %s according to %s, not %s" % (self.source, manifest.get("repo_id"), where, repo_id))
        if not is_commit(manifest.get("commit")):
            raise HfModelError("source manifest %s records no commit (%r): an interrupted download cannot serve as a source"
                               % (where, manifest.get("commit")))
        if revision not in (manifest.get("revision"), manifest.get("commit")):
            raise HfModelError("source %s holds revision %s (commit %s), not the requested revision %s"
                               % (self.source, manifest.get("revision"), manifest.get("commit"), revision))
        recorded = (manifest.get("allow_patterns"), manifest.get("ignore_patterns"))
        if recorded != (None, None) and recorded != (self.allow_patterns, self.ignore_patterns):
            # the source then holds only part of the revision: a wider selection would silently miss files
            raise HfModelError("source %s was downloaded with allow_patterns %s and ignore_patterns %s, not the requested %s "
                               "and %s, so it may lack files of the revision"
                               % (self.source, recorded[0], recorded[1], self.allow_patterns, self.ignore_patterns))
        return manifest, where

    def listing(self, repo_id, revision):
        """(commit, [remote_entry]) from the source's manifest; every file must be in the source with its size."""
        manifest, where = self._manifest(repo_id, revision)
        entries, problems = [], []
        for path in sorted(manifest["files"]):
            record = manifest["files"][path]
            problem = _entry_problem(path, record)
            if problem is not None:
                raise HfModelError("source manifest %s is invalid: %s" % (where, problem))
            try:
                check_remote_path(path)
                full = check_inside(self.source, path)
            except HfModelError as exc:
                raise HfModelError("source manifest %s is invalid: %s" % (where, exc.msg))
            try:
                st = os.stat(full)
            except OSError as exc:
                problems.append("%s is missing (%s)" % (full, os.strerror(exc.errno)) if exc.errno == errno.ENOENT
                                else "%s cannot be read (%s)" % (full, exc))
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append("%s is not a regular file" % full)
            elif st.st_size != record["size"]:
                problems.append("%s has %d bytes, the manifest records %d" % (full, st.st_size, record["size"]))
            entries.append(remote_entry(path, record["size"], record.get("sha256"), record.get("blob_id")))
        if problems:
            raise HfModelError("source %s does not match its %s: %s" % (self.source, MANIFEST_NAME, "; ".join(problems)))
        return manifest["commit"], entries

    def download(self, repo_id, commit, entry, fh):
        """Copy the source file of entry into the open file fh; returns the digest of the bytes written.

        A source file whose bytes do not match the manifest fails at once (no retry: the copy would read the same bytes).
        """
        full = check_inside(self.source, entry["path"])
        fh.seek(0)
        fh.truncate()
        writer = HashingWriter(fh, entry)
        try:
            src = open(full, "rb")  # pylint: disable=consider-using-with
        except (IOError, OSError) as exc:
            raise HfModelError("cannot read source file %s: %s" % (full, exc))
        with src:
            while True:
                try:
                    chunk = src.read(CHUNK)
                except (IOError, OSError) as exc:
                    raise HfModelError("cannot read source file %s: %s" % (full, exc))
                if not chunk:
                    break
                writer.write(chunk)
        size = fh.tell()
        if size != entry["size"]:
            raise HfModelError("source file %s has %d bytes, the source manifest records %d" % (full, size, entry["size"]))
        kind, want = expected_digest(entry)
        digest = writer.digest()
        if digest != (kind, want):
            raise HfModelError("source file %s does not match the source manifest: its %s is %s, the manifest records %s"
                               % (full, kind, digest[1] if digest else "unknown", want))
        return digest
