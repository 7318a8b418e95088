# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One deployment run at a time on a master: a lock file naming the ansible-playbook process.

The owner is the outermost ansible-playbook process above the module (Ansible runs on the
master: the chroot connection needs it). The lock records its pid, its start time as the
kernel counts it (/proc/PID/stat field 22, so a reused pid is not taken for the owner) and
its command line. A lock whose process is gone is stale and taken over.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time


class RunLockError(Exception):
    def __init__(self, msg, holder=None):
        super(RunLockError, self).__init__(msg)
        self.msg = msg
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

    def _read(self):
        try:
            with open(self.path) as handle:
                return json.load(handle)
        except (IOError, OSError):
            return None
        except ValueError:
            return {}

    def _mine(self):
        return {'pid': self.owner, 'start_ticks': start_ticks(self.proc, self.owner),
                'cmdline': ' '.join(cmdline(self.proc, self.owner)),
                'started': time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime())}

    def _write_new(self, record):
        folder = os.path.dirname(self.path)
        if folder and not os.path.isdir(folder):
            os.makedirs(folder, 0o755)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, 'w') as handle:
            json.dump(record, handle, sort_keys=True)
            handle.write('\n')

    def run(self):
        holder = self._read()
        ours = holder is not None and holder.get('pid') == self.owner and _alive(self.proc, holder)
        result = {'changed': False, 'path': self.path, 'holder': holder, 'stale': False}
        if self.state == 'absent':
            if ours and not self.check_mode:
                os.remove(self.path)
            return result
        if ours:
            return result
        if holder is not None:
            if holder and _alive(self.proc, holder):
                raise RunLockError(
                    'another run holds {0}: pid {1}, started {2} ({3}); this run stopped before changing anything. '
                    'Wait for it to end, or remove the file if that process is not a deployment run'.format(
                        self.path, holder.get('pid'), holder.get('started', '?'), holder.get('cmdline', '?')), holder)
            result['stale'] = True  # its process is gone (killed, crashed, rebooted)
            if not self.check_mode:
                os.remove(self.path)
        if not self.check_mode:
            try:
                self._write_new(self._mine())
            except OSError as exc:
                if exc.errno == 17:  # EEXIST: another run took it between the read and here
                    raise RunLockError('another run took {0} just now; this run stopped before changing anything'.format(self.path),
                                       self._read())
                raise
        return result
