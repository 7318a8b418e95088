# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of hpcllm.webui.cuda_relocate: move a tree out of a node image, resumably and verified.

A relocation moves the directory ``src`` (inside an image's root filesystem) to ``dest`` (on the
master's NFS-exported /opt) and leaves a symlink at ``src`` that points to ``link``.

On one filesystem the move is a rename. Across filesystems it is a copy into ``<dest>.partial``,
a verification of the copy against the source, a rename of the partial copy to ``dest``, the
removal of the source, and the symlink. A marker file next to ``dest``
(``.<name>.cuda_relocate``) records the source and the phase, so a run that was killed anywhere
resumes on the next run without losing a file and without trusting a tree it did not write.

``inspect`` reads the state of the paths, ``plan`` maps that state to a list of steps (pure, table
tested), ``Relocation.run`` applies the steps (or only reports them in check mode).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import shutil
import stat

from ansible_collections.hpcllm.webui.plugins.module_utils._files import HASH_CHUNK, hash_file, nearest_existing
from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure

PARTIAL_SUFFIX = ".partial"
MARKER_SUFFIX = ".cuda_relocate"
MARKER_FORMAT = 1
VERIFY_CHOICES = ("sha256", "size")

# phases written into the marker
PHASE_COPYING = "copying"
PHASE_VERIFIED = "verified"

# steps of a plan, in the order they can appear
STEP_MKPARENT = "mkparent"          # create the parent folder of dest
STEP_RENAME = "rename"              # same filesystem: rename src to dest
STEP_MARK = "mark"                  # write the marker, phase copying
STEP_COPY = "copy"                  # copy src into dest.partial (resumes what is there)
STEP_VERIFY = "verify"              # compare dest.partial with src (fixes what differs once)
STEP_MARK_VERIFIED = "mark_verified"  # marker phase verified
STEP_PROMOTE = "promote"            # rename dest.partial to dest
STEP_COMPARE = "compare"            # dest exists, not written by us: must equal src
STEP_CHECK_REST = "check_rest"      # what is left of src must be in dest (removal resumed)
STEP_REMOVE_SOURCE = "remove_source"
STEP_LINK = "link"                  # symlink src -> link
STEP_CLEAR_MARKER = "clear_marker"

COPY_STEPS = [STEP_MARK, STEP_COPY, STEP_VERIFY, STEP_MARK_VERIFIED, STEP_PROMOTE, STEP_REMOVE_SOURCE]


class RelocateError(ModuleFailure):
    """A failure to report through fail_json."""


class _CrossDevice(Exception):
    """rename() refused with EXDEV."""


# --------------------------------------------------------------------------- paths and state
def partial_path(dest):
    return dest + PARTIAL_SUFFIX


def marker_path(dest):
    parent, name = os.path.split(dest)
    return os.path.join(parent, "." + name + MARKER_SUFFIX)


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _kind(st):
    if st is None:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "other"


def _ancestors_stats(path):
    """(st_dev, st_ino) of every existing ancestor of path (the path itself included)."""
    seen = set()
    path = nearest_existing(path)
    while True:
        try:
            st = os.stat(path)
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
        parent = os.path.dirname(path)
        if parent == path:
            return seen
        path = parent


def read_marker(dest):
    path = marker_path(dest)
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise RelocateError("cannot read the marker {0}: {1}".format(path, exc))
    except ValueError as exc:
        raise RelocateError("the marker {0} is not valid JSON ({1}); remove it after checking {2}".format(path, exc, dest))
    if not isinstance(data, dict) or "src" not in data or data.get("phase") not in (PHASE_COPYING, PHASE_VERIFIED):
        raise RelocateError("the marker {0} is not one this module writes; remove it after checking {1}".format(path, dest))
    return data


def write_marker(dest, src, phase):
    path = marker_path(dest)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump({"format": MARKER_FORMAT, "src": src, "dest": dest, "phase": phase}, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class State(object):
    """What is on disk for one relocation."""

    def __init__(self, src, dest, link=None):
        self.src = src
        self.dest = dest
        src_st = _lstat(src)
        dest_st = _lstat(dest)
        self.src_kind = _kind(src_st)
        self.dest_kind = _kind(dest_st)
        self.src_target = os.readlink(src) if self.src_kind == "link" else None
        self.link = link
        self.partial = _lstat(partial_path(dest)) is not None
        self.marker = read_marker(dest)
        self.same_inode = False
        self.overlap = False
        self.same_fs = False
        if self.src_kind == "dir":
            if self.dest_kind == "dir":
                self.same_inode = (src_st.st_dev, src_st.st_ino) == (dest_st.st_dev, dest_st.st_ino)
            if not self.same_inode:
                # one inside the other, also through bind mounts (inode ancestry, not path text)
                self.overlap = (src_st.st_dev, src_st.st_ino) in _ancestors_stats(dest)
                if self.dest_kind == "dir":
                    self.overlap = self.overlap or (dest_st.st_dev, dest_st.st_ino) in _ancestors_stats(src)
            parent_st = os.stat(nearest_existing(os.path.dirname(dest)))
            self.same_fs = parent_st.st_dev == src_st.st_dev
        self.dest_parent_exists = os.path.isdir(os.path.dirname(dest))

    def describe(self):
        if self.src_kind == "link":
            src = "symlink -> {0}".format(self.src_target)
        elif self.src_kind == "dir" and self.same_inode:
            src = "directory (the same as dest)"
        else:
            src = {"dir": "directory", "missing": "absent", "other": "not a directory"}[self.src_kind]
        dest = {"dir": "directory", "missing": "absent", "other": "not a directory", "link": "symlink"}[self.dest_kind]
        out = {"src": src, "dest": dest}
        if self.partial:
            out["partial"] = "present"
        if self.marker:
            out["marker"] = self.marker["phase"]
        return out


# --------------------------------------------------------------------------- the plan
def plan(state, required=True, force_copy=False):
    """Map a State to (situation, steps). Raises RelocateError for states it must not touch."""
    src, dest = state.src, state.dest
    marker = state.marker
    if marker is not None and marker.get("src") != src:
        raise RelocateError(
            "dest {0} is being relocated from {1} (marker {2}), not from src {3}: finish or undo that relocation "
            "first".format(dest, marker.get("src"), marker_path(dest), src))
    if state.src_kind == "other":
        raise RelocateError("src {0} exists but is not a directory".format(src))
    if state.dest_kind in ("other", "link"):
        raise RelocateError("dest {0} exists but is not a directory".format(dest))

    if state.src_kind == "dir" and state.same_inode:
        # /opt was bind-mounted into the image during the install: the tree is on the master already
        return "in_place", []
    if state.overlap:
        raise RelocateError("src {0} and dest {1} contain one another".format(src, dest))

    tail = [STEP_CLEAR_MARKER] if marker is not None else []
    link_step = [STEP_LINK] if state.link else []

    if state.src_kind == "link":
        if state.partial:
            raise RelocateError("{0} exists but src {1} is already a symlink: remove the partial copy after "
                                "checking it".format(partial_path(dest), src))
        if not state.link or state.src_target != state.link:
            raise RelocateError("src {0} is a symlink to {1}, expected a directory{2}".format(
                src, state.src_target, " or a symlink to link {0}".format(state.link) if state.link else ""))
        if state.dest_kind == "missing":
            raise RelocateError("src {0} is a symlink to {1} but dest {2} does not exist: the tree is not "
                                "where dest says".format(src, state.src_target, dest))
        return ("finish", tail) if tail else ("done", [])

    if state.src_kind == "missing":
        if state.partial:
            raise RelocateError("src {0} is gone and only a partial copy {1} exists: restore the source "
                                "(reinstall it in the image) and run again".format(src, partial_path(dest)))
        if state.dest_kind == "dir":
            if marker is not None:
                return "finish", link_step + tail
            # moved without a link asked for, or another image's copy: this image never had it
            return ("done" if not link_step else "not_in_image"), []
        if required:
            raise RelocateError("neither src {0} nor dest {1} exists".format(src, dest))
        return "absent", []

    # src is a real directory of its own
    if state.dest_kind == "missing":
        parent = [] if state.dest_parent_exists else [STEP_MKPARENT]
        if state.partial:
            if marker is None:
                raise RelocateError("{0} exists but was not written by this module (no marker {1}): remove it "
                                    "after checking it".format(partial_path(dest), marker_path(dest)))
            return "resume_copy", parent + COPY_STEPS[1:] + link_step + tail
        if state.same_fs and not force_copy:
            return "move", parent + [STEP_MARK, STEP_RENAME] + link_step + [STEP_CLEAR_MARKER]
        return "copy", parent + COPY_STEPS + link_step + [STEP_CLEAR_MARKER]

    # src and dest are both directories
    if state.partial:
        raise RelocateError("src {0}, dest {1} and the partial copy {2} all exist: remove the partial copy "
                            "after checking it".format(src, dest, partial_path(dest)))
    if marker is not None and marker.get("phase") == PHASE_VERIFIED:
        return "resume_remove", [STEP_CHECK_REST, STEP_REMOVE_SOURCE] + link_step + tail
    return "duplicate", [STEP_COMPARE, STEP_REMOVE_SOURCE] + link_step + tail


# --------------------------------------------------------------------------- trees
def list_tree(root):
    """Sorted list of (relative path, lstat), depth first (a folder's content right after it)."""
    out = []

    def _recurse(rel):
        path = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(path)):
            crel = os.path.join(rel, name) if rel else name
            st = os.lstat(os.path.join(root, crel))
            out.append((crel, st))
            if stat.S_ISDIR(st.st_mode):
                _recurse(crel)

    _recurse("")
    return out


def tree_size(root):
    """(bytes of regular files, number of entries) under root."""
    size = 0
    count = 0
    for dummy, st in list_tree(root):
        count += 1
        if stat.S_ISREG(st.st_mode):
            size += st.st_size
    return size, count


def sha256_file(path):
    return hash_file(hashlib.sha256(), path)


def _set_meta(path, st, is_link=False):
    if os.geteuid() == 0:
        os.lchown(path, st.st_uid, st.st_gid)
    if not is_link:
        os.chmod(path, stat.S_IMODE(st.st_mode))
    try:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=not is_link)
    except (NotImplementedError, OSError):
        if not is_link:
            raise


def _remove(path):
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def copy_file(src, dst, st):
    """Copy one regular file and its metadata (mtime last: a file cut short keeps a wrong mtime)."""
    with open(src, "rb") as fin:
        with open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, HASH_CHUNK)
            fout.flush()
            os.fsync(fout.fileno())
    _set_meta(dst, st)


def copy_tree(src, dst, on_file=None):
    """Copy src into dst, keeping what an earlier run already copied (same type, size and mtime).

    Returns (bytes copied, bytes kept). Entries of dst that src does not have are removed.
    """
    copied = 0
    kept = 0
    if _lstat(dst) is None:
        os.mkdir(dst, 0o700)
    entries = list_tree(src)
    wanted = set()
    dirs = [("", os.lstat(src))]
    for rel, st in entries:
        wanted.add(rel)
        s_path = os.path.join(src, rel)
        d_path = os.path.join(dst, rel)
        d_st = _lstat(d_path)
        if stat.S_ISDIR(st.st_mode):
            if d_st is not None and not stat.S_ISDIR(d_st.st_mode):
                _remove(d_path)
                d_st = None
            if d_st is None:
                os.mkdir(d_path, 0o700)
            dirs.append((rel, st))
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(s_path)
            if d_st is not None and not (stat.S_ISLNK(d_st.st_mode) and os.readlink(d_path) == target):
                _remove(d_path)
                d_st = None
            if d_st is None:
                os.symlink(target, d_path)
            _set_meta(d_path, st, is_link=True)
        elif stat.S_ISREG(st.st_mode):
            if (d_st is not None and stat.S_ISREG(d_st.st_mode) and d_st.st_size == st.st_size
                    and d_st.st_mtime_ns == st.st_mtime_ns):
                kept += st.st_size
                continue
            if d_st is not None:
                _remove(d_path)
            copy_file(s_path, d_path, st)
            copied += st.st_size
            if on_file is not None:
                on_file(rel)
        else:
            raise RelocateError("{0} is neither a file, a folder nor a symlink: not moved".format(s_path))
    # what an earlier run copied but the source no longer has
    for rel, dummy in reversed(list_tree(dst)):
        if rel not in wanted:
            _remove(os.path.join(dst, rel))
    # folder metadata last (deepest first), so read-only folders do not block the copy
    for rel, st in reversed(dirs):
        _set_meta(os.path.join(dst, rel) if rel else dst, st)
    return copied, kept


def _signature(root, rel, st, verify):
    path = os.path.join(root, rel)
    mode = stat.S_IFMT(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return (mode, st.st_uid, st.st_gid, os.readlink(path))
    perms = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return (mode, perms, st.st_uid, st.st_gid)
    if stat.S_ISREG(st.st_mode):
        content = sha256_file(path) if verify == "sha256" else st.st_mtime_ns
        return (mode, perms, st.st_uid, st.st_gid, st.st_size, content)
    return (mode,)


def compare_trees(src, dst, verify="sha256", only_src=False):
    """Differences between two trees, as readable lines (empty: equal).

    Compares type, permissions, owner, size and (verify=sha256) the sha256 of every file, or its
    mtime (verify=size); symlink targets. only_src: entries dst has in addition are fine.
    """
    src_entries = dict(list_tree(src))
    dst_entries = dict(list_tree(dst))
    problems = []
    for rel in sorted(src_entries):
        if rel not in dst_entries:
            problems.append("missing in {0}: {1}".format(dst, rel))
            continue
        if _signature(src, rel, src_entries[rel], verify) != _signature(dst, rel, dst_entries[rel], verify):
            problems.append("differs: {0}".format(rel))
    if not only_src:
        for rel in sorted(set(dst_entries) - set(src_entries)):
            problems.append("not in {0}: {1}".format(src, rel))
    return problems


# --------------------------------------------------------------------------- the runner
class Relocation(object):
    """Plan and apply one relocation. force_copy takes the copy path on one filesystem (tests)."""

    def __init__(self, src, dest, link=None, required=True, verify="sha256", check_mode=False,
                 force_copy=False, on_file=None):
        if not os.path.isabs(src) or not os.path.isabs(dest):
            raise RelocateError("src and dest must be absolute paths (got {0!r}, {1!r})".format(src, dest))
        if verify not in VERIFY_CHOICES:
            raise RelocateError("verify must be one of {0}".format(", ".join(VERIFY_CHOICES)))
        self.src = os.path.normpath(src)
        self.dest = os.path.normpath(dest)
        if self.src == "/" or self.dest == "/":
            raise RelocateError("src and dest cannot be /")
        self.link = link or None
        self.required = required
        self.verify = verify
        self.check_mode = check_mode
        self.force_copy = force_copy
        self.on_file = on_file
        self.actions = []
        self.result = dict(changed=False, src=self.src, dest=self.dest, link=self.link, situation=None,
                           method="none", bytes_removed=0, bytes_copied=0, files=0, actions=self.actions)
        self.diff_mode = True

    @classmethod
    def from_module(cls, module):
        params = module.params
        logic = cls(params["src"], params["dest"], link=params["link"], required=params["required"],
                    verify=params["verify"], check_mode=module.check_mode)
        logic.diff_mode = module._diff
        return logic

    def run(self):
        """The result; a RelocateError carries what was done before it (actions, changed)."""
        try:
            result = self._relocate()
        except RelocateError as exc:
            failed = dict(self.result)
            failed["changed"] = bool(failed.get("actions"))
            exc.result.update(failed)
            raise
        if not self.diff_mode:
            result.pop("diff", None)
        return result

    def _relocate(self):
        state = State(self.src, self.dest, self.link)
        before = state.describe()
        situation, steps = plan(state, required=self.required, force_copy=self.force_copy)
        self.result["situation"] = situation
        self.result["steps"] = list(steps)
        self._planned = (0, 0)
        if STEP_REMOVE_SOURCE in steps or STEP_RENAME in steps:
            self._planned = tree_size(self.src)
            if self.check_mode:
                self.result["bytes_removed"], self.result["files"] = self._planned
        if STEP_RENAME in steps:
            self.result["method"] = "rename"
        elif STEP_COPY in steps:
            self.result["method"] = "copy"
        elif STEP_REMOVE_SOURCE in steps:
            self.result["method"] = "remove_duplicate" if situation == "duplicate" else "copy"
        if steps:
            self.result["changed"] = True
        if self.check_mode:
            for step in steps:
                self.actions.append(self._describe(step))
        else:
            self._apply(steps)
        after = State(self.src, self.dest, self.link).describe() if not self.check_mode else self._predict(before, steps)
        self.result["diff"] = dict(before=before, after=after)
        return self.result

    def _predict(self, before, steps):
        if not steps:
            return dict(before)
        after = {"src": "symlink -> {0}".format(self.link) if self.link else "absent", "dest": "directory"}
        return after

    def _describe(self, step):
        src, dest, part = self.src, self.dest, partial_path(self.dest)
        return {
            STEP_MKPARENT: "create {0}".format(os.path.dirname(dest)),
            STEP_RENAME: "rename {0} to {1} (same filesystem)".format(src, dest),
            STEP_MARK: "write marker {0}".format(marker_path(dest)),
            STEP_COPY: "copy {0} into {1}".format(src, part),
            STEP_VERIFY: "verify {0} against {1} ({2})".format(part, src, self.verify),
            STEP_MARK_VERIFIED: "mark the copy verified",
            STEP_PROMOTE: "rename {0} to {1}".format(part, dest),
            STEP_COMPARE: "compare {0} with {1} ({2}) before removing the source".format(dest, src, self.verify),
            STEP_CHECK_REST: "check that what is left of {0} is in {1}".format(src, dest),
            STEP_REMOVE_SOURCE: "remove {0} ({1} bytes)".format(src, self._planned[0]),
            STEP_LINK: "link {0} -> {1}".format(src, self.link),
            STEP_CLEAR_MARKER: "remove marker {0}".format(marker_path(dest)),
        }[step]

    def _apply(self, steps):
        steps = list(steps)
        while steps:
            step = steps.pop(0)
            try:
                self._step(step)
            except _CrossDevice:
                # a bind mount of the same filesystem refuses a rename: copy instead
                self.result["method"] = "copy"
                steps = COPY_STEPS[1:] + steps
                self.actions.append("rename across mount points refused (EXDEV): copying instead")
                continue
            except (IOError, OSError) as exc:
                raise RelocateError("{0} failed: {1}".format(self._describe(step), exc))
            if step in (STEP_RENAME, STEP_REMOVE_SOURCE):
                # counted once the bytes really left the image
                self.result["bytes_removed"], self.result["files"] = self._planned
            self.actions.append(self._describe(step))

    def _step(self, step):
        src, dest, part = self.src, self.dest, partial_path(self.dest)
        if step == STEP_MKPARENT:
            os.makedirs(os.path.dirname(dest), 0o755)
        elif step == STEP_RENAME:
            try:
                os.rename(src, dest)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    raise _CrossDevice()
                raise
            _fsync_dir(os.path.dirname(dest))
        elif step == STEP_MARK:
            write_marker(dest, src, PHASE_COPYING)
        elif step == STEP_COPY:
            copied, dummy = copy_tree(src, part, on_file=self.on_file)
            self.result["bytes_copied"] += copied
        elif step == STEP_VERIFY:
            problems = compare_trees(src, part, self.verify)
            if problems:
                # a file cut short by a crash with a plausible size and mtime: copy again, once
                copied, dummy = self._recopy(problems, part)
                self.result["bytes_copied"] += copied
                problems = compare_trees(src, part, self.verify)
            if problems:
                raise RelocateError("the copy {0} differs from src {1} after copying twice: {2}".format(
                    part, src, "; ".join(problems[:10])))
            os.sync()
        elif step == STEP_MARK_VERIFIED:
            write_marker(dest, src, PHASE_VERIFIED)
        elif step == STEP_PROMOTE:
            os.rename(part, dest)
            _fsync_dir(os.path.dirname(dest))
        elif step == STEP_COMPARE:
            problems = compare_trees(src, dest, self.verify)
            if problems:
                raise RelocateError(
                    "dest {0} already exists and differs from src {1} ({2}{3}); nothing was removed. Point dest "
                    "elsewhere or remove {0} after checking it".format(
                        dest, src, "; ".join(problems[:5]), "; ..." if len(problems) > 5 else ""))
        elif step == STEP_CHECK_REST:
            problems = compare_trees(src, dest, "size", only_src=True)
            if problems:
                raise RelocateError(
                    "the removal of src {0} was interrupted and what is left of it is not in dest {1} ({2}); "
                    "nothing was removed".format(src, dest, "; ".join(problems[:5])))
        elif step == STEP_REMOVE_SOURCE:
            shutil.rmtree(src)
            _fsync_dir(os.path.dirname(src))
        elif step == STEP_LINK:
            os.symlink(self.link, src)
        elif step == STEP_CLEAR_MARKER:
            try:
                os.unlink(marker_path(dest))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise

    def _recopy(self, problems, part):
        copied = 0
        for line in problems:
            if not line.startswith("differs: "):
                continue
            rel = line.split(": ", 1)[1]
            s_path = os.path.join(self.src, rel)
            st = os.lstat(s_path)
            if stat.S_ISREG(st.st_mode):
                d_path = os.path.join(part, rel)
                _remove(d_path)
                copy_file(s_path, d_path, st)
                copied += st.st_size
        # anything else (missing, extra, types, folders): one more full pass
        more, dummy = copy_tree(self.src, part)
        return copied + more, 0
