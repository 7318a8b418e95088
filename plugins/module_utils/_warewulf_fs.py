# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private helpers of module_utils.warewulf that look at the file system only.

Mount detection (/proc/self/mountinfo), the ctime rule wwctl uses to skip a build,
and kernels found inside an image's root file system. Nothing here runs a command.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

MOUNTINFO = '/proc/self/mountinfo'

_OCTAL_ESCAPE = re.compile(r'\\([0-7]{3})')
_NATURAL = re.compile(r'(\d+)')


def unescape_mount_path(field):
    """Undo the octal escapes the kernel writes in mountinfo (\\040 space, \\011 tab, \\012, \\134)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text):
    """Mount points (unescaped) listed in the text of /proc/self/mountinfo, in file order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(' ')
        if len(fields) < 5:
            continue
        mounts.append(unescape_mount_path(fields[4]))
    return mounts


def mounts_below(root, mount_points):
    """The mount points strictly below root (root itself being a mount point is harmless)."""
    root = os.path.normpath(root).rstrip('/') or '/'
    prefix = root + '/' if root != '/' else '/'
    found = []
    for mount_point in mount_points:
        mount_point = os.path.normpath(mount_point)
        if mount_point != root and mount_point.startswith(prefix) and mount_point not in found:
            found.append(mount_point)
    return found


def read_mountinfo(path=MOUNTINFO):
    with open(path, 'rb') as handle:
        return handle.read().decode('utf-8', 'surrogateescape')


def _ctimes(root):
    """ctime (ns) of root and of every entry below it, symlinks not followed.

    Warewulf's DirModTime takes os.Stat, which follows symlinks (to wherever they point on
    the master, /proc/self/fd included, whose ctime is always new) and skips what it cannot
    stat; following them here would predict a build on every run for a debootstrapped image
    (its dev/fd -> /proc/self/fd). Until the images carry no such links, the prediction and
    the bench's wwctl double take lstat (see the collection's notes)."""
    yield os.lstat(root).st_ctime_ns
    for current, dirs, files in os.walk(root):
        for entry in dirs + files:
            try:
                yield os.lstat(os.path.join(current, entry)).st_ctime_ns
            except OSError:
                continue


def newest_ctime_ns(root):
    """The newest ctime (ns) anywhere under root, root included."""
    return max(_ctimes(root))


def image_is_current(rootfs, image_file):
    """wwctl's skip rule: the built image file is newer (ctime) than everything under the rootfs.

    Stops walking at the first entry that is not older than the image.
    """
    try:
        image_ctime = os.stat(image_file).st_ctime_ns
    except OSError:
        return False
    for ctime in _ctimes(rootfs):
        if ctime >= image_ctime:
            return False
    return True


def natural_key(text):
    """Sort key that orders 5.14.0-362 before 5.14.0-1100."""
    return [int(part) if part.isdigit() else part for part in _NATURAL.split(text)]


def find_kernels(rootfs):
    """Kernel versions found in an image: folders of lib/modules (or usr/lib/modules) that come
    with a kernel image (lib/modules/V/vmlinuz*, boot/vmlinuz-V). Sorted oldest to newest.
    """
    versions = set()
    for modules in ('lib/modules', 'usr/lib/modules'):
        base = os.path.join(rootfs, modules)
        if not os.path.isdir(base):
            continue
        for version in os.listdir(base):
            folder = os.path.join(base, version)
            if not os.path.isdir(folder):
                continue
            candidates = [os.path.join(rootfs, 'boot', 'vmlinuz-' + version)]
            candidates += [os.path.join(folder, entry) for entry in os.listdir(folder) if entry.startswith('vmlinuz')]
            if any(os.path.isfile(candidate) for candidate in candidates):
                versions.add(version)
    return sorted(versions, key=natural_key)
