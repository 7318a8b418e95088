# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who may write an install root that root later runs code from.

Every run, root executes code from the install root (the built interpreter, the venv's
python and pip, git in the checkout). So before anything runs in it, the tree is checked:
an entry that belongs to root and that neither group nor others can write is trusted by
itself; any other entry (another owner, a group- or world-writable mode) is accepted only
when it is exactly as the last `owned` pass left it (same inode, change time, owner and
mode), from a record that only root can write (RECORD_DIR, root 0700). A file planted or
changed since by another account has a new change time or is missing from the record:
the tree is refused, naming it. The folders above the root must be root's and not
writable by others (sticky folders such as /tmp excepted), or the whole root could be
swapped.

`owned` gives the tree its owner and group, takes write access away from group and others,
makes it readable (by everyone, or by the group only), and records what is not root's.
Nothing follows a link: links are looked at (and re-owned), never their targets.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import json
import os
import pwd
import stat
import tempfile

from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure

RECORD_DIR = '.hpcllm'
RECORD_NAME = 'tree.json'
RECORD_VERSION = 1
MAX_NAMED = 10


class InstallTreeError(ModuleFailure):
    """A failure, with the entries that caused it (offenders) and no action taken."""

    def __init__(self, msg, offenders=None, **result):
        result.setdefault('offenders', offenders or [])
        result.setdefault('actions', [])
        super(InstallTreeError, self).__init__(msg, **result)
        self.offenders = offenders or []


def _ctime_ns(st):
    return getattr(st, 'st_ctime_ns', int(st.st_ctime * 1e9))


def _fingerprint(st):
    return [st.st_ino, _ctime_ns(st), st.st_uid, stat.S_IMODE(st.st_mode)]


def _trusted(st):
    """Root's, and nobody else may write it (group write counts only for a group other than root's)."""
    if st.st_uid != 0:
        return False
    if stat.S_ISLNK(st.st_mode):
        return True
    return not (st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and st.st_gid != 0))


def walk(root):
    """(relative path, lstat) of the root and everything below it, links never followed;
    the record folder is left out. '.' is the root itself."""
    yield '.', os.lstat(root)
    for current, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(current, root)
        if rel_dir == '.':
            dirs[:] = [d for d in dirs if d != RECORD_DIR]
            files = [f for f in files if f != RECORD_DIR]
        dirs.sort()
        for name in sorted(dirs + files):
            rel = name if rel_dir == '.' else os.path.join(rel_dir, name)
            try:
                yield rel, os.lstat(os.path.join(current, name))
            except OSError:
                continue  # gone meanwhile


def _who(uid, names):
    if uid not in names:
        try:
            import pwd
            names[uid] = pwd.getpwuid(uid).pw_name
        except (ImportError, KeyError):
            names[uid] = str(uid)
    return names[uid]


def _describe(root, rel, st, why, names):
    path = root if rel == '.' else os.path.join(root, rel)
    return '{0} (owner {1}, mode {2:04o}: {3})'.format(path, _who(st.st_uid, names), stat.S_IMODE(st.st_mode), why)


def ancestors_offending(root):
    """Folders above root that another account could use to swap it: not root's, or writable by
    group or others without the sticky bit."""
    found = []
    names = {}
    path = os.path.dirname(os.path.abspath(root))
    while True:
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None:
            writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX
            if st.st_uid != 0 or writable:
                found.append('{0} (owner {1}, mode {2:04o}: a folder above the install root that another account '
                             'can change)'.format(path, _who(st.st_uid, names), stat.S_IMODE(st.st_mode)))
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return found


class InstallTree(object):
    """Check an install root before root runs anything in it, or settle its ownership."""

    def __init__(self, root, owner_uid=0, group_gid=0, world_readable=True, check_mode=False):
        self.root = os.path.abspath(root).rstrip('/') or '/'
        self.owner_uid = owner_uid
        self.group_gid = group_gid
        self.world_readable = world_readable
        self.check_mode = check_mode
        self.record_dir = os.path.join(self.root, RECORD_DIR)
        self.record_path = os.path.join(self.record_dir, RECORD_NAME)
        self._names = {}
        self.state = 'checked'

    @classmethod
    def from_module(cls, module):
        params = module.params
        if params['path'].rstrip('/') == '':
            raise InstallTreeError("path: the install root may not be '/'", root=params['path'])
        try:
            uid = pwd.getpwnam(params['owner']).pw_uid
        except KeyError:
            raise InstallTreeError("owner: no user '{0}' on this host".format(params['owner']), root=params['path'])
        try:
            gid = grp.getgrnam(params['group']).gr_gid
        except KeyError:
            raise InstallTreeError("group: no group '{0}' on this host".format(params['group']), root=params['path'])
        tree = cls(params['path'], uid, gid, params['world_readable'], module.check_mode)
        tree.state = params['state']
        return tree

    def run(self):
        """own() for state=owned, else check(); a failure names the root."""
        try:
            return self.own() if self.state == 'owned' else self.check()
        except InstallTreeError as exc:
            exc.result['root'] = self.root
            raise

    # --- the record ---------------------------------------------------------------------
    def _record_dir_state(self):
        """None when the record folder is usable (root's, a real folder, 0700 or narrower), else why not."""
        try:
            st = os.lstat(self.record_dir)
        except OSError:
            return 'missing'
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
            return _describe(self.root, RECORD_DIR, st, 'not a folder of root with mode 0700', self._names)
        return None

    def read_record(self):
        """The recorded fingerprints {rel: [ino, ctime_ns, uid, mode]}; {} when there is no record root
        wrote (a record file that is a link, not root's or writable by others is not one)."""
        if self._record_dir_state() is not None:
            return {}
        try:
            st = os.lstat(self.record_path)
        except OSError:
            return {}
        if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return {}
        try:
            with open(self.record_path) as handle:
                data = json.load(handle)
        except (IOError, OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get('version') != RECORD_VERSION or data.get('root') != self.root:
            return {}
        entries = data.get('entries')
        return entries if isinstance(entries, dict) else {}

    def _write_record(self, entries):
        if not entries:
            if os.path.lexists(self.record_path):
                os.unlink(self.record_path)
            return
        fd, tmp = tempfile.mkstemp(prefix='.tree.', dir=self.record_dir)
        try:
            with os.fdopen(fd, 'w') as handle:
                json.dump({'version': RECORD_VERSION, 'root': self.root, 'entries': entries}, handle,
                          sort_keys=True, separators=(',', ':'))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.record_path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    # --- check ----------------------------------------------------------------------------
    def offenders(self, foreign_only=False):
        """Descriptions of what another account could have changed: folders above the root, the
        record folder, and every entry neither trusted by itself nor as recorded (foreign_only: only
        entries of another owner, whatever root's own entries' modes)."""
        found = ancestors_offending(self.root)
        if not os.path.lexists(self.root):
            return found
        if os.path.islink(self.root) or not os.path.isdir(self.root):
            found.append('{0} (not a folder)'.format(self.root))
            return found
        dir_state = self._record_dir_state()
        if dir_state not in (None, 'missing'):
            found.append(dir_state)
        record = self.read_record()
        for rel, st in walk(self.root):
            if _trusted(st) or (foreign_only and st.st_uid == 0):
                continue
            seen = record.get(rel)
            if seen is None:
                why = 'not in the record of the last run' if record else 'no record of the last run'
            elif seen != _fingerprint(st):
                why = 'changed since the last run'
            else:
                continue
            found.append(_describe(self.root, rel, st, why, self._names))
        return found

    def check(self, foreign_only=False):
        found = self.offenders(foreign_only)
        if found:
            shown = found[:MAX_NAMED]
            more = len(found) - len(shown)
            raise InstallTreeError(
                'install root {0}: root would run code from a tree another account can change; nothing was run in it. '
                'Not root\'s or writable by others, and not as the last run left them: {1}{2}. '
                'Inspect them; then remove what you did not put there and give the tree back to root '
                '(chown -R -h root:root {0}; chmod -R go-w {0}), or remove the tree to build it again'.format(
                    self.root, '; '.join(shown), ' (and {0} more)'.format(more) if more else ''), found)
        return {'changed': False, 'root': self.root, 'offenders': [], 'actions': []}

    # --- owned ----------------------------------------------------------------------------
    def _wanted_mode(self, st):
        mode = stat.S_IMODE(st.st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH)
        executable = stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR
        mode |= stat.S_IRUSR | stat.S_IRGRP | (stat.S_IXGRP if executable else 0)
        if self.world_readable:
            mode |= stat.S_IROTH | (stat.S_IXOTH if executable else 0)
        else:
            mode &= ~(stat.S_IROTH | stat.S_IWOTH | stat.S_IXOTH)
        return mode

    def own(self):
        """Owner, group and modes of every entry; the record of what is not root's. Refuses a tree
        with entries of another account that are not as recorded (what another account changed is
        never adopted); root's own entries with wide modes were made by this run and are narrowed."""
        result = {'changed': False, 'root': self.root, 'offenders': [], 'actions': []}
        if not os.path.lexists(self.root):
            return result
        self.check(foreign_only=True)
        if not self.check_mode:
            self._make_record_dir()
        owners = modes = 0
        for rel, st in walk(self.root):
            path = os.path.join(self.root, rel) if rel != '.' else self.root
            if (st.st_uid, st.st_gid) != (self.owner_uid, self.group_gid):
                owners += 1
                if not self.check_mode:
                    os.lchown(path, self.owner_uid, self.group_gid)
            if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) != self._wanted_mode(st):
                modes += 1
                if not self.check_mode:
                    os.chmod(path, self._wanted_mode(st))
        if owners:
            result['actions'].append('give {0} entries of {1} to uid {2}, gid {3}'.format(
                owners, self.root, self.owner_uid, self.group_gid))
        if modes:
            result['actions'].append('set the modes of {0} entries of {1} ({2})'.format(
                modes, self.root, 'no write for group and others, readable by all' if self.world_readable
                else 'no write for group, nothing for others, readable by the group'))
        result['changed'] = bool(owners or modes)
        if not self.check_mode:
            # the record follows every pass (not a change by itself: it only remembers the tree)
            self._write_record(dict((rel, _fingerprint(st)) for rel, st in walk(self.root) if not _trusted(st)))
        return result

    def _make_record_dir(self):
        state = self._record_dir_state()
        if state == 'missing':
            os.mkdir(self.record_dir, 0o700)
            os.chmod(self.record_dir, 0o700)
        elif state is not None:
            raise InstallTreeError('install root {0}: {1}; remove it (nothing was changed)'.format(self.root, state))
