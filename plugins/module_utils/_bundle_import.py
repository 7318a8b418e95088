# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of bundle_import: verify a bundle archive completely, then unpack it as a mirror folder."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import shutil
import tarfile

from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_archive import (
    BUNDLE_FORMAT,
    BundleError,
    BundleLogic,
    CHUNK,
    GIT_BUNDLE,
    GIT_MIRROR,
    IMPORT_RECORD,
    LOCK,
    MANIFEST,
    SUMS,
    describe,
    render_json,
    safe_relpath,
    sha256_file,
)


class BundleImport(BundleLogic):
    """Verify a bundle archive completely, then unpack it as a mirror folder."""

    def __init__(self, params, check_mode=False, runner=None, git='git'):
        super(BundleImport, self).__init__(params, check_mode, runner, git)
        self.src = params['src']
        self.dest = os.path.abspath(params['dest'])
        self.staging = self.dest + '.partial'
        self.result = {'changed': False, 'dest': self.dest, 'actions': []}

    def _fail(self, reason):
        raise BundleError('bundle %s: %s; nothing was imported' % (self.src, reason))

    def read_manifest(self, archive):
        try:
            member = archive.getmember(MANIFEST)
        except KeyError:
            self._fail('it has no %s (is it a bundle made by bundle_export?)' % MANIFEST)
        try:
            manifest = json.loads(archive.extractfile(member).read().decode('utf-8'))
        except ValueError as exc:
            self._fail('%s is not valid JSON: %s' % (MANIFEST, exc))
        if not isinstance(manifest, dict) or manifest.get('format') != BUNDLE_FORMAT or not isinstance(manifest.get('artifacts'), dict):
            self._fail('%s has an unknown layout (format %r)' % (MANIFEST, manifest.get('format') if isinstance(manifest, dict) else None))
        for rel, entry in manifest['artifacts'].items():
            if not safe_relpath(rel) or rel in (MANIFEST, SUMS):
                self._fail('the manifest names the unsafe path %r' % rel)
            if not isinstance(entry, dict) or len(str(entry.get('sha256', ''))) != 64:
                self._fail('the manifest entry of %s has no sha256' % rel)
        for rel in (LOCK, GIT_BUNDLE, (manifest.get('python') or {}).get('tarball') or 'python/Python-?.tgz'):
            if rel not in manifest['artifacts']:
                self._fail('the manifest does not list %s, which every bundle needs' % rel)
        return manifest

    def check_members(self, archive, manifest):
        """{path: member}; fail on the first missing artifact or on a member that is no artifact."""
        members = {}
        for member in archive.getmembers():
            name = member.name
            if member.isdir():
                continue
            if not member.isfile():
                self._fail('%s is not a regular file (links and devices are refused)' % name)
            if name in (MANIFEST, SUMS):
                continue
            if name not in manifest['artifacts']:
                self._fail('%s is in the archive but not in %s' % (name, MANIFEST))
            if name in members:
                self._fail('%s is in the archive twice' % name)
            members[name] = member
        for rel in sorted(manifest['artifacts']):
            if rel not in members:
                self._fail('artifact %s is missing from the archive' % rel)
        return members

    def run(self):
        if not os.path.isfile(self.src):
            raise BundleError('bundle %s does not exist' % self.src)
        checksum = self.p.get('checksum')
        if checksum:
            have = sha256_file(self.src)
            if have != checksum.lower():
                self._fail('the archive has sha256 %s, not %s' % (have, checksum))
        try:
            archive = tarfile.open(self.src, 'r:')
        except (tarfile.TarError, IOError, OSError) as exc:
            raise BundleError('bundle %s is not a readable tar archive: %s; nothing was imported' % (self.src, exc))
        with archive:
            manifest = self.read_manifest(archive)
            members = self.check_members(archive, manifest)
            self._describe(manifest)
            record = os.path.join(self.dest, IMPORT_RECORD)
            if os.path.isfile(record):
                try:
                    with open(record, 'r') as handle:
                        if json.load(handle) == manifest:
                            return self.result
                except ValueError:
                    pass
            self.result['changed'] = True
            self.result['actions'] = ['verify and unpack %d artifacts into %s' % (len(members), self.dest),
                                      'make the bare repository %s' % os.path.join(self.dest, GIT_MIRROR)]
            if self.check_mode:
                return self.result
            parent = os.path.dirname(self.dest)
            if not os.path.isdir(parent):
                raise BundleError('the folder of dest %s does not exist' % self.dest)
            shutil.rmtree(self.staging, ignore_errors=True)
            try:
                self._extract(archive, manifest, members)
                self._git_mirror(manifest)
                with open(os.path.join(self.staging, IMPORT_RECORD), 'w') as handle:
                    handle.write(render_json(manifest))
            except BaseException:
                shutil.rmtree(self.staging, ignore_errors=True)
                raise
        self._swap()
        return self.result

    def _describe(self, manifest):
        self.result.update(describe(manifest, self.dest))

    def _extract(self, archive, manifest, members):
        os.makedirs(self.staging)
        for rel in sorted(members):
            entry = manifest['artifacts'][rel]
            path = os.path.join(self.staging, rel)
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            reader = archive.extractfile(members[rel])
            digest = hashlib.sha256()
            size = 0
            with open(path, 'wb') as writer:
                for chunk in iter(lambda: reader.read(CHUNK), b''):
                    digest.update(chunk)
                    size += len(chunk)
                    writer.write(chunk)
            os.chmod(path, 0o644)
            if digest.hexdigest() != entry['sha256'] or (entry.get('size') is not None and size != entry['size']):
                self._fail('artifact %s has sha256 %s (%d bytes), the manifest says %s (%s bytes): the bundle is corrupt'
                           % (rel, digest.hexdigest(), size, entry['sha256'], entry.get('size')))

    def _git(self, args, what):
        rc, out, err = self.run_cmd([self.git] + args)
        if rc != 0:
            self._fail('%s failed (rc %d): %s' % (what, rc, err.strip() or out.strip()))
        return out.strip()

    def _git_mirror(self, manifest):
        bundle = os.path.join(self.staging, GIT_BUNDLE)
        bare = os.path.join(self.staging, GIT_MIRROR)
        commit = (manifest.get('webui') or {}).get('commit')
        self._git(['init', '-q', '--bare', bare], 'git init')
        self._git(['-C', bare, 'fetch', '-q', bundle, '+refs/*:refs/*'], 'git fetch from %s' % GIT_BUNDLE)
        self._git(['-C', bare, 'symbolic-ref', 'HEAD', 'refs/heads/main'], 'git symbolic-ref')
        rc, dummy, dummy2 = self.run_cmd([self.git, '-C', bare, 'cat-file', '-e', '%s^{commit}' % commit])
        if rc != 0:
            self._fail('%s does not hold the web UI commit %s' % (GIT_BUNDLE, commit))
        self._git(['-C', bare, 'update-server-info'], 'git update-server-info')

    def _swap(self):
        old = None
        if os.path.lexists(self.dest):
            old = self.dest + '.old'
            shutil.rmtree(old, ignore_errors=True)
            os.rename(self.dest, old)
        os.rename(self.staging, self.dest)
        if old:
            shutil.rmtree(old, ignore_errors=True)
