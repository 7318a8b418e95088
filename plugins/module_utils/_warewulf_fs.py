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


# File systems of the master whose entries are new all the time: /proc and /sys inodes carry
# the time they were first looked at (a debootstrapped image's dev/fd -> /proc/self/fd),
# /dev holds /dev/shm, where every Python process with a multiprocessing lock (Ansible's
# workers) makes and removes files (Debian's run/shm -> /dev/shm). A link into them is
# newer than any build.
VOLATILE_TARGETS = ('/proc', '/sys', '/dev')


def _entries(root):
    """(path, ctime ns) of root and of every entry below it, as Warewulf's DirModTime sees
    them: the walk does not descend into linked folders, each entry is stat()ed with its
    links followed (to wherever they point on the master), and what cannot be stat()ed
    (a dangling link) is skipped."""
    yield root, os.stat(root).st_ctime_ns
    for current, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = os.path.join(current, entry)
            try:
                yield path, os.stat(path).st_ctime_ns
            except OSError:
                continue


def newest_ctime_ns(root):
    """The newest ctime (ns) anywhere under root, root included, links followed."""
    return max(ctime for dummy, ctime in _entries(root))


def newer_than_image(rootfs, image_file, limit=5):
    """wwctl's skip rule: the built image file must be newer (ctime) than everything under
    the rootfs, links followed as Warewulf's DirModTime follows them.

    Returns None when the image is current, else up to ``limit`` entries (relative to the
    rootfs) that are not older than the image; a link is named with its target
    (``dev/fd -> /proc/self/fd``). With no image file, the list is empty.
    """
    try:
        image_ctime = os.stat(image_file).st_ctime_ns
    except OSError:
        return []
    found = []
    for path, ctime in _entries(rootfs):
        if ctime >= image_ctime:
            name = os.path.relpath(path, rootfs)
            if os.path.islink(path):
                name = '{0} -> {1}'.format(name, os.readlink(path))
            found.append(name)
            if len(found) >= limit:
                break
    return found if found else None


def image_is_current(rootfs, image_file):
    """True when wwctl would print "Skipping (... is current)" for this rootfs and image file."""
    return newer_than_image(rootfs, image_file, limit=1) is None


def volatile_links(rootfs):
    """Links in the rootfs that resolve into the master's /proc, /sys or /dev (VOLATILE_TARGETS),
    relative to the rootfs, each with its target. Warewulf follows them when it judges
    whether an image is current, so an image holding one is rebuilt by every build."""
    found = []
    for current, dirs, files in os.walk(rootfs):
        for entry in dirs + files:
            path = os.path.join(current, entry)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            # the first hop, as the master resolves it (a relative link stays in the image, where
            # a further link is found on its own)
            resolved = os.path.normpath(os.path.join(current, target))
            if any(resolved == top or resolved.startswith(top + '/') for top in VOLATILE_TARGETS):
                found.append('{0} -> {1}'.format(os.path.relpath(path, rootfs), target))
    return sorted(found)


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
