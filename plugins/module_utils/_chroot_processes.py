# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find and stop the processes whose root directory is an image's root filesystem (or below it).

A package script run in a chroot can start a daemon that outlives the run; it keeps the
image's /proc, /dev or the master's /opt busy, and the teardown cannot unmount them. Only
processes whose root (/proc/PID/root) lies in an image root are touched: a master process
that merely uses /opt is not.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import signal
import time

from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure


class ChrootProcessError(ModuleFailure):
    def __init__(self, msg, processes=None):
        super(ChrootProcessError, self).__init__(msg, processes=processes or [])
        self.processes = processes or []


def _cmdline(proc, pid):
    try:
        with open(os.path.join(proc, str(pid), 'cmdline'), 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError):
        return ''
    return raw.replace(b'\0', b' ').decode('utf-8', 'replace').strip()


def _root_of(proc, pid):
    try:
        return os.readlink(os.path.join(proc, str(pid), 'root'))
    except OSError:
        return None


def processes_in(roots, proc='/proc'):
    """[{pid, root, cmdline}] of every process whose root directory is one of roots or below one."""
    wanted = sorted(set(os.path.realpath(root).rstrip('/') for root in roots if root and root.rstrip('/')))
    found = []
    for entry in sorted(os.listdir(proc), key=lambda name: (len(name), name)):
        if not entry.isdigit():
            continue
        root = _root_of(proc, entry)
        if root is None:
            continue
        for image_root in wanted:
            if root == image_root or root.startswith(image_root + '/'):
                found.append({'pid': int(entry), 'root': image_root, 'cmdline': _cmdline(proc, entry)})
                break
    return found


class ChrootProcesses(object):
    """Stop every process running inside the given roots: SIGTERM, then SIGKILL after timeout seconds."""

    def __init__(self, roots, timeout=10, check_mode=False, proc='/proc', kill=os.kill, sleep=time.sleep, clock=time.time):
        self.roots = roots
        self.timeout = timeout
        self.check_mode = check_mode
        self.proc = proc
        self._kill = kill
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_module(cls, module):
        if module.params['timeout'] < 0:
            raise ModuleFailure('timeout must be 0 or more seconds (got {0})'.format(module.params['timeout']))
        return cls(module.params['roots'], module.params['timeout'], module.check_mode)

    def _alive(self, pids):
        running = set(p['pid'] for p in processes_in(self.roots, self.proc))
        return [pid for pid in pids if pid in running]

    def _signal(self, pids, signum):
        for pid in pids:
            try:
                self._kill(pid, signum)
            except OSError:
                continue  # gone meanwhile

    def _wait(self, pids, seconds):
        deadline = self._clock() + seconds
        left = self._alive(pids)
        while left and self._clock() < deadline:
            self._sleep(0.2)
            left = self._alive(left)
        return left

    def run(self):
        found = processes_in(self.roots, self.proc)
        actions = ['stop {pid} ({cmdline}) running in {root}'.format(**p) for p in found]
        result = {'changed': bool(found), 'processes': found, 'actions': actions, 'killed': []}
        if not found or self.check_mode:
            return result
        pids = [p['pid'] for p in found]
        self._signal(pids, signal.SIGTERM)
        left = self._wait(pids, self.timeout)
        if left:
            result['killed'] = left
            self._signal(left, signal.SIGKILL)
            left = self._wait(left, 5)
        if left:
            stuck = [p for p in found if p['pid'] in left]
            raise ChrootProcessError('processes still running inside the images after SIGKILL: {0}'.format(
                '; '.join('{pid} ({cmdline}) in {root}'.format(**p) for p in stuck)), stuck)
        return result
