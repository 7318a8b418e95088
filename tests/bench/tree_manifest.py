"""Print a manifest of a folder tree: one JSON object per entry, sorted by path.

    tree_manifest.py ROOT [--exclude REL ...]

Each entry: path (relative), type (dir, file, link), mode (octal), owner uid/gid, and for
files size and sha256, for links the target. Two trees are the same when their manifests
are; the site scenario compares an install root rebuilt from an offline bundle with the
one the bundle was exported from. Excluded paths (and everything under them) are left out.
"""
import argparse
import hashlib
import json
import os
import stat
import sys


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def entries(root, excluded):
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in excluded)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel in excluded:
                continue
            info = os.lstat(path)
            entry = {'path': rel, 'mode': '%04o' % stat.S_IMODE(info.st_mode), 'uid': info.st_uid, 'gid': info.st_gid}
            if stat.S_ISLNK(info.st_mode):
                entry.update(type='link', target=os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entry.update(type='dir')
            elif stat.S_ISREG(info.st_mode):
                entry.update(type='file', size=info.st_size, sha256=sha256(path))
            else:
                entry.update(type='other')
            yield entry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root')
    parser.add_argument('--exclude', action='append', default=[], help='a path relative to ROOT to leave out')
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        sys.stderr.write('%s is not a folder\n' % args.root)
        return 2
    excluded = set(os.path.normpath(e) for e in args.exclude)
    for entry in sorted(entries(args.root, excluded), key=lambda e: e['path']):
        sys.stdout.write(json.dumps(entry, sort_keys=True) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
