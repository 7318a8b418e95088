# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of bundle_export: plan the artifacts of a lock, stage them resumably, write the archive atomically."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import shutil
import tarfile
import tempfile

from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_archive import (
    BUNDLE_FORMAT,
    BundleError,
    BundleLogic,
    GIT_BUNDLE,
    LOCK,
    MANIFEST,
    MODEL_MANIFEST,
    SUMS,
    copy_hashed,
    render_json,
    render_sums,
    safe_relpath,
    sha256_file,
)


class BundleExport(BundleLogic):
    """Plan the artifacts of a lock, stage them resumably, write the archive atomically."""

    def __init__(self, params, check_mode=False, runner=None, git='git'):
        super(BundleExport, self).__init__(params, check_mode, runner, git)
        self.dest = os.path.abspath(params['dest'])
        self.staging = self.dest + '.partial'
        self.result = {'changed': False, 'dest': self.dest, 'actions': [], 'kept': [], 'copied': []}

    # ------------------------------------------------------------------ inputs
    def _lock(self):
        path = self.p['lock']
        try:
            with open(path, 'rb') as handle:
                raw = handle.read()
            lock = json.loads(raw.decode('utf-8'))
        except (IOError, OSError) as exc:
            raise BundleError('cannot read the lock %s: %s' % (path, exc))
        except ValueError as exc:
            raise BundleError('the lock %s is not valid JSON: %s' % (path, exc))
        for key in ('webui', 'python', 'packages'):
            if not isinstance(lock.get(key), dict):
                raise BundleError('the lock %s has no %s section (was it written by deploy_lock?)' % (path, key))
        return lock, hashlib.sha256(raw).hexdigest()

    def plan(self, lock):
        """[(relpath, kind, source path or None, expected sha256 or None)], in archive order."""
        root = lock.get('install_root') or ''
        items = [(LOCK, 'lock', self.p['lock'], None)]
        python = lock['python']
        tarball = self.p.get('python_tarball')
        if not tarball:
            raise BundleError('python_tarball is required: the CPython source tarball %s (sha256 %s)'
                              % (python.get('tarball'), python.get('sha256')))
        items.append(('python/Python-%s.tgz' % python['version'], 'python', tarball, python['sha256']))
        wheelhouse = self.p.get('wheelhouse') or os.path.join(root, 'wheelhouse')
        missing = []
        for key in sorted(lock['packages']):
            pkg = lock['packages'][key]
            if pkg.get('source') == 'ensurepip':
                continue  # comes with CPython (ensurepip) in the tarball
            if not pkg.get('files'):
                missing.append('%s==%s' % (pkg.get('name', key), pkg.get('version')))
                continue
            for name in sorted(pkg['files']):
                items.append(('wheelhouse/%s' % name, 'wheel', os.path.join(wheelhouse, name), pkg['files'][name]))
        if missing:
            raise BundleError('the lock names packages without a file in the wheelhouse, which the bundle cannot carry: %s '
                              '(fill the wheelhouse with webui_wheelhouse_fill: true, or pip download them into it, '
                              'then write the lock again)' % ', '.join(missing))
        webui = lock['webui']
        if webui.get('lock_sha256'):
            # the requirements the rebuild installs, exactly as deployed (webui_lock, extras)
            name = webui.get('lock') or 'lock.txt'
            if '/' in name or name in ('', '.', '..'):
                raise BundleError('the lock names the web UI lock %r, which is not a file name' % name)
            items.append(('webui/%s' % name, 'webui-lock', os.path.join(root, 'webui', 'lock.txt'), webui['lock_sha256']))
        items.append((GIT_BUNDLE, 'git', None, None))
        if self.p.get('models'):
            for key in sorted(lock.get('models') or {}):
                model = lock['models'][key]
                folder = os.path.join(root, key)
                items.append(('%s/%s' % (key, MODEL_MANIFEST), 'model', os.path.join(folder, MODEL_MANIFEST), None))
                for rel in sorted(model.get('files') or {}):
                    items.append(('%s/%s' % (key, rel), 'model', os.path.join(folder, rel), model['files'][rel].get('sha256')))
        folders = []
        if self.p.get('os_packages'):
            folders.append(('os_packages', self.p['os_packages'], 'packages'))
        image_packages = self.p.get('image_packages') or {}
        if image_packages and self.p.get('os_packages'):
            raise BundleError('os_packages and image_packages are mutually exclusive (both fill packages/)')
        for image in sorted(image_packages):
            if not safe_relpath(image) or '/' in image:
                raise BundleError('image_packages: %r is not a usable image name' % image)
            folders.append(('image_packages[%s]' % image, image_packages[image], 'packages/%s' % image))
        for option, packages, prefix in folders:
            if not os.path.isdir(packages):
                raise BundleError('%s %s is not a folder' % (option, packages))
            for dirpath, dirnames, filenames in os.walk(packages):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, packages).replace(os.sep, '/')
                    if os.path.islink(path) or not os.path.isfile(path):
                        raise BundleError('%s: %s is not a regular file (links are not carried)' % (option, path))
                    items.append(('%s/%s' % (prefix, rel), 'os-package', path, None))
        for rel, kind, src, dummy in items:
            if not safe_relpath(rel):
                raise BundleError('refusing the artifact path %r (from the lock or os_packages)' % rel)
            if src is not None and not os.path.isfile(src):
                raise BundleError('%s: %s does not exist' % (rel, src))
        return items

    # ------------------------------------------------------------------ git
    def _git(self, args, cwd=None, what='git'):
        rc, out, err = self.run_cmd([self.git] + args, cwd=cwd)
        if rc != 0:
            raise BundleError('%s failed (rc %d): %s: %s' % (what, rc, ' '.join([self.git] + args), err.strip() or out.strip()))
        return out.strip()

    def make_git_bundle(self, lock, out):
        """`git bundle` of the lock's commit (refs main, HEAD, and the tag/branch of the version) into out."""
        webui = lock['webui']
        commit, version = webui['commit'], str(webui.get('version') or '')
        repo = self.p.get('webui_repo') or os.path.join(lock.get('install_root') or '', 'text-generation-webui')
        # the checkout belongs to the run user after finalize: git refuses it to root without safe.directory
        src_git = [self.git, '-c', 'safe.directory=%s' % os.path.abspath(repo), '-C', repo]
        rc, dummy, err = self.run_cmd(src_git + ['cat-file', '-e', '%s^{commit}' % commit])
        if rc != 0:
            raise BundleError('%s: the web UI repository %s does not hold commit %s (%s)' % (GIT_BUNDLE, repo, commit, err.strip()))
        common = self._git(src_git[1:] + ['rev-parse', '--git-common-dir'], what='finding the objects of %s' % repo)
        objects = os.path.abspath(os.path.join(repo, common))
        refs = ['refs/heads/main']
        extra = {}
        if version and version != commit:
            for ref in ('refs/tags/%s' % version, 'refs/heads/%s' % version, 'refs/remotes/origin/%s' % version):
                rc, value, dummy = self.run_cmd(src_git + ['rev-parse', '--verify', '-q', ref])
                if rc == 0 and value.strip():
                    target = ref if ref.startswith('refs/tags/') else 'refs/heads/%s' % version
                    extra[target] = value.strip()
                    break
        tmp = tempfile.mkdtemp(prefix='hpcllm-bundle-git-')
        try:
            self._git(['init', '-q', '--bare', tmp], what='making a scratch repository')
            with open(os.path.join(tmp, 'objects', 'info', 'alternates'), 'w') as handle:
                handle.write(os.path.join(objects, 'objects') + '\n')
            self._git(['-C', tmp, 'update-ref', 'refs/heads/main', commit])
            for ref in sorted(extra):
                self._git(['-C', tmp, 'update-ref', ref, extra[ref]])
                refs.append(ref)
            self._git(['-C', tmp, 'symbolic-ref', 'HEAD', 'refs/heads/main'])
            self._git(['-C', tmp, '-c', 'pack.threads=1', 'bundle', 'create', out, 'HEAD'] + sorted(set(refs)),
                      what='git bundle create')
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------ up to date?
    def _archived_manifest(self):
        if not os.path.isfile(self.dest):
            return None
        try:
            with tarfile.open(self.dest, 'r:') as archive:
                member = archive.getmember(MANIFEST)
                return json.loads(archive.extractfile(member).read().decode('utf-8'))
        except (KeyError, ValueError, IOError, OSError, tarfile.TarError):
            return None

    # ------------------------------------------------------------------ run
    def run(self):
        lock, lock_sha = self._lock()
        items = self.plan(lock)
        contents = {'models': bool(self.p.get('models')),
                    'os_packages': bool(self.p.get('os_packages') or self.p.get('image_packages'))}
        self.result.update(lock_sha256=lock_sha, webui_commit=lock['webui']['commit'], python_version=lock['python']['version'])
        existing = self._archived_manifest()
        if existing and not self.p.get('force') and existing.get('lock_sha256') == lock_sha and existing.get('contents') == contents:
            wanted = set(rel for rel, dummy, dummy2, dummy3 in items)
            same = set(existing.get('artifacts', {})) == wanted
            for rel, kind, src, expected in items:
                if not same:
                    break
                if kind == 'os-package':
                    same = sha256_file(src) == existing['artifacts'][rel]['sha256']
            if same:
                self.result.update(manifest=existing, artifacts=len(existing['artifacts']))
                return self.result
        self.result['changed'] = True
        if self.check_mode:
            for rel, kind, src, expected in items:
                staged = os.path.join(self.staging, rel)
                if os.path.isfile(staged) and expected and sha256_file(staged) == expected:
                    self.result['kept'].append(rel)
                else:
                    self.result['copied'].append(rel)
            self.result['actions'] = ['stage %s' % r for r in self.result['copied']] + ['write %s' % self.dest]
            return self.result
        if not os.path.isdir(os.path.dirname(self.dest)):
            raise BundleError('the folder of dest %s does not exist' % self.dest)
        artifacts = {}
        for rel, kind, src, expected in items:
            artifacts[rel] = self._stage(lock, rel, kind, src, expected)
        self._prune_staging(set(artifacts))
        manifest = {
            'format': BUNDLE_FORMAT,
            'lock_sha256': lock_sha,
            'webui': {'repo': lock['webui'].get('repo'), 'version': lock['webui'].get('version'), 'commit': lock['webui']['commit']},
            'python': {'version': lock['python']['version'], 'tarball': 'python/Python-%s.tgz' % lock['python']['version']},
            'contents': contents,
            'artifacts': artifacts,
        }
        self._write_archive(manifest)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.result.update(manifest=manifest, artifacts=len(artifacts))
        self.result['actions'] = ['stage %s' % r for r in self.result['copied']] + ['write %s' % self.dest]
        return self.result

    def _stage(self, lock, rel, kind, src, expected):
        staged = os.path.join(self.staging, rel)
        if kind == 'git':
            tmp = staged + '.tmp'
            if not os.path.isdir(os.path.dirname(staged)):
                os.makedirs(os.path.dirname(staged))
            if os.path.exists(tmp):
                os.unlink(tmp)
            self.make_git_bundle(lock, tmp)
            sha = sha256_file(tmp)
            if os.path.isfile(staged) and sha256_file(staged) == sha:
                os.unlink(tmp)
                self.result['kept'].append(rel)
            else:
                os.rename(tmp, staged)
                self.result['copied'].append(rel)
            return {'sha256': sha, 'size': os.path.getsize(staged), 'kind': kind}
        if os.path.isfile(staged):
            have = sha256_file(staged)
            want = expected or sha256_file(src)
            if have == want:
                self.result['kept'].append(rel)
                return {'sha256': have, 'size': os.path.getsize(staged), 'kind': kind}
        sha, size, tmp = copy_hashed(src, staged)
        if expected and sha != expected:
            os.unlink(tmp)
            raise BundleError('%s: %s has sha256 %s, the lock says %s (the file changed since the lock was written, '
                              'or it is another file)' % (rel, src, sha, expected))
        os.rename(tmp, staged)
        self.result['copied'].append(rel)
        return {'sha256': sha, 'size': size, 'kind': kind}

    def _prune_staging(self, wanted):
        """Remove staged files that are no artifact (left by an earlier run with other options)."""
        for dirpath, dummy, filenames in os.walk(self.staging):
            for name in filenames:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, self.staging).replace(os.sep, '/')
                if rel not in wanted:
                    os.unlink(path)

    def _write_archive(self, manifest):
        folder = os.path.dirname(self.dest)
        handle, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(self.dest) + '.', suffix='.tmp', dir=folder)
        os.close(handle)
        try:
            with tarfile.open(tmp, 'w:', format=tarfile.GNU_FORMAT) as archive:
                for name, text in ((MANIFEST, render_json(manifest)), (SUMS, render_sums(manifest['artifacts']))):
                    data = text.encode('utf-8')
                    info = self._info(name, len(data))
                    archive.addfile(info, _BytesReader(data))
                for rel in sorted(manifest['artifacts']):
                    path = os.path.join(self.staging, rel)
                    with open(path, 'rb') as reader:
                        archive.addfile(self._info(rel, os.path.getsize(path)), reader)
            os.chmod(tmp, 0o644)
            os.rename(tmp, self.dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @staticmethod
    def _info(name, size):
        """Deterministic member headers: no owner, no time stamp."""
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ''
        return info


class _BytesReader(object):
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = len(self.data) - self.pos
        chunk = self.data[self.pos:self.pos + size]
        self.pos += len(chunk)
        return chunk
