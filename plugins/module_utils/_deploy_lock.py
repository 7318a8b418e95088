# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of hpcllm.webui.deploy_lock: the lock file of one install root (R/hpcllm-lock.json).

Everything is read from records the roles leave in the install root (nothing is imported
from the venv, nothing runs):

- R/webui/checkout.json (repo, version, commit) and R/webui/lock.sha256 (webui role)
- R/python_<ver>/.hpcllm-build.json (python_build): version, tarball sha256, configure args
- R/venv/lib/python*/site-packages/*.dist-info/METADATA: name and version of every installed
  distribution; the sha256 of the file it came from when the wheelhouse (or CPython's
  ensurepip folder, for pip/setuptools of a fresh venv) holds a file of that name and version
- R/models/<name>/.hf_model.json, R/loras/<name>/.hf_model.json (hf_model): repo, revision,
  commit and files; sha256 from the manifest (LFS files), else hashed on disk (small files
  stored in git, which the Hub identifies by git blob id only)
- images: given by the caller (package versions and kernels gathered inside each image)

The lock is JSON with sorted keys and no time stamps, so the same deployment gives the same
bytes anywhere (two sites compare locks with sha256sum).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import hashlib
import json
import os
import re
import tempfile

from email.parser import HeaderParser

from ansible_collections.hpcllm.webui.plugins.module_utils._files import hash_file
from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure

LOCK_FORMAT = 1
LOCK_NAME = 'hpcllm-lock.json'
BUILD_RECORD = '.hpcllm-build.json'
MODEL_MANIFEST = '.hf_model.json'
MODEL_FOLDERS = ('models', 'loras')
SDIST_SUFFIXES = ('.tar.gz', '.tar.bz2', '.tgz', '.zip')
_HEX64 = re.compile(r'^[0-9a-f]{64}$')


class DeployLockError(ModuleFailure):
    """A failure to report through fail_json."""


# --------------------------------------------------------------------------- names
def normalize_name(name):
    """PEP 503 normalized project name (PyYAML, pyyaml and py_yaml are the same project)."""
    return re.sub(r'[-_.]+', '-', name).lower()


def normalize_version(version):
    """Versions as compared between METADATA and file names (case and '_' of escaped names)."""
    return version.strip().lower().replace('_', '-')


def parse_dist_filename(filename):
    """(normalized name, normalized version) of a wheel or sdist file name, or None."""
    if filename.endswith('.whl'):
        parts = filename[:-4].split('-')
        if len(parts) not in (5, 6):
            return None
        return normalize_name(parts[0]), normalize_version(parts[1])
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            stem = filename[:-len(suffix)]
            if '-' not in stem:
                return None
            name, version = stem.rsplit('-', 1)
            return normalize_name(name), normalize_version(version)
    return None


# --------------------------------------------------------------------------- readers
def read_json(path, what):
    try:
        with open(path, 'r') as handle:
            return json.load(handle)
    except (IOError, OSError) as exc:
        raise DeployLockError('cannot read %s %s: %s' % (what, path, exc))
    except ValueError as exc:
        raise DeployLockError('%s %s is not valid JSON: %s' % (what, path, exc))


def read_text(path, what):
    try:
        with open(path, 'r') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise DeployLockError('cannot read %s %s: %s' % (what, path, exc))


def sha256_file(path):
    return hash_file(hashlib.sha256(), path)


def site_packages(venv):
    """The venv's site-packages folders (lib64 is a link to lib in venvs: deduplicated)."""
    found = []
    for path in sorted(glob.glob(os.path.join(venv, 'lib*', 'python*', 'site-packages'))):
        real = os.path.realpath(path)
        if real not in [os.path.realpath(p) for p in found]:
            found.append(path)
    return found


def installed_distributions(venv):
    """{normalized name: {'name': as in METADATA, 'version': ...}} read from *.dist-info/METADATA."""
    folders = site_packages(venv)
    if not folders:
        raise DeployLockError('venv %s has no lib/python*/site-packages folder' % venv)
    dists = {}
    for folder in folders:
        for info in sorted(glob.glob(os.path.join(folder, '*.dist-info'))):
            meta_path = os.path.join(info, 'METADATA')
            if not os.path.isfile(meta_path):
                continue
            headers = HeaderParser().parsestr(read_text(meta_path, 'package metadata'))
            name, version = headers.get('Name'), headers.get('Version')
            if not name or not version:
                raise DeployLockError('%s has no Name or Version header' % meta_path)
            key = normalize_name(name.strip())
            if key in dists and dists[key]['version'] != version.strip():
                raise DeployLockError('venv %s holds %s twice (%s and %s)' % (venv, name, dists[key]['version'], version))
            dists[key] = {'name': name.strip(), 'version': version.strip()}
    return dists


def index_files(folder):
    """{(normalized name, normalized version): [file paths]} of the wheels and sdists in folder."""
    index = {}
    if not folder or not os.path.isdir(folder):
        return index
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if not os.path.isfile(path):
            continue
        key = parse_dist_filename(entry)
        if key:
            index.setdefault(key, []).append(path)
    return index


def package_entries(dists, wheelhouse_index, ensurepip_index, hasher=sha256_file):
    """The lock's packages: {normalized name: {name, version, source, files: {file: sha256}}}."""
    packages = {}
    for key in sorted(dists):
        dist = dists[key]
        lookup = (key, normalize_version(dist['version']))
        source, paths = 'none', []
        if lookup in wheelhouse_index:
            source, paths = 'wheelhouse', wheelhouse_index[lookup]
        elif lookup in ensurepip_index:
            source, paths = 'ensurepip', ensurepip_index[lookup]
        packages[key] = {
            'name': dist['name'],
            'version': dist['version'],
            'source': source,
            'files': dict((os.path.basename(p), hasher(p)) for p in paths),
        }
    return packages


def find_build_record(root, python_version, venv):
    """Path of the build record of the interpreter the venv was made with."""
    if python_version:
        path = os.path.join(root, 'python_%s' % python_version, BUILD_RECORD)
        if not os.path.isfile(path):
            raise DeployLockError('python_version %s: %s does not exist (was CPython built by python_build?)' % (python_version, path))
        return path
    cfg = os.path.join(venv, 'pyvenv.cfg')
    if os.path.isfile(cfg):
        for line in read_text(cfg, 'venv configuration').splitlines():
            key, sep, value = line.partition('=')
            if sep and key.strip() == 'home':
                path = os.path.join(os.path.dirname(value.strip().rstrip('/')), BUILD_RECORD)
                if os.path.isfile(path):
                    return path
    records = sorted(glob.glob(os.path.join(root, 'python_*', BUILD_RECORD)))
    if len(records) == 1:
        return records[0]
    if not records:
        raise DeployLockError('no CPython build record (%s) under %s/python_*: run python_build first' % (BUILD_RECORD, root))
    raise DeployLockError('several CPython builds under %s (%s) and the venv does not say which: set python_version'
                          % (root, ', '.join(os.path.basename(os.path.dirname(r)) for r in records)))


def python_entry(record_path):
    record = read_json(record_path, 'CPython build record')
    for key in ('version', 'sha256'):
        if not record.get(key):
            raise DeployLockError('CPython build record %s has no %s' % (record_path, key))
    if not _HEX64.match(record['sha256']):
        raise DeployLockError('CPython build record %s: sha256 %r is not 64 hex digits' % (record_path, record['sha256']))
    return {
        'version': record['version'],
        'sha256': record['sha256'],
        'tarball': 'Python-%s.tgz' % record['version'],
        'configure_args': record.get('configure_args', []),
        'os_release': record.get('os_release'),
        'prefix': os.path.basename(os.path.dirname(record_path)),
    }, os.path.dirname(record_path)


def webui_entry(root):
    conf = os.path.join(root, 'webui')
    checkout = read_json(os.path.join(conf, 'checkout.json'), 'web UI checkout record')
    for key in ('repo', 'version', 'commit'):
        if not checkout.get(key):
            raise DeployLockError('web UI checkout record %s has no %s' % (os.path.join(conf, 'checkout.json'), key))
    entry = {'repo': checkout['repo'], 'version': str(checkout['version']), 'commit': checkout['commit']}
    lock_sha = os.path.join(conf, 'lock.sha256')
    entry['lock_sha256'] = read_text(lock_sha, 'web UI lock record').strip() if os.path.isfile(lock_sha) else None
    # what the webui role recorded after installing the lock: its name, the extra index it was
    # installed from, and what the venv's torch was built for (the GPUs it drives)
    gpu_record = os.path.join(conf, 'torch-gpu.txt')
    if os.path.isfile(gpu_record):
        fields = parse_gpu_record(read_text(gpu_record, 'web UI GPU record'))
        entry['lock'] = fields.get('WEBUI_LOCK') or None
        entry['extra_index_url'] = fields.get('WEBUI_EXTRA_INDEX') or None
        entry['torch'] = {'version': fields.get('TORCH_VERSION') or None, 'cuda': fields.get('TORCH_CUDA') or None,
                          'archs': (fields.get('TORCH_ARCHS') or '').split()}
    return entry


def parse_gpu_record(text):
    """KEY=value lines of R/webui/torch-gpu.txt (comments and other lines skipped)."""
    fields = {}
    for line in text.splitlines():
        if line.startswith('#') or '=' not in line:
            continue
        key, value = line.split('=', 1)
        fields[key.strip()] = value.strip()
    return fields


def model_entries(root, hasher=sha256_file):
    """{'models/<name>': {...}, 'loras/<name>': {...}} from the hf_model manifests."""
    models = {}
    for kind in MODEL_FOLDERS:
        for manifest_path in sorted(glob.glob(os.path.join(root, kind, '*', MODEL_MANIFEST))):
            folder = os.path.dirname(manifest_path)
            key = '%s/%s' % (kind, os.path.basename(folder))
            manifest = read_json(manifest_path, 'model manifest')
            if not isinstance(manifest, dict) or not isinstance(manifest.get('files'), dict):
                raise DeployLockError('model manifest %s has an unknown layout' % manifest_path)
            files = {}
            for rel in sorted(manifest['files']):
                info = manifest['files'][rel] or {}
                path = os.path.join(folder, rel)
                if not os.path.isfile(path):
                    raise DeployLockError('%s: %s is listed in %s but missing on disk' % (key, rel, MODEL_MANIFEST))
                sha = info.get('sha256') or hasher(path)
                files[rel] = {'size': info.get('size'), 'sha256': sha}
            models[key] = {
                'repo': manifest.get('repo_id'),
                'revision': manifest.get('revision'),
                'commit': manifest.get('commit'),
                'files': files,
            }
    return models


def image_entries(images):
    """Validate and normalize the caller's {name: {packages: {pkg: version}, kernels: [kver]}}."""
    if images is None:
        return {}
    if not isinstance(images, dict):
        raise DeployLockError('images must be a dict {image: {packages: {name: version}, kernels: [version]}}')
    out = {}
    for name in sorted(images):
        data = images[name] or {}
        if not isinstance(data, dict) or set(data) - set(['packages', 'kernels']):
            raise DeployLockError('images.%s may only have the keys packages and kernels' % name)
        packages = data.get('packages') or {}
        if not isinstance(packages, dict):
            raise DeployLockError('images.%s.packages must be a dict {package: version}' % name)
        kernels = data.get('kernels') or []
        if not isinstance(kernels, list):
            raise DeployLockError('images.%s.kernels must be a list of kernel versions' % name)
        out[str(name)] = {
            'packages': dict((str(k), str(v)) for k, v in packages.items()),
            'kernels': sorted(set(str(k) for k in kernels)),
        }
    return out


# --------------------------------------------------------------------------- the lock
def build_lock(root, venv=None, wheelhouse=None, python_version=None, images=None, hasher=sha256_file):
    """The lock dict of install root `root` and the list of packages without a known file."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise DeployLockError('install root %s does not exist' % root)
    venv = venv or os.path.join(root, 'venv')
    wheelhouse = wheelhouse or os.path.join(root, 'wheelhouse')
    record_path = find_build_record(root, python_version, venv)
    python, prefix = python_entry(record_path)
    ensurepip = []
    for folder in sorted(glob.glob(os.path.join(prefix, 'lib', 'python*', 'ensurepip', '_bundled'))):
        ensurepip.append(folder)
    ensurepip_index = {}
    for folder in ensurepip:
        for key, paths in index_files(folder).items():
            ensurepip_index.setdefault(key, []).extend(paths)
    packages = package_entries(installed_distributions(venv), index_files(wheelhouse), ensurepip_index, hasher)
    os_release_path = os.path.join(root, '.hpcllm-os-release')
    lock = {
        'format': LOCK_FORMAT,
        'install_root': root,
        'os_release': read_text(os_release_path, 'OS release marker').strip() if os.path.isfile(os_release_path) else None,
        'webui': webui_entry(root),
        'python': python,
        'packages': packages,
        'models': model_entries(root, hasher),
        'images': image_entries(images),
    }
    unhashed = sorted('%s==%s' % (p['name'], p['version']) for p in packages.values() if not p['files'])
    return lock, unhashed


def render(lock):
    """The lock's bytes: sorted keys, one space indent, trailing newline (deterministic)."""
    return json.dumps(lock, indent=1, sort_keys=True, separators=(',', ': ')) + '\n'


def write_atomic(path, text, mover=None):
    """Write text to path through a temporary file in the same folder, then move it in place."""
    folder = os.path.dirname(path) or '.'
    handle, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=folder)
    try:
        with os.fdopen(handle, 'w') as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o644)
        if mover:
            mover(tmp, path)
        else:
            os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class DeployLock(object):
    """Work out the lock, compare with the file on disk, write when it differs (not in check mode)."""

    def __init__(self, params, check_mode=False, diff_mode=False, mover=None, attributes=None):
        self.p = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.mover = mover
        # attributes(path, changed) -> changed: mode, owner and group of the written lock
        self.attributes = attributes

    @classmethod
    def from_module(cls, module):
        def mover(src, dest):
            module.atomic_move(src, dest, unsafe_writes=False)

        def attributes(path, changed):
            file_args = module.load_file_common_arguments(module.params, path=path)
            return module.set_fs_attributes_if_different(file_args, changed)
        return cls(module.params, module.check_mode, module._diff, mover, attributes)

    def run(self):
        root = os.path.abspath(self.p['install_root'])
        dest = self.p.get('dest') or os.path.join(root, LOCK_NAME)
        lock, unhashed = build_lock(root, self.p.get('venv'), self.p.get('wheelhouse'), self.p.get('python_version'),
                                    self.p.get('images'))
        before = None
        if os.path.exists(dest):
            before = read_text(dest, 'lock')
        kept = []
        if self.p.get('keep_other_images') and before:
            # a run over some of the images that share this root keeps the records of the others
            try:
                earlier = json.loads(before).get('images') or {}
            except ValueError:
                earlier = {}
            for name in sorted(earlier):
                if name not in lock['images'] and isinstance(earlier[name], dict):
                    lock['images'][name] = earlier[name]
                    kept.append(name)
        text = render(lock)
        changed = before != text
        result = {
            'changed': changed,
            'dest': dest,
            'sha256': hashlib.sha256(text.encode('utf-8')).hexdigest(),
            'lock': lock,
            'unhashed': unhashed,
            'kept_images': kept,
            'actions': ['write %s' % dest] if changed else [],
        }
        if self.diff_mode:
            result['diff'] = {'before': before or '', 'after': text, 'before_header': dest, 'after_header': dest}
        if changed and not self.check_mode:
            if not os.path.isdir(os.path.dirname(dest)):
                raise DeployLockError('the folder of dest %s does not exist' % dest)
            write_atomic(dest, text, self.mover)
        if self.attributes is not None and not self.check_mode and os.path.exists(dest):
            result['changed'] = self.attributes(dest, result['changed'])
        return result
