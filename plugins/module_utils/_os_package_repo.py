# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A self-contained OS package repository of everything installed in an image (os_package_repo).

Debian: every package dpkg has installed (status ``ii``) is fetched at exactly its installed
version with ``apt-get download`` and a private apt state (lists and caches in a scratch folder,
so nothing under the image's root changes), then indexed in a flat repository ``Packages`` file
(dpkg-scanpackages' format) written by ``write_deb_index`` from the .deb files themselves.
EL: every installed rpm is fetched with ``dnf download`` (private cache, log and persist
folders) and indexed with ``createrepo_c``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip
import hashlib
import io
import os
import re
import tarfile
import tempfile

from ansible_collections.hpcllm.webui.plugins.module_utils._command import argv_runner
from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure

DEB_INDEX = 'Packages'
DEB_INDEX_GZ = 'Packages.gz'
PARTIAL = '.partial'
AR_MAGIC = b'!<arch>\n'
AR_HEADER_SIZE = 60
# Fields dpkg-scanpackages adds from the file itself, in its order.
FILE_FIELDS = ('Filename', 'Size', 'MD5sum', 'SHA1', 'SHA256')
DPKG_QUERY_FORMAT = '${db:Status-Abbrev}\\t${Package}\\t${Architecture}\\t${Version}\\n'
RPM_QUERY_FORMAT = '%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n'


class OsPackageRepoError(ModuleFailure):
    """A failure with a message for the user (names the file, package or command)."""


# --- .deb files ---------------------------------------------------------------------

def _ar_members(path):
    """Yield (name, bytes) of the members of an ar archive (a .deb)."""
    with open(path, 'rb') as handle:
        if handle.read(len(AR_MAGIC)) != AR_MAGIC:
            raise OsPackageRepoError('%s: not a Debian package (no ar archive header)' % path)
        while True:
            header = handle.read(AR_HEADER_SIZE)
            if not header:
                return
            if len(header) != AR_HEADER_SIZE or header[58:60] != b'`\n':
                raise OsPackageRepoError('%s: truncated or corrupt ar archive' % path)
            name = header[0:16].decode('ascii', 'replace').strip().rstrip('/')
            try:
                size = int(header[48:58].decode('ascii').strip())
            except ValueError:
                raise OsPackageRepoError('%s: corrupt ar member header for %r' % (path, name))
            data = handle.read(size)
            if len(data) != size:
                raise OsPackageRepoError('%s: truncated ar member %s' % (path, name))
            if size % 2:
                handle.read(1)
            yield name, data


def _decompress_zstd(path, data):
    try:
        from compression import zstd  # Python >= 3.14
        return zstd.decompress(data)
    except ImportError:
        pass
    try:
        import zstandard  # pylint: disable=import-error
    except ImportError:
        raise OsPackageRepoError(
            '%s: control.tar.zst is not supported here (needs Python 3.14 or the zstandard module);'
            ' Debian and Ubuntu packages before 21.10 use xz or gz' % path)
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def deb_control(path):
    """The text of the control file of the .deb at path."""
    for name, data in _ar_members(path):
        if not name.startswith('control.tar'):
            continue
        suffix = name[len('control.tar'):]
        if suffix == '.zst':
            data, suffix = _decompress_zstd(path, data), ''
        modes = {'': 'r:', '.gz': 'r:gz', '.xz': 'r:xz', '.bz2': 'r:bz2'}
        if suffix not in modes:
            raise OsPackageRepoError('%s: unsupported control member %s' % (path, name))
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode=modes[suffix]) as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name in ('./control', 'control'):
                        return tar.extractfile(member).read().decode('utf-8')
        except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
            raise OsPackageRepoError('%s: cannot read %s: %s' % (path, name, exc))
        raise OsPackageRepoError('%s: %s holds no control file' % (path, name))
    raise OsPackageRepoError('%s: not a Debian package (no control.tar member)' % path)


def parse_control(text):
    """[(field, value)] of one control stanza; continuation lines stay in the value."""
    fields = []
    for line in text.rstrip('\n').split('\n'):
        if not line.strip():
            continue
        if line[0] in ' \t':
            if not fields:
                raise OsPackageRepoError('control starts with a continuation line: %r' % line)
            fields[-1] = (fields[-1][0], fields[-1][1] + '\n' + line.rstrip())
            continue
        field, sep, value = line.partition(':')
        if not sep:
            raise OsPackageRepoError('control line without a field name: %r' % line)
        fields.append((field.strip(), value.strip()))
    return fields


def _file_sums(path):
    md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            size += len(block)
            md5.update(block)
            sha1.update(block)
            sha256.update(block)
    return size, md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest()


def deb_stanza(folder, filename):
    """One Packages stanza for folder/filename: the control fields, Filename, Size and sums.

    Returns (sort key, text). Description goes last, as dpkg-scanpackages writes it."""
    path = os.path.join(folder, filename)
    fields = parse_control(deb_control(path))
    values = dict(fields)
    for required in ('Package', 'Version', 'Architecture'):
        if not values.get(required):
            raise OsPackageRepoError('%s: control has no %s field' % (path, required))
    size, md5, sha1, sha256 = _file_sums(path)
    added = list(zip(FILE_FIELDS, ('./' + filename, str(size), md5, sha1, sha256)))
    body = [item for item in fields if item[0] not in FILE_FIELDS and item[0] != 'Description']
    tail = [item for item in fields if item[0] == 'Description']
    lines = ['%s: %s' % (field, value) if value and not value.startswith('\n') else '%s:%s' % (field, value)
             for field, value in body + added + tail]
    key = (values['Package'], values['Architecture'], values['Version'], filename)
    return key, '\n'.join(lines) + '\n'


def deb_files(folder):
    """Names of the .deb files directly in folder, sorted."""
    return sorted(name for name in os.listdir(folder)
                  if name.endswith('.deb') and os.path.isfile(os.path.join(folder, name)))


def render_deb_index(folder):
    """The Packages text for every .deb in folder (sorted by package, architecture, version)."""
    stanzas = sorted(deb_stanza(folder, name) for name in deb_files(folder))
    return '\n'.join(text for _key, text in stanzas)


def gzip_bytes(text):
    """Deterministic gzip of text (no name, mtime 0)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename='', mode='wb', fileobj=buf, mtime=0, compresslevel=9) as handle:
        handle.write(text.encode('utf-8'))
    return buf.getvalue()


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def atomic_write(path, data, mode=0o644):
    """Write bytes to path through a temporary file in the same folder and a rename."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_deb_index(folder, check_mode=False):
    """Write Packages and Packages.gz for folder when their content differs. Returns the files changed."""
    text = render_deb_index(folder)
    wanted = {DEB_INDEX: text.encode('utf-8'), DEB_INDEX_GZ: gzip_bytes(text)}
    changed = [name for name in (DEB_INDEX, DEB_INDEX_GZ) if _read(os.path.join(folder, name)) != wanted[name]]
    if not check_mode:
        for name in changed:
            atomic_write(os.path.join(folder, name), wanted[name])
    return changed


# --- What is installed, what the folder lacks -----------------------------------------

def parse_dpkg_query(output):
    """[(name, arch, version)] of the packages dpkg-query lists as installed (status ii)."""
    packages = []
    for line in output.splitlines():
        parts = line.split('\t')
        if len(parts) != 4:
            continue
        status, name, arch, version = (part.strip() for part in parts)
        if status.startswith('ii'):
            packages.append((name, arch, version))
    return sorted(packages)


def deb_filename(name, arch, version):
    """The file name apt-get download gives a package (the epoch colon quoted as %3a)."""
    return '%s_%s_%s.deb' % (name, version.replace(':', '%3a'), arch)


def deb_spec(name, arch, version):
    """What apt-get download is asked for: name:arch=version."""
    return '%s:%s=%s' % (name, arch, version)


def parse_rpm_query(output):
    """[(name, epoch, version, release, arch)] of the installed rpms; gpg-pubkey entries are skipped."""
    packages = []
    for line in output.splitlines():
        parts = line.split('\t')
        if len(parts) != 5:
            continue
        name, epoch, version, release, arch = (part.strip() for part in parts)
        if name == 'gpg-pubkey' or arch == '(none)':
            continue
        packages.append((name, '0' if epoch in ('', '(none)') else epoch, version, release, arch))
    return sorted(packages)


def rpm_filename(name, epoch, version, release, arch):  # pylint: disable=unused-argument
    """The file name dnf download gives a package (no epoch)."""
    return '%s-%s-%s.%s.rpm' % (name, version, release, arch)


def rpm_spec(name, epoch, version, release, arch):
    """What dnf download is asked for: name-epoch:version-release.arch."""
    return '%s-%s:%s-%s.%s' % (name, epoch, version, release, arch)


def apt_options(scratch):
    """apt options that keep its lists and caches in scratch (nothing under the image root changes)."""
    return ['-o', 'Dir::State::Lists=%s' % os.path.join(scratch, 'lists'),
            '-o', 'Dir::Cache=%s' % os.path.join(scratch, 'cache'),
            '-o', 'Dir::Log=%s' % os.path.join(scratch, 'log'),
            '-o', 'APT::Sandbox::User=root']


def apt_update_argv(apt_get, scratch):
    return [apt_get, '-q'] + apt_options(scratch) + ['update']


def apt_download_argv(apt_get, scratch, specs):
    return [apt_get, '-q'] + apt_options(scratch) + ['download'] + list(specs)


def dnf_download_argv(dnf, scratch, destdir, specs):
    return [dnf, '-q', 'download', '--destdir', destdir,
            '--setopt=cachedir=%s' % os.path.join(scratch, 'cache'),
            '--setopt=persistdir=%s' % os.path.join(scratch, 'persist'),
            '--setopt=logdir=%s' % os.path.join(scratch, 'log')] + list(specs)


def createrepo_argv(createrepo, folder):
    return [createrepo, '--quiet', '--excludes', '%s/*' % PARTIAL, folder]


def scratch_dirs(scratch):
    """Folders the private apt/dnf state needs."""
    return [os.path.join(scratch, 'lists', 'partial'), os.path.join(scratch, 'cache', 'archives', 'partial'),
            os.path.join(scratch, 'log'), os.path.join(scratch, 'persist')]


def error_lines(text):
    """The lines of apt/dnf output that say what went wrong (E:/Error:/No package ...)."""
    return [line.strip() for line in text.splitlines()
            if re.match(r'\s*(E:|Error|No package|No match)', line)]


# --- The repository ---------------------------------------------------------------------

class OsPackageRepo(object):
    """Collect and index the packages installed in this system into a folder.

    run(argv, cwd=None) -> (rc, stdout, stderr) and which(name, required) are injected (the
    module's command runner and get_bin_path), so tests can feed recorded output."""

    def __init__(self, path, scratch, family, run, which, collect=True, prune=True, check_mode=False):
        self.path = path
        self.scratch = scratch
        self.family = family
        self.run_cmd = run
        self.which = which
        self.collect = collect
        self.prune = prune
        self.check_mode = check_mode
        self.actions = []
        self.downloaded = []
        self.removed = []
        self.packages = []

    def _command(self, argv, what, cwd=None):
        rc, out, err = self.run_cmd(argv, cwd=cwd)
        if rc != 0:
            detail = error_lines(out + '\n' + err) or [(err or out).strip()]
            raise OsPackageRepoError('%s failed (rc=%s, command: %s): %s' % (what, rc, ' '.join(argv[:6]) + ' ...', '; '.join(detail)))
        return out

    def _installed(self):
        if self.family == 'Debian':
            out = self._command([self.which('dpkg-query', True), '-W', '-f', DPKG_QUERY_FORMAT], 'dpkg-query')
            return [(deb_filename(*pkg), deb_spec(*pkg)) for pkg in parse_dpkg_query(out)]
        out = self._command([self.which('rpm', True), '-qa', '--qf', RPM_QUERY_FORMAT], 'rpm -qa')
        return [(rpm_filename(*pkg), rpm_spec(*pkg)) for pkg in parse_rpm_query(out)]

    def _present(self):
        suffix = '.deb' if self.family == 'Debian' else '.rpm'
        if not os.path.isdir(self.path):
            return []
        return sorted(name for name in os.listdir(self.path)
                      if name.endswith(suffix) and os.path.isfile(os.path.join(self.path, name)))

    def _download(self, specs, wanted_files):
        partial = os.path.join(self.path, PARTIAL)
        for folder in scratch_dirs(self.scratch) + [partial]:
            if not os.path.isdir(folder):
                os.makedirs(folder, 0o755)
        if self.family == 'Debian':
            apt_get = self.which('apt-get', True)
            self._command(apt_update_argv(apt_get, self.scratch), 'apt-get update (private lists in %s)' % self.scratch)
            self._command(apt_download_argv(apt_get, self.scratch, specs),
                          'apt-get download of the installed versions', cwd=partial)
        else:
            dnf = self.which('dnf', False) or self.which('yum', True)
            self._command(dnf_download_argv(dnf, self.scratch, partial, specs), 'dnf download of the installed versions')
        lacking = [name for name in wanted_files if not os.path.isfile(os.path.join(partial, name))]
        if lacking:
            raise OsPackageRepoError('the download did not produce %s (in %s)' % (', '.join(lacking), partial))
        for name in wanted_files:
            os.replace(os.path.join(partial, name), os.path.join(self.path, name))
        for name in os.listdir(partial):
            os.unlink(os.path.join(partial, name))
        os.rmdir(partial)

    def _index(self, files_changed):
        if self.family == 'Debian':
            if not os.path.isdir(self.path):
                return ['write %s' % os.path.join(self.path, DEB_INDEX)]
            written = write_deb_index(self.path, self.check_mode)
            return ['write %s' % os.path.join(self.path, name) for name in written]
        repomd = os.path.join(self.path, 'repodata', 'repomd.xml')
        if not files_changed and os.path.isfile(repomd):
            return []
        createrepo = self.which('createrepo_c', False)
        if not createrepo:
            raise OsPackageRepoError('createrepo_c is not installed in this system: install it (package createrepo_c)'
                                     ' to index the rpms of %s' % self.path)
        if not self.check_mode:
            self._command(createrepo_argv(createrepo, self.path), 'createrepo_c')
        return ['createrepo_c %s' % self.path]

    @classmethod
    def from_module(cls, module):
        params = module.params
        if not os.path.isabs(params['path']):
            raise OsPackageRepoError('path must be absolute (got %s)' % params['path'])
        family = params['family'] or ('Debian' if module.get_bin_path('dpkg-query') else 'RedHat')
        run = argv_runner(module, {'DEBIAN_FRONTEND': 'noninteractive'})
        return cls(params['path'], params['scratch'], family, run, module.get_bin_path,
                   collect=params['collect'], prune=params['prune'], check_mode=module.check_mode)

    def run(self):
        """apply(); a failure (or a file that cannot be written) carries the actions done before it."""
        try:
            return self.apply()
        except (OsPackageRepoError, OSError) as exc:
            raise OsPackageRepoError(str(exc), actions=self.actions)

    def apply(self):
        """Do (or in check mode work out) the collect and the index; returns the module result."""
        files_changed = False
        if self.collect:
            installed = self._installed()
            present = set(self._present())
            wanted = dict(installed)
            self.packages = sorted(wanted)
            missing = [name for name in sorted(wanted) if name not in present]
            extra = sorted(present - set(wanted)) if self.prune else []
            if missing:
                self.actions.append('download %d packages into %s' % (len(missing), self.path))
                self.downloaded = missing
                if not self.check_mode:
                    if not os.path.isdir(self.path):
                        os.makedirs(self.path, 0o755)
                    self._download([wanted[name] for name in missing], missing)
            for name in extra:
                self.actions.append('remove %s (not installed)' % name)
                self.removed.append(name)
                if not self.check_mode:
                    os.unlink(os.path.join(self.path, name))
            files_changed = bool(missing or extra)
        elif not os.path.isdir(self.path):
            raise OsPackageRepoError('%s does not exist' % self.path)
        if self.check_mode and files_changed:
            self.actions.append('index %s' % self.path)
        else:
            self.actions.extend(self._index(files_changed))
        if not self.collect:
            self.packages = self._present()
        return dict(changed=bool(self.actions), path=self.path, packages=len(self.packages),
                    downloaded=self.downloaded, removed=self.removed, actions=self.actions)
