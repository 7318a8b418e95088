# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An offline bundle of a deployment: the archive's format and what bundle_export, bundle_import
and bundle_verify share (each module's logic is in _bundle_<module>.py).

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

from ansible_collections.hpcllm.webui.plugins.module_utils._command import argv_runner
from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure

BUNDLE_FORMAT = 1
MANIFEST = 'bundle.json'
SUMS = 'SHA256SUMS'
LOCK = 'hpcllm-lock.json'
GIT_BUNDLE = 'git/text-generation-webui.bundle'
GIT_MIRROR = 'git/text-generation-webui.git'
IMPORT_RECORD = '.hpcllm-bundle.json'
MODEL_MANIFEST = '.hf_model.json'
CHUNK = 4 * 1024 * 1024


class BundleError(ModuleFailure):
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


def render_json(data):
    return json.dumps(data, indent=1, sort_keys=True, separators=(',', ': ')) + '\n'


def render_sums(artifacts):
    return ''.join('%s  %s\n' % (artifacts[p]['sha256'], p) for p in sorted(artifacts))


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


class BundleLogic(object):
    """What the three bundle modules share: built from the module's parameters with git and a runner."""

    def __init__(self, params, check_mode=False, runner=None, git='git'):
        self.p = params
        self.check_mode = check_mode
        # run(argv, cwd=None) -> (rc, stdout, stderr): _command.argv_runner in the modules
        self.run_cmd = runner
        self.git = git

    @classmethod
    def from_module(cls, module):
        return cls(module.params, module.check_mode, argv_runner(module), module.get_bin_path('git', required=True))
