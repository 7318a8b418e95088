# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One deployment run at a time on a master: a lock file naming the ansible-playbook process.

The owner is the outermost ansible-playbook process above the module (Ansible runs on the
master: the chroot connection needs it). The lock records its pid, its start time as the
kernel counts it (/proc/PID/stat field 22, so a reused pid is not taken for the owner) and
its command line. A lock whose process is gone is stale and taken over.

The file stays in place between runs (giving the lock back empties it): creating and
removing it would change its folder, and Warewulf follows symlinks when it decides whether
an image changed, so a Debian image's /var/run -> /run would make every run rebuild it.
Taking the lock reads, checks and writes under flock(2), so two runs cannot both take it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import json
import os
import time

from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure


class RunLockError(ModuleFailure):
    """A failure, with the lock's holder when another run holds it."""

    def __init__(self, msg, holder=None):
        super(RunLockError, self).__init__(msg, holder=holder)
        self.holder = holder


def _stat_fields(proc, pid):
    """Fields of /proc/PID/stat after the command name (field 3 onwards), or None."""
    try:
        with open(os.path.join(proc, str(pid), 'stat'), 'rb') as handle:
            raw = handle.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return None
    return raw[raw.rindex(')') + 2:].split()


def parent_of(proc, pid):
    fields = _stat_fields(proc, pid)
    return int(fields[1]) if fields else None


def start_ticks(proc, pid):
    fields = _stat_fields(proc, pid)
    return int(fields[19]) if fields else None


def cmdline(proc, pid):
    try:
        with open(os.path.join(proc, str(pid), 'cmdline'), 'rb') as handle:
            return [arg.decode('utf-8', 'replace') for arg in handle.read().split(b'\0') if arg]
    except (IOError, OSError):
        return []


def _is_playbook(argv):
    return any(os.path.basename(arg) == 'ansible-playbook' for arg in argv[:3])


def playbook_process(proc='/proc', start=None):
    """The outermost ansible-playbook process among the ancestors of start (default: this process)."""
    pid = start if start is not None else os.getpid()
    found = None
    while pid and pid > 1:
        if _is_playbook(cmdline(proc, pid)):
            found = pid
        pid = parent_of(proc, pid)
    return found


def _alive(proc, holder):
    return start_ticks(proc, holder.get('pid')) == holder.get('start_ticks')


class RunLock(object):
    """Take (state=present) or give back (state=absent) the lock at path for the run that owns owner_pid."""

    def __init__(self, path, state, owner_pid, proc='/proc', check_mode=False):
        self.path = path
        self.state = state
        self.owner = owner_pid
        self.proc = proc
        self.check_mode = check_mode
        self.warnings = []

    @classmethod
    def from_module(cls, module):
        owner = playbook_process()
        if owner is None:
            raise RunLockError('run_lock: no ansible-playbook process among the ancestors of this module '
                               '(it must run on the master with the local connection)')
        return cls(module.params['path'], module.params['state'], owner, check_mode=module.check_mode)

    @staticmethod
    def _parse(text):
        """The holder recorded in the lock's text: None when empty (nobody holds it), {} when unreadable."""
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            return {}

    def _mine(self):
        return {'pid': self.owner, 'start_ticks': start_ticks(self.proc, self.owner),
                'cmdline': ' '.join(cmdline(self.proc, self.owner)),
                'started': time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime())}

    def _open(self):
        folder = os.path.dirname(self.path)
        if folder and not os.path.isdir(folder):
            os.makedirs(folder, 0o755)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    @staticmethod
    def _read_fd(fd):
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks).decode('utf-8', 'replace')

    @staticmethod
    def _write_fd(fd, text):
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, text.encode('utf-8'))
        os.fsync(fd)

    def run(self):
        if self.check_mode and not os.path.exists(self.path):
            return {'changed': False, 'path': self.path, 'holder': None, 'stale': False}
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW) if self.check_mode else self._open()
        try:
            result = self._run(fd)
        finally:
            os.close(fd)  # also drops the flock
        if result['stale']:
            self.warnings.append('took over the stale lock {0} of pid {1}, which no longer runs'.format(
                result['path'], result['holder'].get('pid')))
        return result

    def _run(self, fd):
        holder = self._parse(self._read_fd(fd))
        ours = holder is not None and holder.get('pid') == self.owner and _alive(self.proc, holder)
        result = {'changed': False, 'path': self.path, 'holder': holder, 'stale': False}
        if self.state == 'absent':
            if ours and not self.check_mode:
                self._write_fd(fd, '')
            return result
        if ours:
            return result
        if holder is not None:
            if holder and _alive(self.proc, holder):
                raise RunLockError(
                    'another run holds {0}: pid {1}, started {2} ({3}); this run stopped before changing anything. '
                    'Wait for it to end, or empty the file if that process is not a deployment run'.format(
                        self.path, holder.get('pid'), holder.get('started', '?'), holder.get('cmdline', '?')), holder)
            result['stale'] = True  # its process is gone (killed, crashed, rebooted)
        if not self.check_mode:
            self._write_fd(fd, json.dumps(self._mine(), sort_keys=True) + '\n')
        return result
