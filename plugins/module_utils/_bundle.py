# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of hpcllm.webui.bundle_export and bundle_import: an offline bundle of a deployment.

A bundle is one tar archive (no compression: wheels, tarballs and weights are compressed
already) holding, at these paths (= the mirror layout after import):

    bundle.json                        the manifest: lock sha256, web UI commit, and
                                       {path: {sha256, size, kind}} of every artifact below
    SHA256SUMS                         the same sums for `sha256sum -c`
    hpcllm-lock.json                   the deployment lock (deploy_lock)
    python/Python-<ver>.tgz            the CPython source tarball (sha256 of the lock)
    wheelhouse/<file>                  every wheel/sdist the lock names (sha256 of the lock)
    webui/<lock name>                  the web UI's installed lock (R/webui/lock.txt, under the
                                       name it was deployed with; sha256 of the lock)
    git/text-generation-webui.bundle   `git bundle` of the web UI at the lock's commit
    models/<name>/..., loras/<name>/...  optional: model files and their .hf_model.json
    packages/...                       optional: a folder of OS packages, as given

Export stages every artifact in <dest>.partial/ (an artifact already staged with the right
sha256 is kept, so an interrupted export resumes), writes the archive next to dest and renames
it into place. Import checks the archive's members against the manifest (a missing or
unexpected member fails before anything is written), extracts into <dest>.partial/ while
hashing (a mismatch removes the staging folder and fails naming the artifact), turns the git
bundle into a bare repository served over git's dumb HTTP protocol (`git update-server-info`)
and only then renames the staging folder to dest.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile

BUNDLE_FORMAT = 1
MANIFEST = 'bundle.json'
SUMS = 'SHA256SUMS'
LOCK = 'hpcllm-lock.json'
GIT_BUNDLE = 'git/text-generation-webui.bundle'
GIT_MIRROR = 'git/text-generation-webui.git'
IMPORT_RECORD = '.hpcllm-bundle.json'
MODEL_MANIFEST = '.hf_model.json'
CHUNK = 4 * 1024 * 1024


class BundleError(Exception):
    """A failure to report through fail_json."""


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashed(src, dest):
    """Copy src to dest (through dest + '.tmp'), returning (sha256, size) of what was written."""
    tmp = dest + '.tmp'
    digest = hashlib.sha256()
    size = 0
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    with open(src, 'rb') as reader:
        with open(tmp, 'wb') as writer:
            for chunk in iter(lambda: reader.read(CHUNK), b''):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
    return digest.hexdigest(), size, tmp


def safe_relpath(path):
    """True when path is a relative POSIX path that stays inside its folder."""
    if not path or path.startswith('/') or '\\' in path or '\x00' in path:
        return False
    norm = posixpath.normpath(path)
    return norm == path and norm != '.' and not norm.startswith('../') and norm != '..'


def default_runner(argv, cwd=None):
    env = dict(os.environ, LANG='C', LC_ALL='C')
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    return proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


def render_json(data):
    return json.dumps(data, indent=1, sort_keys=True, separators=(',', ': ')) + '\n'


def render_sums(artifacts):
    return ''.join('%s  %s\n' % (artifacts[p]['sha256'], p) for p in sorted(artifacts))


# =========================================================================== export
class BundleExport(object):
    """Plan the artifacts of a lock, stage them resumably, write the archive atomically."""

    def __init__(self, params, check_mode=False, runner=None, git='git'):
        self.p = params
        self.check_mode = check_mode
        self.run_cmd = runner or default_runner
        self.git = git
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


# =========================================================================== import
def describe(manifest, mirror):
    """Where the sources of a bundle are once it is unpacked at `mirror`."""
    python = manifest.get('python') or {}
    return dict(
        manifest=manifest,
        lock=os.path.join(mirror, LOCK),
        python_tarball=os.path.join(mirror, python.get('tarball') or ''),
        python_version=python.get('version'),
        webui_repo=os.path.join(mirror, GIT_MIRROR),
        webui_commit=(manifest.get('webui') or {}).get('commit'),
        webui_version=(manifest.get('webui') or {}).get('version'),
        wheelhouse=os.path.join(mirror, 'wheelhouse'),
        webui_lock_file=next((os.path.join(mirror, p) for p in sorted(manifest['artifacts'])
                              if (manifest['artifacts'][p] or {}).get('kind') == 'webui-lock'), None),
        models=sorted(set('/'.join(p.split('/')[:2]) for p in manifest['artifacts'] if p.split('/')[0] in ('models', 'loras'))),
        os_packages=os.path.join(mirror, 'packages') if (manifest.get('contents') or {}).get('os_packages') else None,
    )


class BundleImport(object):
    """Verify a bundle archive completely, then unpack it as a mirror folder."""

    def __init__(self, params, check_mode=False, runner=None, git='git'):
        self.p = params
        self.check_mode = check_mode
        self.run_cmd = runner or default_runner
        self.git = git
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


class BundleVerify(object):
    """Check an unpacked bundle (a mirror made by BundleImport) before a run takes its sources from it.

    Read-only: every artifact of the import record must be there as a regular file of the recorded
    size (and sha256 with verify=sha256), the bare repository must hold the web UI commit, and the
    lock must parse. The result describes the sources, as BundleImport's does, plus the lock itself.
    """

    def __init__(self, params, check_mode=False, runner=None, git='git'):
        self.p = params
        self.run_cmd = runner or default_runner
        self.git = git
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


# =========================================================================== glue
def _runner(module):
    def run(argv, cwd=None):
        return module.run_command(argv, cwd=cwd, environ_update={'LANG': 'C', 'LC_ALL': 'C'})
    return run


def _run(module, worker, name):
    try:
        git = module.get_bin_path('git', required=True)
        result = worker(module.params, module.check_mode, _runner(module), git).run()
    except (BundleError, IOError, OSError) as exc:
        module.fail_json(msg='%s: %s' % (name, exc))
    module.exit_json(**result)


def run_export_module(module):
    _run(module, BundleExport, 'bundle_export')


def run_import_module(module):
    _run(module, BundleImport, 'bundle_import')


def run_verify_module(module):
    _run(module, BundleVerify, 'bundle_verify')
