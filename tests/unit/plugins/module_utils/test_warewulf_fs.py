"""Table-driven tests of module_utils._warewulf_fs: mountinfo, the ctime rule, kernels in an image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils import _warewulf_fs
from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf_fs import (
    find_kernels,
    image_is_current,
    mounts_below,
    natural_key,
    newer_than_image,
    newest_ctime_ns,
    parse_mountinfo,
    unescape_mount_path,
    volatile_links,
)

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
36 22 0:5 / /var/lib/warewulf/chroots/r8/rootfs/proc rw,nosuid shared:2 - proc proc rw
37 22 0:6 / /var/lib/warewulf/chroots/r8/rootfs/dev rw shared:3 - devtmpfs udev rw
38 22 8:1 /opt /var/lib/warewulf/chroots/r8/rootfs/opt rw shared:1 - ext4 /dev/sda1 rw
39 22 8:1 /srv /var/lib/warewulf/chroots/r8/rootfs/srv/ai\\040apps rw - ext4 /dev/sda1 rw
40 22 8:1 /x /var/lib/warewulf/chroots/r8/rootfs-old/opt rw - ext4 /dev/sda1 rw
41 22 8:1 /y /var/lib/warewulf/chroots/r8/rootfs rw - ext4 /dev/sda1 rw
"""


@pytest.mark.parametrize(
    "field, path",
    [("/a\\040b", "/a b"), ("/tab\\011x", "/tab\tx"), ("/nl\\012", "/nl\n"), ("/back\\134slash", "/back\\slash"), ("/plain", "/plain")],
)
def test_unescape_mount_path(field, path):
    assert unescape_mount_path(field) == path


def test_parse_mountinfo():
    mounts = parse_mountinfo(MOUNTINFO + "garbage\n")
    assert mounts[0] == "/" and "/var/lib/warewulf/chroots/r8/rootfs/srv/ai apps" in mounts
    assert len(mounts) == 7


BELOW_R8 = [
    "/var/lib/warewulf/chroots/r8/rootfs/proc",
    "/var/lib/warewulf/chroots/r8/rootfs/dev",
    "/var/lib/warewulf/chroots/r8/rootfs/opt",
    "/var/lib/warewulf/chroots/r8/rootfs/srv/ai apps",
]


@pytest.mark.parametrize(
    "root, expected",
    [
        ("/var/lib/warewulf/chroots/r8/rootfs", BELOW_R8),  # the rootfs itself being a mount point is fine
        ("/var/lib/warewulf/chroots/r8/rootfs/", BELOW_R8),
        ("/var/lib/warewulf/chroots/r8/rootfs-old", ["/var/lib/warewulf/chroots/r8/rootfs-old/opt"]),  # no prefix confusion
        ("/var/lib/warewulf/chroots/other/rootfs", []),
    ],
)
def test_mounts_below(root, expected):
    assert mounts_below(root, parse_mountinfo(MOUNTINFO)) == expected


def _tree(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "motd").write_text("hi\n")
    return rootfs


def _image_after(rootfs, tmp_path):
    time.sleep(0.02)  # ctime ticks are coarse (jiffies)
    image = tmp_path / "r8.img"
    image.write_text("image\n")
    return image


@pytest.mark.parametrize(
    "change, current",
    [
        (None, True),
        (lambda root: (root / "etc" / "motd").write_text("changed\n"), False),
        (lambda root: os.chmod(root / "etc" / "motd", 0o600), False),  # ctime, not mtime
        (lambda root: (root / "etc" / "new").write_text(""), False),
        (lambda root: os.utime(root / "etc" / "motd", (0, 0)), False),  # an old mtime still changes the ctime
        (lambda root: os.symlink("/nonexistent", root / "dangling"), False),
    ],
    ids=["untouched", "write", "chmod", "new-file", "utime-in-the-past", "dangling-symlink"],
)
def test_image_is_current(tmp_path, change, current):
    rootfs = _tree(tmp_path)
    image = _image_after(rootfs, tmp_path)
    if change:
        time.sleep(0.02)
        change(rootfs)
    assert image_is_current(str(rootfs), str(image)) is current


def test_image_is_current_without_image(tmp_path):
    assert image_is_current(str(_tree(tmp_path)), str(tmp_path / "missing.img")) is False


def test_partial_image_after_failure_looks_current(tmp_path):
    """Why force exists: a failed build leaves a newer partial image that makes wwctl skip."""
    rootfs = _tree(tmp_path)
    partial = _image_after(rootfs, tmp_path)
    assert image_is_current(str(rootfs), str(partial)) is True


def test_links_are_followed_as_warewulf_follows_them(tmp_path):
    """DirModTime stat()s every entry with its links followed: a link made before the build to a
    file outside the image makes the image stale once that file changes; the entry is named with
    its target."""
    outside = tmp_path / "master-file"
    outside.write_text("v1\n")
    rootfs = _tree(tmp_path)
    os.symlink(str(outside), str(rootfs / "etc" / "linked"))
    os.symlink("/nonexistent", str(rootfs / "etc" / "dangling"))  # skipped, as Warewulf skips it
    image = _image_after(rootfs, tmp_path)
    assert newer_than_image(str(rootfs), str(image)) is None and image_is_current(str(rootfs), str(image))
    time.sleep(0.02)
    outside.write_text("v2\n")  # nothing inside the image changed
    assert image_is_current(str(rootfs), str(image)) is False
    assert newer_than_image(str(rootfs), str(image)) == ["etc/linked -> {0}".format(outside)]


def test_newer_than_image_without_image_and_limit(tmp_path):
    rootfs = _tree(tmp_path)
    assert newer_than_image(str(rootfs), str(tmp_path / "missing.img")) == []
    image = _image_after(rootfs, tmp_path)
    time.sleep(0.02)
    for index in range(8):
        (rootfs / "etc" / "new{0}".format(index)).write_text("")
    assert len(newer_than_image(str(rootfs), str(image))) == 5
    newer = newer_than_image(str(rootfs), str(image), limit=2)
    assert len(newer) == 2 and newer[0] == "etc" and newer[1].startswith("etc/new")


def test_links_into_proc_are_always_newer_and_named(tmp_path):
    """A debootstrapped image's dev/fd -> /proc/self/fd: its target is newer than any build."""
    rootfs = _tree(tmp_path)
    (rootfs / "dev").mkdir()
    os.symlink("/proc/self/fd", str(rootfs / "dev" / "fd"))
    os.symlink("/proc/self/fd/0", str(rootfs / "dev" / "stdin"))
    os.symlink("/sys/class", str(rootfs / "dev" / "class"))
    os.symlink("../etc/motd", str(rootfs / "dev" / "inside"))  # resolves inside the image: not volatile
    (rootfs / "run").mkdir()
    os.symlink("/dev/shm", str(rootfs / "run" / "shm"))  # Debian's: the master's /dev/shm churns
    os.symlink("/run/lock", str(rootfs / "run" / "lock-link"))  # the master's /run: not always new
    image = _image_after(rootfs, tmp_path)
    time.sleep(0.02)
    # /proc/self is the process that looks, as wwctl's own process is: a new one, as each run is
    # (a /proc inode takes the time of its first lookup)
    child = subprocess.run(
        [sys.executable, "-c", "import importlib.util, json, sys; spec = importlib.util.spec_from_file_location('fs', sys.argv[1]); "
         "fs = importlib.util.module_from_spec(spec); spec.loader.exec_module(fs); print(json.dumps(fs.newer_than_image(sys.argv[2], sys.argv[3])))",
         _warewulf_fs.__file__, str(rootfs), str(image)],
        check=True, capture_output=True, text=True)
    assert "dev/fd -> /proc/self/fd" in json.loads(child.stdout)
    assert volatile_links(str(rootfs)) == ["dev/class -> /sys/class", "dev/fd -> /proc/self/fd", "dev/stdin -> /proc/self/fd/0",
                                           "run/shm -> /dev/shm"]
    assert volatile_links(str(_tree(tmp_path / "plain"))) == []


def test_newest_ctime_ns(tmp_path):
    rootfs = _tree(tmp_path)
    assert newest_ctime_ns(str(rootfs)) == max(os.lstat(p).st_ctime_ns for p in [rootfs, rootfs / "etc", rootfs / "etc" / "motd"])


@pytest.mark.parametrize(
    "layout, kernels",
    [
        ({"lib/modules/6.1.0-9-amd64/vmlinuz": "", "lib/modules/6.1.0-10-amd64/vmlinuz": ""}, ["6.1.0-9-amd64", "6.1.0-10-amd64"]),
        ({"lib/modules/4.18.0-477.el8.x86_64/modules.dep": "", "boot/vmlinuz-4.18.0-477.el8.x86_64": ""}, ["4.18.0-477.el8.x86_64"]),
        ({"lib/modules/5.14.0-1/modules.dep": ""}, []),  # modules without a kernel image
        ({"usr/lib/modules/6.5.0/vmlinuz": ""}, ["6.5.0"]),
        ({"etc/hostname": ""}, []),
    ],
    ids=["lib-modules-vmlinuz", "boot-vmlinuz", "modules-only", "usr-lib-modules", "no-kernel"],
)
def test_find_kernels(tmp_path, layout, kernels):
    for relative, content in layout.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    assert find_kernels(str(tmp_path)) == kernels


def test_natural_key_orders_releases():
    assert sorted(["5.14.0-1100", "5.14.0-362", "5.14.0-70"], key=natural_key) == ["5.14.0-70", "5.14.0-362", "5.14.0-1100"]
