"""Tests of module_utils.cuda_relocate: the plan table and real moves in temporary folders.

The copy path is taken on one filesystem with force_copy; test_real_* tests use a real tmpfs or a
real bind mount inside a private mount namespace (unshare -m) and are skipped when not root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils import _cuda_relocate as cr
from ansible_collections.hpcllm.webui.plugins.module_utils._cuda_relocate import (
    Relocation,
    RelocateError,
    State,
    marker_path,
    partial_path,
    plan,
)

LINK = "/opt/cuda/cuda-12.3"


# --------------------------------------------------------------------------- helpers
def make_tree(root):
    """A small CUDA-like tree: nested folders, modes, relative and absolute symlinks, empty things."""
    files = {
        "bin/nvcc": (b"#!/bin/sh\necho nvcc stand-in\n", 0o755),
        "bin/ptxas": (os.urandom(70000), 0o755),
        "include/cuda.h": (b"/* stand-in */\n" * 100, 0o644),
        "lib64/libcudart.so.12.3.101": (os.urandom(300000), 0o644),
        "nvvm/libdevice/libdevice.10.bc": (os.urandom(5000), 0o444),
        "version.json": (b'{"cuda": {"version": "12.3.101"}}\n', 0o644),
        "empty.txt": (b"", 0o600),
        "ro/inside.txt": (b"in a read-only folder\n", 0o644),
    }
    for rel, (data, mode) in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode)
    os.symlink("libcudart.so.12.3.101", os.path.join(root, "lib64", "libcudart.so.12"))
    os.symlink("lib64", os.path.join(root, "lib"))
    os.symlink("/usr/bin/true", os.path.join(root, "bin", "absolute-link"))
    os.makedirs(os.path.join(root, "extras", "empty-dir"))
    os.utime(os.path.join(root, "version.json"), ns=(1, 1_600_000_000_123_456_789))
    os.chmod(os.path.join(root, "ro"), 0o555)


def manifest(root):
    """{relative path: (type, permissions, size, sha256 or link target)} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def paths(tmp_path):
    rootfs = tmp_path / "rootfs"
    src = rootfs / "usr" / "local" / "cuda-12.3"
    src.mkdir(parents=True)
    make_tree(str(src))
    os.symlink("cuda-12.3", str(rootfs / "usr" / "local" / "cuda"))
    dest = tmp_path / "opt" / "cuda" / "cuda-12.3"
    yield {"src": str(src), "dest": str(dest), "tmp": tmp_path, "before": manifest(str(src))}
    # read-only folders left behind by failing tests
    for dirpath, dirnames, dummy in os.walk(str(tmp_path)):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)


def relocation(paths, **kwargs):
    kwargs.setdefault("link", LINK)
    return Relocation(paths["src"], paths["dest"], **kwargs)


def assert_moved(paths):
    assert os.path.islink(paths["src"])
    assert os.readlink(paths["src"]) == LINK
    assert manifest(paths["dest"]) == paths["before"]
    assert not os.path.exists(partial_path(paths["dest"]))
    assert not os.path.exists(marker_path(paths["dest"]))
    # the image's own /usr/local/cuda link still leads to the moved tree's link
    assert os.readlink(os.path.join(os.path.dirname(paths["src"]), "cuda")) == "cuda-12.3"


def tree_bytes(before):
    return sum(entry[2] for entry in before.values() if entry[0] == "file")


# --------------------------------------------------------------------------- the plan table
class FakeState:
    def __init__(self, **kw):
        self.src = "/img/usr/local/cuda-12.3"
        self.dest = "/opt/cuda/cuda-12.3"
        self.link = LINK
        self.src_kind = "dir"
        self.dest_kind = "missing"
        self.src_target = None
        self.partial = False
        self.marker = None
        self.same_inode = False
        self.overlap = False
        self.same_fs = False
        self.dest_parent_exists = True
        self.__dict__.update(kw)


MARK_COPYING = {"src": "/img/usr/local/cuda-12.3", "phase": "copying"}
MARK_VERIFIED = {"src": "/img/usr/local/cuda-12.3", "phase": "verified"}
COPY = ["mark", "copy", "verify", "mark_verified", "promote", "remove_source"]

PLAN_CASES = [
    # (id, state, kwargs, situation, steps)
    ("fresh same fs", dict(same_fs=True), {}, "move", ["mark", "rename", "link", "clear_marker"]),
    ("killed before the rename", dict(same_fs=True, marker=MARK_COPYING), {}, "move", ["mark", "rename", "link", "clear_marker"]),
    ("fresh same fs forced copy", dict(same_fs=True), dict(force_copy=True), "copy", COPY + ["link", "clear_marker"]),
    ("fresh cross fs", dict(), {}, "copy", COPY + ["link", "clear_marker"]),
    ("fresh, no parent", dict(dest_parent_exists=False), {}, "copy", ["mkparent"] + COPY + ["link", "clear_marker"]),
    ("fresh without link", dict(link=None), {}, "copy", COPY + ["clear_marker"]),
    ("killed during copy", dict(partial=True, marker=MARK_COPYING), {}, "resume_copy", COPY[1:] + ["link", "clear_marker"]),
    ("killed before promote", dict(partial=True, marker=MARK_VERIFIED), {}, "resume_copy", COPY[1:] + ["link", "clear_marker"]),
    ("killed after promote", dict(dest_kind="dir", marker=MARK_VERIFIED), {}, "resume_remove",
     ["check_rest", "remove_source", "link", "clear_marker"]),
    ("killed before the link", dict(src_kind="missing", dest_kind="dir", marker=MARK_VERIFIED), {}, "finish",
     ["link", "clear_marker"]),
    ("killed before the marker went", dict(src_kind="link", src_target=LINK, dest_kind="dir", marker=MARK_VERIFIED), {},
     "finish", ["clear_marker"]),
    ("done", dict(src_kind="link", src_target=LINK, dest_kind="dir"), {}, "done", []),
    ("done without link", dict(src_kind="missing", dest_kind="dir", link=None), {}, "done", []),
    ("killed after the rename", dict(src_kind="missing", dest_kind="dir", marker=MARK_COPYING), {}, "finish",
     ["link", "clear_marker"]),
    ("another image's copy, never in this one", dict(src_kind="missing", dest_kind="dir"), {}, "not_in_image", []),
    ("bind-mounted /opt", dict(dest_kind="dir", same_inode=True), {}, "in_place", []),
    ("copy of another image", dict(dest_kind="dir"), {}, "duplicate", ["compare", "remove_source", "link"]),
    ("optional and absent", dict(src_kind="missing"), dict(required=False), "absent", []),
]


@pytest.mark.parametrize("state, kwargs, situation, steps", [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_plan(state, kwargs, situation, steps):
    assert plan(FakeState(**state), **kwargs) == (situation, steps)


REFUSE_CASES = [
    ("src is a file", dict(src_kind="other"), "src /img/usr/local/cuda-12.3 exists but is not a directory"),
    ("dest is a file", dict(dest_kind="other"), "dest /opt/cuda/cuda-12.3 exists but is not a directory"),
    ("dest is a symlink", dict(dest_kind="link"), "dest /opt/cuda/cuda-12.3 exists but is not a directory"),
    ("foreign partial", dict(partial=True), "/opt/cuda/cuda-12.3.partial exists but was not written by this module"),
    ("marker of another image", dict(marker={"src": "/other/usr/local/cuda-12.3", "phase": "copying"}),
     "is being relocated from /other/usr/local/cuda-12.3"),
    ("src links elsewhere", dict(src_kind="link", src_target="/somewhere", dest_kind="dir"),
     "src /img/usr/local/cuda-12.3 is a symlink to /somewhere, expected a directory or a symlink to link /opt/cuda/cuda-12.3"),
    ("linked but dest gone", dict(src_kind="link", src_target=LINK), "but dest /opt/cuda/cuda-12.3 does not exist"),
    ("nothing anywhere", dict(src_kind="missing"), "neither src /img/usr/local/cuda-12.3 nor dest /opt/cuda/cuda-12.3 exists"),
    ("source lost mid-copy", dict(src_kind="missing", partial=True, marker=MARK_COPYING), "is gone and only a partial copy"),
    ("partial next to dest", dict(dest_kind="dir", partial=True), "and the partial copy /opt/cuda/cuda-12.3.partial all exist"),
    ("one inside the other", dict(overlap=True), "contain one another"),
]


@pytest.mark.parametrize("state, message", [c[1:] for c in REFUSE_CASES], ids=[c[0] for c in REFUSE_CASES])
def test_plan_refuses(state, message):
    with pytest.raises(RelocateError) as exc:
        plan(FakeState(**state))
    assert message in exc.value.msg


# --------------------------------------------------------------------------- real moves
def test_same_filesystem_is_a_rename(paths):
    src_ino = os.stat(os.path.join(paths["src"], "bin", "ptxas")).st_ino
    result = relocation(paths).run()
    assert result["changed"] and result["situation"] == "move" and result["method"] == "rename"
    assert result["bytes_removed"] == tree_bytes(paths["before"])
    assert result["bytes_copied"] == 0
    assert_moved(paths)
    # a rename keeps the inodes
    assert os.stat(os.path.join(paths["dest"], "bin", "ptxas")).st_ino == src_ino
    again = relocation(paths).run()
    assert not again["changed"] and again["situation"] == "done" and again["bytes_removed"] == 0


def test_copy_path_copies_verifies_and_removes(paths):
    result = relocation(paths, force_copy=True).run()
    assert result["changed"] and result["situation"] == "copy" and result["method"] == "copy"
    assert result["bytes_removed"] == result["bytes_copied"] == tree_bytes(paths["before"])
    assert_moved(paths)
    assert relocation(paths, force_copy=True).run()["changed"] is False


def test_check_mode_reports_and_touches_nothing(paths):
    result = relocation(paths, force_copy=True, check_mode=True).run()
    assert result["changed"] is True
    assert result["bytes_removed"] == tree_bytes(paths["before"])
    assert result["actions"][0] == "create {0}".format(os.path.dirname(paths["dest"]))
    assert result["actions"][1].startswith("write marker ")
    assert any(a.startswith("remove {0} (".format(paths["src"])) for a in result["actions"])
    assert result["diff"]["after"] == {"src": "symlink -> " + LINK, "dest": "directory"}
    assert os.path.isdir(paths["src"]) and not os.path.islink(paths["src"])
    assert not os.path.exists(os.path.dirname(paths["dest"]))
    assert manifest(paths["src"]) == paths["before"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even except Exception handlers)."""


CRASH_STEPS = ["mark", "copy", "verify", "mark_verified", "promote", "remove_source", "link"]


@pytest.mark.parametrize("crash_after, force_copy", [(s, True) for s in CRASH_STEPS] + [(s, False) for s in ("mark", "rename", "link")])
def test_killed_after_any_step_resumes_without_losing_a_file(paths, monkeypatch, crash_after, force_copy):
    real_step = Relocation._step

    def step_then_die(self, step):
        real_step(self, step)
        if step == crash_after:
            raise Killed()

    monkeypatch.setattr(Relocation, "_step", step_then_die)
    with pytest.raises(Killed):
        relocation(paths, force_copy=force_copy).run()
    monkeypatch.setattr(Relocation, "_step", real_step)
    result = relocation(paths, force_copy=force_copy).run()
    assert result["changed"] is True
    assert_moved(paths)
    assert relocation(paths, force_copy=force_copy).run()["changed"] is False


def test_killed_in_the_middle_of_the_copy(paths):
    copied = []

    def die_on_third_file(rel):
        copied.append(rel)
        if len(copied) == 3:
            raise Killed()

    with pytest.raises(Killed):
        relocation(paths, force_copy=True, on_file=die_on_third_file).run()
    part = partial_path(paths["dest"])
    assert os.path.isdir(part) and json.load(open(marker_path(paths["dest"])))["phase"] == "copying"
    assert manifest(paths["src"]) == paths["before"]
    # a file cut short by the kill: right size and mtime, wrong content (the worst case)
    victim = os.path.join(part, copied[0])
    st = os.stat(victim)
    with open(victim, "r+b") as handle:
        handle.write(b"\0" * min(st.st_size, 16))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    # and a stray file that the source does not have
    with open(os.path.join(part, "stray"), "w") as handle:
        handle.write("x")
    result = relocation(paths, force_copy=True).run()
    assert result["situation"] == "resume_copy"
    # files already complete were kept (the victim was copied again after the verification)
    assert result["bytes_copied"] < 2 * tree_bytes(paths["before"])
    assert_moved(paths)


def test_killed_in_the_middle_of_the_source_removal(paths, monkeypatch):
    real_rmtree = shutil.rmtree

    def half_rmtree(path, *args, **kwargs):
        real_rmtree(os.path.join(path, "lib64"))
        os.unlink(os.path.join(path, "bin", "nvcc"))
        raise Killed()

    monkeypatch.setattr(cr.shutil, "rmtree", half_rmtree)
    with pytest.raises(Killed):
        relocation(paths, force_copy=True).run()
    monkeypatch.setattr(cr.shutil, "rmtree", real_rmtree)
    result = relocation(paths, force_copy=True).run()
    assert result["situation"] == "resume_remove"
    assert_moved(paths)


def test_resumed_removal_refuses_when_the_source_changed(paths, monkeypatch):
    def die(path, *args, **kwargs):
        raise Killed()

    monkeypatch.setattr(cr.shutil, "rmtree", die)
    with pytest.raises(Killed):
        relocation(paths, force_copy=True).run()
    monkeypatch.undo()
    with open(os.path.join(paths["src"], "bin", "new-tool"), "w") as handle:
        handle.write("installed in the image after the copy\n")
    with pytest.raises(RelocateError) as exc:
        relocation(paths).run()
    assert "the removal of src {0} was interrupted".format(paths["src"]) in exc.value.msg
    assert "missing in {0}: bin/new-tool".format(paths["dest"]) in exc.value.msg
    assert os.path.isfile(os.path.join(paths["src"], "bin", "new-tool"))


def test_identical_copy_from_another_image_only_removes_the_source(paths):
    shutil.copytree(paths["src"], paths["dest"], symlinks=True)
    result = relocation(paths).run()
    assert result["situation"] == "duplicate" and result["method"] == "remove_duplicate"
    assert result["bytes_removed"] == tree_bytes(paths["before"])
    assert_moved(paths)


def test_different_dest_is_refused_and_nothing_is_removed(paths):
    shutil.copytree(paths["src"], paths["dest"], symlinks=True)
    with open(os.path.join(paths["dest"], "version.json"), "w") as handle:
        handle.write('{"cuda": {"version": "12.3.999"}}\n')
    with pytest.raises(RelocateError) as exc:
        relocation(paths).run()
    assert "dest {0} already exists and differs from src {1} (differs: version.json)".format(
        paths["dest"], paths["src"]) in exc.value.msg
    assert manifest(paths["src"]) == paths["before"]


def test_size_verification_catches_a_missing_file(paths):
    shutil.copytree(paths["src"], paths["dest"], symlinks=True)
    os.unlink(os.path.join(paths["dest"], "include", "cuda.h"))
    with pytest.raises(RelocateError) as exc:
        relocation(paths, verify="size").run()
    assert "missing in {0}: include/cuda.h".format(paths["dest"]) in exc.value.msg


def test_special_files_are_refused(paths):
    os.mkfifo(os.path.join(paths["src"], "bin", "fifo"))
    with pytest.raises(RelocateError) as exc:
        relocation(paths, force_copy=True).run()
    assert "bin/fifo is neither a file, a folder nor a symlink" in exc.value.msg
    assert os.path.isdir(paths["src"]) and not os.path.islink(paths["src"])


def test_optional_relocation_without_source_does_nothing(tmp_path):
    result = Relocation(str(tmp_path / "img" / "opt" / "nvidia" / "nsight"), str(tmp_path / "nsight"), required=False).run()
    assert result["changed"] is False and result["situation"] == "absent"


@pytest.mark.parametrize("src, dest, message", [
    ("relative/cuda", "/opt/cuda", "must be absolute paths"),
    ("/", "/opt/cuda", "cannot be /"),
])
def test_bad_arguments(src, dest, message):
    with pytest.raises(RelocateError) as exc:
        Relocation(src, dest)
    assert message in exc.value.msg


def test_dest_inside_src_is_refused(paths):
    with pytest.raises(RelocateError) as exc:
        Relocation(paths["src"], os.path.join(paths["src"], "sub", "cuda")).run()
    assert "contain one another" in exc.value.msg


def test_state_reads_the_marker_of_another_tool_as_an_error(paths):
    os.makedirs(os.path.dirname(paths["dest"]))
    with open(marker_path(paths["dest"]), "w") as handle:
        handle.write("not json")
    with pytest.raises(RelocateError) as exc:
        State(paths["src"], paths["dest"], LINK)
    assert "is not valid JSON" in exc.value.msg


# --------------------------------------------------------------------------- real mounts (root only)
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")


def _in_namespace(tmp_path, shell_setup, python_body):
    """Run shell_setup then python_body in a private mount namespace; returns the JSON it prints."""
    script = tmp_path / "body.py"
    script.write_text(textwrap.dedent(python_body))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-ec", shell_setup + "\nexec " + sys.executable + " " + str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@ROOT_ONLY
def test_real_cross_filesystem_move_to_tmpfs(paths):
    tmp = paths["tmp"]
    (tmp / "opt").mkdir()
    out = _in_namespace(tmp, "mount -t tmpfs -o size=64m tmpfs {0}".format(tmp / "opt"), """
        import json, os, sys
        from ansible_collections.hpcllm.webui.plugins.module_utils._cuda_relocate import Relocation
        src, dest = {src!r}, {dest!r}
        first = Relocation(src, dest, link="/opt/cuda/cuda-12.3").run()
        second = Relocation(src, dest, link="/opt/cuda/cuda-12.3").run()
        print(json.dumps(dict(first=first, second=second, dest_dev=os.stat(dest).st_dev, src_dev=os.stat({rootfs!r}).st_dev)))
    """.format(src=paths["src"], dest=paths["dest"], rootfs=os.path.dirname(paths["src"])))
    assert out["dest_dev"] != out["src_dev"]
    assert out["first"]["method"] == "copy" and out["first"]["situation"] == "copy"
    assert out["first"]["bytes_removed"] == tree_bytes(paths["before"])
    assert out["second"]["changed"] is False
    assert os.readlink(paths["src"]) == LINK


@ROOT_ONLY
def test_real_bind_mounted_opt_is_left_in_place(tmp_path):
    master_opt = tmp_path / "opt"
    nsight = master_opt / "nvidia" / "nsight-systems" / "2023.3.1"
    nsight.mkdir(parents=True)
    (nsight / "nsys").write_text("stand-in\n")
    image_opt = tmp_path / "rootfs" / "opt"
    image_opt.mkdir(parents=True)
    out = _in_namespace(tmp_path, "mount --bind {0} {1}".format(master_opt, image_opt), """
        import json
        from ansible_collections.hpcllm.webui.plugins.module_utils._cuda_relocate import Relocation
        print(json.dumps(Relocation({src!r}, {dest!r}).run()))
    """.format(src=str(image_opt / "nvidia" / "nsight-systems" / "2023.3.1"), dest=str(nsight)))
    assert out["changed"] is False and out["situation"] == "in_place" and out["bytes_removed"] == 0
    assert (nsight / "nsys").read_text() == "stand-in\n"


@ROOT_ONLY
def test_real_bind_mount_of_the_same_filesystem_falls_back_to_a_copy(paths):
    tmp = paths["tmp"]
    (tmp / "opt").mkdir()
    (tmp / "opt-real").mkdir()
    out = _in_namespace(tmp, "mount --bind {0} {1}".format(tmp / "opt-real", tmp / "opt"), """
        import json
        from ansible_collections.hpcllm.webui.plugins.module_utils._cuda_relocate import Relocation
        print(json.dumps(Relocation({src!r}, {dest!r}, link="/opt/cuda/cuda-12.3").run()))
    """.format(src=paths["src"], dest=paths["dest"]))
    assert out["situation"] == "move" and out["method"] == "copy"
    assert "rename across mount points refused (EXDEV): copying instead" in out["actions"]
    assert manifest(str(tmp / "opt-real" / "cuda" / "cuda-12.3")) == paths["before"]
    assert os.readlink(paths["src"]) == LINK
    assert not os.path.exists(marker_path(str(tmp / "opt-real" / "cuda" / "cuda-12.3")))


def test_a_refusal_reports_nothing_removed(paths):
    shutil.copytree(paths["src"], paths["dest"], symlinks=True)
    os.unlink(os.path.join(paths["dest"], "bin", "nvcc"))
    runner = relocation(paths)
    with pytest.raises(RelocateError):
        runner.run()
    assert runner.result["bytes_removed"] == 0 and runner.result["actions"] == []
