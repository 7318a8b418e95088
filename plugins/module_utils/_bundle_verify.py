# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of bundle_verify: check an unpacked bundle before a run takes its sources from it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_archive import (
    BundleError,
    BundleLogic,
    GIT_MIRROR,
    IMPORT_RECORD,
    LOCK,
    describe,
    safe_relpath,
    sha256_file,
)


class BundleVerify(BundleLogic):
    """Check an unpacked bundle (a mirror made by BundleImport) before a run takes its sources from it.

    Read-only: every artifact of the import record must be there as a regular file of the recorded
    size (and sha256 with verify=sha256), the bare repository must hold the web UI commit, and the
    lock must parse. The result describes the sources, as BundleImport's does, plus the lock itself.
    """

    def __init__(self, params, check_mode=False, runner=None, git='git'):
        super(BundleVerify, self).__init__(params, check_mode, runner, git)
        self.path = os.path.abspath(params['path'])
        self.result = {'changed': False, 'path': self.path}

    def _fail(self, reason):
        raise BundleError('bundle %s: %s; nothing was changed' % (self.path, reason))

    def run(self):
        record = os.path.join(self.path, IMPORT_RECORD)
        if not os.path.isdir(self.path):
            self._fail('the folder does not exist (unpack the archive with bundle_import first)')
        if not os.path.isfile(record):
            self._fail('%s is missing: this is not a bundle unpacked by bundle_import' % IMPORT_RECORD)
        try:
            with open(record, 'r') as handle:
                manifest = json.load(handle)
        except ValueError as exc:
            self._fail('%s is not valid JSON: %s' % (IMPORT_RECORD, exc))
        if not isinstance(manifest, dict) or not isinstance(manifest.get('artifacts'), dict):
            self._fail('%s has an unknown layout' % IMPORT_RECORD)
        hashing = self.p.get('verify') == 'sha256'
        for rel in sorted(manifest['artifacts']):
            entry = manifest['artifacts'][rel]
            path = os.path.join(self.path, rel)
            if not safe_relpath(rel):
                self._fail('the manifest names the unsafe path %r' % rel)
            if os.path.islink(path) or not os.path.isfile(path):
                self._fail('artifact %s is missing' % rel)
            size = os.path.getsize(path)
            if entry.get('size') is not None and size != entry['size']:
                self._fail('artifact %s has %d bytes, the manifest says %d' % (rel, size, entry['size']))
            if hashing and sha256_file(path) != entry.get('sha256'):
                self._fail('artifact %s has sha256 %s, the manifest says %s' % (rel, sha256_file(path), entry.get('sha256')))
        commit = (manifest.get('webui') or {}).get('commit')
        bare = os.path.join(self.path, GIT_MIRROR)
        if not os.path.isdir(bare):
            self._fail('the web UI repository %s is missing' % GIT_MIRROR)
        rc, dummy, err = self.run_cmd([self.git, '-c', 'safe.directory=%s' % bare, '-C', bare, 'cat-file', '-e', '%s^{commit}' % commit])
        if rc != 0:
            self._fail('%s does not hold the web UI commit %s (%s)' % (GIT_MIRROR, commit, err.strip()))
        try:
            with open(os.path.join(self.path, LOCK), 'r') as handle:
                lock = json.load(handle)
        except ValueError as exc:
            self._fail('%s is not valid JSON: %s' % (LOCK, exc))
        self.result.update(describe(manifest, self.path))
        packages = os.path.join(self.path, 'packages')
        self.result['package_folders'] = sorted(name for name in os.listdir(packages)
                                                if os.path.isdir(os.path.join(packages, name))) if os.path.isdir(packages) else []
        self.result['lock_content'] = lock
        self.result['verified'] = 'sha256' if hashing else 'size'
        return self.result
