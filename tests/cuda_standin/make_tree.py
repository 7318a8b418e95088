# Test stand-in: generates a fake CUDA toolkit / Nsight tree (no NVIDIA file); never deploy it.
"""Lay out a stand-in tree shaped like NVIDIA's (bin/, lib64/ with .so symlink chains, include/,
a read-only folder, empty files and folders, many small files, a few large ones) and write a
manifest of it, to check after a move that every file arrived intact.

Deterministic for a given --seed: same names, contents, modes and mtimes, so two images made
with the same seed hold identical trees (one toolkit version shared by several images).

The manifest lists one entry per line, sorted: `f <mode> <size> <sha256> <path>`,
`l <target> <path>` (symlink) or `d <mode> <path>`; paths relative to the tree.

    python3 make_tree.py --root DIR [--kind cuda|nsight] [--seed N] [--small N] [--large N]
                         [--large-mb N] [--manifest FILE]
    python3 make_tree.py --manifest-of DIR      # print the manifest of any tree
"""

import argparse
import hashlib
import os
import random
import stat
import sys

MTIME_NS = 1_700_000_000_000_000_000


def write(path, data, mode, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    os.utime(path, ns=(MTIME_NS, MTIME_NS + seed))


def payload(rng, size):
    return rng.randbytes(size)


def make_cuda(root, rng, seed, small, large, large_mb):
    write(os.path.join(root, "bin", "nvcc"), b"#!/bin/sh\necho 'nvcc: test stand-in'\n", 0o755, seed)
    write(os.path.join(root, "bin", "ptxas"), payload(rng, 40000), 0o755, seed)
    write(os.path.join(root, "version.json"), b'{"cuda": {"name": "stand-in", "version": "%d"}}\n' % seed, 0o644, seed)
    write(os.path.join(root, "include", "cuda.h"), b"/* test stand-in */\n#define CUDA_VERSION 12030\n", 0o644, seed)
    # many small headers first in sorted order ("a_..."): the copy spends a while on them
    for i in range(small):
        write(os.path.join(root, "a_targets", "x86_64-linux", "include", "h%04d.h" % i),
              payload(rng, rng.randint(0, 3000)), 0o644, seed)
    # large libraries after them, with the usual symlink chain
    for i in range(large):
        name = "libstandin%02d.so.12.3.%d" % (i, seed)
        write(os.path.join(root, "lib64", name), payload(rng, large_mb * 1024 * 1024), 0o755, seed)
        os.symlink(name, os.path.join(root, "lib64", "libstandin%02d.so.12" % i))
        os.symlink("libstandin%02d.so.12" % i, os.path.join(root, "lib64", "libstandin%02d.so" % i))
    os.symlink("lib64", os.path.join(root, "lib"))
    write(os.path.join(root, "nvvm", "libdevice", "libdevice.10.bc"), payload(rng, 5000), 0o444, seed)
    write(os.path.join(root, "extras", "empty"), b"", 0o600, seed)
    os.makedirs(os.path.join(root, "extras", "empty-folder"), exist_ok=True)
    os.chmod(os.path.join(root, "nvvm", "libdevice"), 0o555)


def make_nsight(root, rng, seed):
    write(os.path.join(root, "bin", "nsys"), b"#!/bin/sh\necho 'nsys: test stand-in'\n", 0o755, seed)
    write(os.path.join(root, "target-linux-x64", "libToolsInjection64.so"), payload(rng, 200000), 0o755, seed)
    os.symlink("bin/nsys", os.path.join(root, "nsys"))


def manifest(root):
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            mode = "%04o" % stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                lines.append("l %s %s" % (os.readlink(path), rel))
            elif stat.S_ISDIR(st.st_mode):
                lines.append("d %s %s" % (mode, rel))
            else:
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
                lines.append("f %s %d %s %s" % (mode, st.st_size, digest.hexdigest(), rel))
    return "".join(line + "\n" for line in sorted(lines, key=lambda x: x.rsplit(" ", 1)[1]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root")
    parser.add_argument("--kind", choices=["cuda", "nsight"], default="cuda")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2)
    parser.add_argument("--large-mb", type=int, default=4)
    parser.add_argument("--manifest")
    parser.add_argument("--manifest-of")
    args = parser.parse_args(argv)
    if args.manifest_of:
        sys.stdout.write(manifest(args.manifest_of))
        return 0
    if os.path.lexists(args.root):
        parser.error("%s exists already" % args.root)
    rng = random.Random(args.seed)
    if args.kind == "cuda":
        make_cuda(args.root, rng, args.seed, args.small, args.large, args.large_mb)
    else:
        make_nsight(args.root, rng, args.seed)
    if args.manifest:
        os.makedirs(os.path.dirname(os.path.abspath(args.manifest)), exist_ok=True)
        with open(args.manifest, "w") as handle:
            handle.write(manifest(args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
