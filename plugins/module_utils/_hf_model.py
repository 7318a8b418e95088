# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of hpcllm.webui.hf_model: plan and apply an idempotent download of one Hub repo revision.

The remote side (listing, downloads) lives in _hf_model_hub.py; everything here works on plain data
so that it can be unit tested without a network: repo id and path validation, pattern
selection, the manifest, the plan (remote listing against the manifest and the disk) and
the runner that applies the plan.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fnmatch
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tempfile
import threading
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.hpcllm.webui.plugins.module_utils._files import hash_file, nearest_existing
from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure

MANIFEST_NAME = ".hf_model.json"
TMP_NAME = ".hf_model.tmp"
MANIFEST_FORMAT = 1
RESERVED_NAMES = (MANIFEST_NAME, TMP_NAME)
VERIFY_CHOICES = ("none", "size", "sha256")
ATTEMPTS = 3

_REPO_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class HfModelError(ModuleFailure):
    """A failure to report through fail_json; `result` holds extra return values."""


# --------------------------------------------------------------------------- validation
def validate_repo_id(repo_id):
    """Return None when repo_id is a valid `owner/name`, else a reason."""
    if not isinstance(repo_id, str) or not repo_id:
        return "repo_id must be a non-empty string of the form owner/name"
    parts = repo_id.split("/")
    if len(parts) != 2:
        return "repo_id must be of the form owner/name"
    if len(repo_id) > 96 + 1 + 96:
        return "repo_id is too long"
    for part in parts:
        if len(part) > 96 or not _REPO_PART.match(part):
            return "repo_id parts may use letters, digits, '-', '_' and '.', and must start and end with a letter or digit"
        if "--" in part or ".." in part:
            return "repo_id may not contain '--' or '..'"
    return None


def is_commit(revision):
    return bool(_HEX40.match(revision or ""))


def check_remote_path(path):
    """Return `path` if it is a safe relative POSIX path inside dest, else raise HfModelError."""
    if not isinstance(path, str) or not path:
        raise HfModelError("remote path %r is empty or not a string" % (path,))
    if "\x00" in path or "\\" in path:
        raise HfModelError("remote path %r contains a NUL byte or a backslash" % (path,))
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise HfModelError("remote path %r is absolute and would escape dest" % (path,))
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise HfModelError("remote path %r is not normalized (empty, '.' or '..' component) and could escape dest" % (path,))
    if parts[0] in RESERVED_NAMES:
        raise HfModelError("remote path %r collides with this module's bookkeeping (%s)" % (path, ", ".join(RESERVED_NAMES)))
    return posixpath.normpath(path)


def check_inside(dest, path):
    """Return dest/path; raise HfModelError if its folder resolves (through symlinks) outside dest.

    The file itself may be a symlink: the download replaces the link, it never writes through it.
    """
    root = os.path.realpath(dest)
    parent = os.path.realpath(os.path.join(dest, os.path.dirname(path)))
    if parent != root and not parent.startswith(root + os.sep):
        raise HfModelError("remote path %r resolves to %s, outside dest %s" % (path, parent, root))
    return os.path.join(dest, path)


def _patterns(patterns):
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [patterns]
    return [p + "*" if p.endswith("/") else p for p in patterns]


def select(paths, allow_patterns=None, ignore_patterns=None):
    """Filter paths like huggingface_hub's filter_repo_objects (fnmatch, 'dir/' means 'dir/*')."""
    allow = _patterns(allow_patterns)
    ignore = _patterns(ignore_patterns)
    out = []
    for path in paths:
        if allow is not None and not any(fnmatch.fnmatchcase(path, p) for p in allow):
            continue
        if ignore is not None and any(fnmatch.fnmatchcase(path, p) for p in ignore):
            continue
        out.append(path)
    return out


# --------------------------------------------------------------------------- content identity
def expected_digest(entry):
    """('sha256', hex) for LFS files, ('git-sha1', hex) for files stored in git."""
    if entry.get("sha256"):
        return ("sha256", entry["sha256"])
    return ("git-sha1", entry.get("blob_id"))


def same_content(a, b):
    """True when two listing/manifest entries describe the same bytes."""
    if a is None or b is None or a.get("size") != b.get("size"):
        return False
    return expected_digest(a) == expected_digest(b) and expected_digest(a)[1] is not None


def file_digest(path, entry):
    """Hash a local file the way the Hub identifies `entry` (reads the whole file)."""
    kind = expected_digest(entry)[0]
    size = os.path.getsize(path)
    if kind == "sha256":
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1(b"blob %d\0" % size)
    return (kind, hash_file(digest, path))


def remote_entry(path, size, sha256=None, blob_id=None):
    """A normalized listing entry (also the manifest's per-file record)."""
    entry = {"path": path, "size": int(size) if size is not None else None, "sha256": sha256 or None, "blob_id": blob_id or None}
    return entry


# --------------------------------------------------------------------------- manifest
def manifest_path(dest):
    return os.path.join(dest, MANIFEST_NAME)


def read_manifest(dest):
    """The manifest dict, None if there is none; raise HfModelError if it is unreadable."""
    path = manifest_path(dest)
    try:
        with open(path, "r") as fh:
            data = json.load(fh)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise HfModelError("cannot read manifest %s: %s" % (path, exc))
    except ValueError as exc:
        raise HfModelError("manifest %s is not valid JSON (%s); remove it to start over" % (path, exc))
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict) or data.get("format") != MANIFEST_FORMAT:
        raise HfModelError("manifest %s has an unknown layout; remove it to start over" % path)
    data.setdefault("stale", {})
    return data


def build_manifest(repo_id, revision, commit, files, stale=None, allow_patterns=None, ignore_patterns=None):
    """files / stale: {path: entry}; only size, sha256 and blob_id are recorded per file."""

    def strip(entries):
        return dict((p, {"size": e["size"], "sha256": e.get("sha256"), "blob_id": e.get("blob_id")}) for p, e in (entries or {}).items())

    return {
        "format": MANIFEST_FORMAT,
        "repo_id": repo_id,
        "revision": revision,
        "commit": commit,
        "allow_patterns": allow_patterns,
        "ignore_patterns": ignore_patterns,
        "files": strip(files),
        "stale": strip(stale),
    }


def write_manifest(dest, data):
    """Write the manifest atomically (temporary file in dest, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=MANIFEST_NAME + ".", dir=dest)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, manifest_path(dest))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- plan
def make_plan(dest, remote, manifest, verify="size", prune=False, digest=file_digest):
    """Compare the remote listing with the manifest and the disk.

    remote: list of entries (remote_entry) already filtered by patterns and checked by check_remote_path.
    Returns a dict:
      fetch   [(entry, reason)]  files to download
      keep    [path]             files already right
      adopt   [path]             files on disk, not recorded yet, whose content matches (hashed once)
      remove  [path]             recorded files that left the selection (prune=True)
      stale   {path: entry}      recorded files that left the selection and stay on disk (prune=False)
    Only `verify: sha256` and adoption read file contents; everything else is a stat.
    """
    if verify not in VERIFY_CHOICES:
        raise HfModelError("verify must be one of %s" % ", ".join(VERIFY_CHOICES))
    recorded = dict((manifest or {}).get("files", {}))
    previous_stale = dict((manifest or {}).get("stale", {}))
    plan = {"fetch": [], "keep": [], "adopt": [], "remove": [], "stale": {}}
    wanted = set()
    for entry in remote:
        path = entry["path"]
        wanted.add(path)
        full = os.path.join(dest, path)
        try:
            st = os.lstat(full)
        except OSError:
            plan["fetch"].append((entry, "missing"))
            continue
        if not stat.S_ISREG(st.st_mode):
            plan["fetch"].append((entry, "not a regular file"))
            continue
        record = recorded.get(path)
        if record is not None and same_content(record, entry):
            if verify != "none" and st.st_size != entry["size"]:
                plan["fetch"].append((entry, "size differs (%d on disk, %d expected)" % (st.st_size, entry["size"])))
            elif verify == "sha256" and digest(full, entry) != expected_digest(entry):
                plan["fetch"].append((entry, "checksum differs"))
            else:
                plan["keep"].append(path)
        elif record is not None:
            plan["fetch"].append((entry, "changed in the revision"))
        elif st.st_size == entry["size"] and expected_digest(entry)[1] and digest(full, entry) == expected_digest(entry):
            plan["adopt"].append(path)
        else:
            plan["fetch"].append((entry, "not downloaded by this module"))
    gone = {}
    gone.update(previous_stale)
    gone.update(dict((p, e) for p, e in recorded.items()))
    for path in sorted(gone):
        if path in wanted:
            continue
        if prune:
            if os.path.lexists(os.path.join(dest, path)):
                plan["remove"].append(path)
        else:
            plan["stale"][path] = gone[path]
    return plan


def _prune(dest, paths):
    for path in paths:
        full = os.path.join(dest, path)
        try:
            os.unlink(full)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        parent = os.path.dirname(full)
        while os.path.realpath(parent) != os.path.realpath(dest):
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)


# --------------------------------------------------------------------------- runner
def _source_factory(source, allow_patterns, ignore_patterns):
    # imported here: _hf_model_source imports this module
    from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model_source import SourceClient
    return SourceClient(source, allow_patterns, ignore_patterns)


class HfModel(object):
    """Apply hf_model's parameters; `hub_factory(endpoint, token, timeout)` builds the remote client.

    With the `source` parameter, `source_factory(source, allow_patterns, ignore_patterns)` builds a client with
    the same interface that lists and copies from a local folder instead (no Hub).
    """

    def __init__(self, params, check_mode=False, diff_mode=False, hub_factory=None, disk_usage=shutil.disk_usage,
                 source_factory=_source_factory):
        self.p = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.hub_factory = hub_factory
        self.source_factory = source_factory
        self.disk_usage = disk_usage
        self.repo_id = params["repo_id"]
        self.revision = params.get("revision") or "main"
        self.dest = os.path.abspath(os.path.expanduser(params["dest"]))
        self.result = {"changed": False, "dest": self.dest, "repo_id": self.repo_id, "revision": self.revision,
                       "commit": None, "files": [], "downloaded": [], "bytes_downloaded": 0, "removed": [], "actions": []}

    @classmethod
    def from_module(cls, module):
        def hub_factory(endpoint, token, timeout):
            try:
                from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model_hub import HubClient
            except ImportError:
                raise HfModelError(missing_required_lib("huggingface_hub"), exception=traceback.format_exc())
            return HubClient(endpoint, token, timeout)
        return cls(module.params, check_mode=module.check_mode, diff_mode=module._diff, hub_factory=hub_factory)

    def fail(self, reason, **extra):
        """Raise an error whose message names the repo and the revision."""
        raise HfModelError("hf_model %s (revision %s): %s" % (self.repo_id, self.revision, reason), **extra)

    def run(self):
        """The result; an HfModelError carries the result so far (what was downloaded: changed)."""
        try:
            return self._run()
        except HfModelError as exc:
            failed = dict(self.result)
            failed.update(exc.result)
            failed.pop("retry", None)
            failed["changed"] = bool(exc.result.get("downloaded"))
            raise HfModelError(exc.msg, **failed)

    def _run(self):
        reason = validate_repo_id(self.repo_id)
        if reason:
            self.fail("invalid repo_id %r: %s" % (self.repo_id, reason))
        if not self.revision.strip() or any(c.isspace() for c in self.revision):
            self.fail("invalid revision %r" % self.revision)
        if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
            self.fail("dest %s exists and is not a directory" % self.dest)
        if self.p.get("state", "present") == "absent":
            return self.absent()
        if self.p.get("source"):
            clash = [name for name in ("endpoint", "token", "offline") if self.p.get(name)]
            if clash:
                self.fail("source is mutually exclusive with %s: the files come from %s, not from a Hub"
                          % (", ".join(clash), self.p["source"]))
        if self.p.get("max_workers") is not None and int(self.p["max_workers"]) < 1:
            self.fail("max_workers must be at least 1")
        if self.p.get("timeout") is not None and float(self.p["timeout"]) <= 0:
            self.fail("timeout must be positive")
        try:
            manifest = read_manifest(self.dest) if os.path.isdir(self.dest) else None
        except HfModelError as exc:
            self.fail(exc.msg)
        if manifest is not None and manifest.get("repo_id") != self.repo_id:
            self.fail("dest %s holds %s according to %s; use another dest or remove it with state=absent first"
                      % (self.dest, manifest.get("repo_id"), MANIFEST_NAME))
        if self.p.get("offline"):
            return self.offline(manifest)
        return self.present(manifest)

    # ----------------------------------------------------------------- absent
    def absent(self):
        if not os.path.lexists(self.dest):
            return self.result
        if not os.path.isfile(manifest_path(self.dest)):
            self.fail("refusing to remove %s: it has no %s, so it was not made by this module" % (self.dest, MANIFEST_NAME))
        try:
            manifest = read_manifest(self.dest)
        except HfModelError as exc:
            self.fail(exc.msg)
        if manifest.get("repo_id") != self.repo_id:
            self.fail("refusing to remove %s: it holds %s, not %s" % (self.dest, manifest.get("repo_id"), self.repo_id))
        self.result.update(changed=True, commit=manifest.get("commit"), actions=["remove %s" % self.dest])
        if self.diff_mode:
            self.result["diff"] = {"before": self._state(manifest), "after": {}}
        if not self.check_mode:
            try:
                shutil.rmtree(self.dest)
            except OSError as exc:
                self.fail("cannot remove %s: %s" % (self.dest, exc))
        return self.result

    # ----------------------------------------------------------------- offline
    def offline(self, manifest):
        if manifest is None:
            self.fail("offline: %s has no %s; run once online first" % (self.dest, MANIFEST_NAME))
        if self.revision not in (manifest.get("revision"), manifest.get("commit")):
            self.fail("offline: %s holds revision %s (commit %s), not %s"
                      % (self.dest, manifest.get("revision"), manifest.get("commit"), self.revision))
        paths = select(sorted(manifest["files"]), self.p.get("allow_patterns"), self.p.get("ignore_patterns"))
        remote = [remote_entry(p, **manifest["files"][p]) for p in paths]
        plan = make_plan(self.dest, remote, manifest, self.p.get("verify", "size"), prune=False)
        if plan["fetch"]:
            self.fail("offline: %s is incomplete: %s" % (self.dest, "; ".join("%s: %s" % (e["path"], r) for e, r in plan["fetch"])))
        self.result.update(commit=manifest.get("commit"), files=paths)
        return self.result

    # ----------------------------------------------------------------- present
    def _state(self, manifest):
        if not manifest:
            return {}
        return {"repo_id": manifest.get("repo_id"), "revision": manifest.get("revision"), "commit": manifest.get("commit"),
                "files": sorted(manifest.get("files", {}))}

    def _listing(self):
        if self.p.get("source"):
            hub = self.source_factory(self.p["source"], self.p.get("allow_patterns"), self.p.get("ignore_patterns"))
        else:
            hub = self.hub_factory(self.p.get("endpoint"), self.p.get("token"), float(self.p.get("timeout") or 60))
        try:
            commit, entries = hub.listing(self.repo_id, self.revision)
        except HfModelError as exc:
            self.fail(exc.msg)
        remote = []
        for entry in entries:
            try:
                check_remote_path(entry["path"])
            except HfModelError as exc:
                self.fail("refusing the listing of commit %s: %s" % (commit, exc.msg), commit=commit)
            if entry.get("size") is None:
                self.fail("the Hub listed %s without a size" % entry["path"], commit=commit)
            remote.append(entry)
        return hub, commit, remote

    def present(self, manifest):
        hub, commit, listing = self._listing()
        self.result["commit"] = commit
        selected = set(select([e["path"] for e in listing], self.p.get("allow_patterns"), self.p.get("ignore_patterns")))
        remote = [e for e in listing if e["path"] in selected]
        if not remote:
            self.fail("no file of commit %s matches allow_patterns/ignore_patterns" % commit, commit=commit)
        verify = self.p.get("verify", "size")
        try:
            plan = make_plan(self.dest, remote, manifest, verify, bool(self.p.get("prune")))
        except (IOError, OSError) as exc:
            self.fail("cannot inspect %s: %s" % (self.dest, exc), commit=commit)
        files = dict((e["path"], e) for e in remote)
        new_manifest = build_manifest(self.repo_id, self.revision, commit, files, plan["stale"],
                                      self.p.get("allow_patterns"), self.p.get("ignore_patterns"))
        fetch = plan["fetch"]
        self.result.update(
            files=sorted(files),
            downloaded=[e["path"] for e, dummy in fetch],
            bytes_downloaded=sum(e["size"] for e, dummy in fetch),
            removed=list(plan["remove"]),
            actions=(["download %s (%s, %d bytes)" % (e["path"], r, e["size"]) for e, r in fetch]
                     + ["adopt %s (content matches)" % p for p in plan["adopt"]]
                     + ["remove %s (left the selection)" % p for p in plan["remove"]]),
        )
        record_changed = manifest != new_manifest
        if record_changed and not (fetch or plan["adopt"] or plan["remove"]):
            self.result["actions"].append("record commit %s in %s" % (commit, MANIFEST_NAME))
        self.result["changed"] = bool(fetch or plan["adopt"] or plan["remove"] or record_changed)
        if self.diff_mode:
            self.result["diff"] = {"before": self._state(manifest), "after": self._state(new_manifest)}
        if self.check_mode or not self.result["changed"]:
            if self.check_mode:
                self._check_writable()
            return self.result
        self._apply(hub, commit, plan, manifest, new_manifest)
        return self.result

    def _check_writable(self):
        """Dest (or its nearest existing parent) must be writable; works without writing."""
        probe = nearest_existing(self.dest)
        if not os.access(probe, os.W_OK | os.X_OK):
            self.fail("dest %s is not writable (%s)" % (self.dest, probe))
        return probe

    def _apply(self, hub, commit, plan, manifest, new_manifest):
        probe = self._check_writable()
        fetch = plan["fetch"]
        needed = sum(e["size"] for e, dummy in fetch)
        if needed:
            free = self.disk_usage(probe).free
            if needed > free:
                self.fail("not enough space on device for %s (ENOSPC): %d bytes to download, %d free" % (self.dest, needed, free),
                          commit=commit)
        # the first folder this run creates, removed again if the run fails before placing a file
        created = None
        if probe != self.dest:
            created = os.path.join(probe, os.path.relpath(self.dest, probe).split(os.sep)[0])
        tmpdir = os.path.join(self.dest, TMP_NAME)
        placed = {}
        try:
            try:
                os.makedirs(self.dest, exist_ok=True)
                if os.path.lexists(tmpdir):
                    shutil.rmtree(tmpdir)
                os.mkdir(tmpdir, 0o700)
            except OSError as exc:
                self.fail("dest %s is not writable: %s" % (self.dest, exc), commit=commit)
            try:
                self._fetch_all(hub, commit, fetch, tmpdir, placed)
                _prune(self.dest, plan["remove"])
                write_manifest(self.dest, new_manifest)
            except HfModelError as exc:
                self._save_partial(manifest, placed)
                self.fail(exc.msg, commit=commit, downloaded=sorted(placed), bytes_downloaded=sum(e["size"] for e in placed.values()))
            except (IOError, OSError) as exc:
                self._save_partial(manifest, placed)
                what = "disk full (ENOSPC)" if exc.errno == errno.ENOSPC else "cannot write"
                self.fail("%s in %s: %s" % (what, self.dest, exc), commit=commit, downloaded=sorted(placed))
        except HfModelError:
            if created is not None and not placed:
                shutil.rmtree(created, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _save_partial(self, manifest, placed):
        """After a failure keep a truthful record of the files already placed, so a re-run skips them."""
        if not placed:
            return
        base = manifest or build_manifest(self.repo_id, self.revision, None, {})
        files = dict(base.get("files", {}))
        files.update(placed)
        partial = build_manifest(self.repo_id, base.get("revision"), base.get("commit"), files, base.get("stale"),
                                 base.get("allow_patterns"), base.get("ignore_patterns"))
        try:
            write_manifest(self.dest, partial)
        except (IOError, OSError):
            pass

    def _fetch_all(self, hub, commit, fetch, tmpdir, placed):
        """Download into tmpdir, verify size and hash, then rename under the final name."""
        if not fetch:
            return
        lock = threading.Lock()
        errors = []
        # a client with stage_all (a local source) has every verified file renamed only once all are there
        staged = [] if getattr(hub, "stage_all", False) else None

        def place(tmp, final, entry):
            os.makedirs(os.path.dirname(final), exist_ok=True)
            check_inside(self.dest, entry["path"])
            os.rename(tmp, final)
            with lock:
                placed[entry["path"]] = entry

        def one(entry):
            final = check_inside(self.dest, entry["path"])
            problem = None
            for attempt in range(1, ATTEMPTS + 1):
                if attempt > 1:
                    hub.pause(attempt - 1)
                fd, tmp = tempfile.mkstemp(prefix="part.", dir=tmpdir)
                try:
                    try:
                        # not fsync'ed (as curl, pip, get_url and huggingface_hub do not): writing every
                        # byte out before the rename held a download to the disk's speed; a file a crash
                        # cut short has the wrong size, which the next run (verify=size) fetches again
                        with os.fdopen(fd, "wb") as fh:
                            streamed = hub.download(self.repo_id, commit, entry, fh)
                    except HfModelError as exc:
                        if not exc.result.get("retry"):
                            raise HfModelError("cannot download %s: %s" % (entry["path"], exc.msg))
                        problem = exc.msg
                        continue
                    problem = self._verify_download(tmp, entry, streamed)
                    if problem is not None:
                        continue
                    os.chmod(tmp, 0o644)
                    if staged is not None:
                        with lock:
                            staged.append((tmp, final, entry))
                        tmp = None
                        return
                    place(tmp, final, entry)
                    return
                finally:
                    if tmp is not None and os.path.exists(tmp):
                        os.unlink(tmp)
            raise HfModelError("cannot download %s: %s (after %d attempts; nothing was written under its name)"
                               % (entry["path"], problem, ATTEMPTS))

        workers = max(1, min(int(self.p.get("max_workers") or 1), len(fetch)))
        if workers == 1:
            for entry, dummy in fetch:
                one(entry)
        else:
            self._fetch_parallel(one, fetch, workers, errors)
        if errors:
            raise HfModelError("; ".join(errors))
        for tmp, final, entry in sorted(staged or [], key=lambda item: item[2]["path"]):
            place(tmp, final, entry)

    def _fetch_parallel(self, one, fetch, workers, errors):
        """Run one(entry) for every entry of fetch in a thread pool; failures go to errors and cancel the rest."""
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(one, entry) for entry, dummy in fetch]
            for future in futures:
                if future.cancelled():
                    # not started because an earlier download failed: nothing to report
                    continue
                try:
                    future.result()
                except HfModelError as exc:
                    errors.append(exc.msg)
                    for other in futures:
                        other.cancel()
                except (IOError, OSError) as exc:
                    if exc.errno == errno.ENOSPC:
                        errors.append("disk full (ENOSPC) in %s: %s" % (self.dest, exc))
                    else:
                        errors.append("cannot write in %s: %s" % (self.dest, exc))
                    for other in futures:
                        other.cancel()

    @staticmethod
    def _verify_download(path, entry, streamed=None):
        """None if the file at path is entry's content; else what is wrong. `streamed`: digest computed while writing."""
        size = os.path.getsize(path)
        if size != entry["size"]:
            return "received %d bytes, expected %d" % (size, entry["size"])
        kind, want = expected_digest(entry)
        if want and (streamed or file_digest(path, entry)) != (kind, want):
            return "%s of the received bytes does not match the Hub's %s" % (kind, want)
        return None
