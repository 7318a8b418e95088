# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Warewulf 4 (4.4, 4.5, 4.6) through ``wwctl``: version detection, argument lists per
version, parsers of wwctl's output, and the classes behind the warewulf_image and
warewulf_kernel modules.

The classes first work out what would change, act only outside check mode, and return a
readable list of actions. ``changed`` comes from what wwctl reports (a build that prints
``Skipping (VNFS is current)`` / ``Skipping (Image is current)`` changed nothing).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.hpcllm.webui.plugins.module_utils._command import command_runner, run
from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure
from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf_fs import (
    find_kernels,
    mounts_below,
    newer_than_image,
    parse_mountinfo,
    read_mountinfo,
    volatile_links,
)

DEFAULT_PROVISION_DIR = '/var/lib/warewulf/provision'

_VERSION_RE = re.compile(r'wwctl version:\s*v?(\d+(?:\.\d+)+)(\S*)')
# Beside the built image file while a build has not succeeded (see WarewulfImage).
FAILED_BUILD_SUFFIX = '.hpcllm-build-failed'

_SKIP_RE = re.compile(r'Skipping \((?:VNFS|Image) is current\)')
_LOG_PREFIX_RE = re.compile(r'^\[?(ERROR|WARN|WARNING|SERV|INFO|DEBUG|VERBOSE)\]?\s*:?(\s|$)')
_TABLE_HEADERS = ('CONTAINER NAME', 'IMAGE NAME', 'KERNEL NAME')


class WarewulfError(ModuleFailure):
    """A failure, with the command, rc, stdout and stderr when a command failed."""

    def __init__(self, msg, cmd=None, rc=None, stdout=None, stderr=None, **result):
        if cmd is not None:
            result.update(cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)
        super(WarewulfError, self).__init__(msg, **result)
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class WarewulfLogic(object):
    """What the Warewulf modules share: built from the module with a wwctl runner; its warnings."""

    def __init__(self, module, runner=None):
        self.module = module
        self.params = module.params
        self.runner = runner or WarewulfRunner(module)
        self._warnings = []

    @classmethod
    def from_module(cls, module):
        return cls(module)

    @property
    def warnings(self):
        """The runner's warnings (an unknown version) and the logic's own."""
        return self.runner.warnings + self._warnings


# ---------------------------------------------------------------------------------------
# Parsers


def parse_version(stdout):
    """(full version string, numeric tuple) from the output of ``wwctl version``.

    ``wwctl version:\\t 4.5.8-1.el8`` gives ('4.5.8-1.el8', (4, 5, 8)).
    """
    match = _VERSION_RE.search(stdout or '')
    if not match:
        raise WarewulfError('could not read the Warewulf version from the output of wwctl version', stdout=stdout)
    numbers = tuple(int(part) for part in match.group(1).split('.'))
    return match.group(1) + match.group(2), numbers


def error_lines(text):
    """``ERROR: ...`` lines of text, each once, in order (4.4/4.5 print many errors twice)."""
    found = []
    for line in (text or '').splitlines():
        line = line.strip()
        if line.startswith('ERROR') and line not in found:
            found.append(line)
    return found


def failure_message(cmd, rc, stdout, stderr):
    """A one-line reason: the command, its rc and its ERROR lines (or the tail of its output)."""
    reasons = error_lines(stderr) + [line for line in error_lines(stdout) if line not in error_lines(stderr)]
    if not reasons:
        tail = [line.strip() for line in ((stderr or '') + '\n' + (stdout or '')).splitlines() if line.strip()]
        reasons = tail[-3:]
    command = ' '.join(['wwctl'] + list(cmd[1:])) if cmd else 'wwctl'
    return '{0} failed (rc {1}): {2}'.format(command, rc, '; '.join(reasons) or 'no output')


def _table_rows(stdout):
    for line in (stdout or '').splitlines():
        text = line.strip()
        if not text or set(text) <= set('=-+| '):
            continue
        if _LOG_PREFIX_RE.match(text) or text.upper().startswith(_TABLE_HEADERS):
            continue
        yield text.split()


def parse_image_list(stdout):
    """Image names from ``container list`` (4.4 table, 4.5 names) or ``image list`` (4.6)."""
    return [row[0] for row in _table_rows(stdout)]


def parse_show(stdout):
    """The rootfs path printed by ``container show NAME`` / ``image show NAME``."""
    paths = [line.strip() for line in (stdout or '').splitlines() if line.strip().startswith('/')]
    if not paths:
        raise WarewulfError('no rootfs path in the output of show', stdout=stdout)
    return paths[-1]


def build_skipped(stdout, stderr=''):
    """True when wwctl said the image was current and built nothing."""
    return bool(_SKIP_RE.search((stdout or '') + '\n' + (stderr or '')))


def parse_kernel_list(stdout):
    """Rows of ``kernel list`` (4.4/4.5): KERNEL NAME, KERNEL VERSION, NODES."""
    kernels = []
    for row in _table_rows(stdout):
        kernels.append({
            'name': row[0],
            'version': row[1] if len(row) > 1 else '',
            'nodes': row[2] if len(row) > 2 else '0',
        })
    return kernels


def kernel_import_done(stdout, name):
    """The success line of ``kernel import``: ``NAME: Done`` (4.4), ``NAME: Finished kernel build`` (4.5)."""
    for line in (stdout or '').splitlines():
        line = line.strip()
        if line in ('{0}: Done'.format(name), '{0}: Finished kernel build'.format(name)):
            return True
    return False


# ---------------------------------------------------------------------------------------
# Argument lists per version


class WarewulfCommands(object):
    """wwctl argument lists (without the binary) for one Warewulf version."""

    def __init__(self, version):
        self.version = tuple(version)
        self.is_46 = self.version >= (4, 6)
        self.noun = 'image' if self.is_46 else 'container'
        self.has_kernel_command = not self.is_46
        self.has_server_command = not self.is_46
        self.import_builds = self.version < (4, 5)
        self.newest_kernel_only = (4, 5) <= self.version < (4, 6)
        self.image_dir = 'images' if self.is_46 else 'container'
        self.show_checks_name = self.version >= (4, 5)

    @staticmethod
    def version_args():
        return ['version']

    def list_images(self):
        return [self.noun, 'list']

    def show(self, name):
        return [self.noun, 'show', name]

    def build(self, name, force=False):
        return [self.noun, 'build'] + (['-f'] if force else []) + [name]

    def import_image(self, source, name, build=False):
        args = [self.noun, 'import']
        if build and not self.import_builds:
            args.append('-b')
        return args + [source, name]

    def kernel_list(self):
        self._need_kernel()
        return ['kernel', 'list']

    def kernel_import(self, kernel_version, name=None, image=None, set_default=False):
        """``kernel import [-C IMAGE] [--setdefault] KVER [NAME]``: without image it takes the master's kernel."""
        self._need_kernel()
        args = ['kernel', 'import']
        if image:
            args += ['-C', image]
        if set_default:
            args.append('--setdefault')
        args.append(kernel_version)
        if name:
            args.append(name)
        return args

    @staticmethod
    def configure_all():
        return ['configure', '--all']

    @staticmethod
    def overlay_build():
        return ['overlay', 'build']

    def server_restart(self):
        if not self.has_server_command:
            raise WarewulfError('Warewulf 4.6 has no wwctl server restart: restart the warewulfd service')
        return ['server', 'restart']

    def image_file(self, provision_dir, name):
        """Where wwctl writes the built image: provision/container/NAME.img (4.6 provision/images/)."""
        return os.path.join(provision_dir, self.image_dir, name + '.img')

    def _need_kernel(self):
        if not self.has_kernel_command:
            raise WarewulfError('Warewulf 4.6 has no wwctl kernel command: nodes boot the kernel found in the image')


# ---------------------------------------------------------------------------------------
# Runner


class WarewulfRunner(object):
    """Runs wwctl as argument lists with LANG=C; raises WarewulfError on a non-zero rc."""

    def __init__(self, module, binary='wwctl'):
        self.module = module
        self._wwctl = command_runner(module, binary)
        self.binary = self._wwctl.binary
        self.version = None
        self.commands = None
        self.warnings = []

    def run(self, args, check=True):
        cmd = [self.binary] + list(args)
        rc, stdout, stderr = run(self._wwctl, args)
        if check and rc != 0:
            raise WarewulfError(failure_message(cmd, rc, stdout, stderr), cmd, rc, stdout, stderr)
        return rc, stdout, stderr

    def detect(self):
        """Read the version (``wwctl version``; ``--version`` fails everywhere) and pick the verbs."""
        dummy, stdout, dummy = self.run(WarewulfCommands.version_args())
        self.version, numbers = parse_version(stdout)
        self.commands = WarewulfCommands(numbers)
        if not (4, 4) <= numbers[:2] <= (4, 6):
            self.warnings.append('Warewulf {0} is not one of the versions this module knows (4.4, 4.5, 4.6); '
                                 'treating it like {1}'.format(self.version, '4.6' if self.commands.is_46 else '4.4/4.5'))
        return self.version

    def images(self):
        dummy, stdout, dummy = self.run(self.commands.list_images())
        return parse_image_list(stdout)

    def rootfs(self, name):
        dummy, stdout, dummy = self.run(self.commands.show(name))
        return parse_show(stdout)

    def lookup(self, name):
        """(rootfs, None) for an existing image, (None, WarewulfError saying why not) for a missing one.

        4.5/4.6 ``show`` exits 255 with ``ERROR: NAME is not a valid container|image`` for an
        unknown name; 4.4 prints a path with rc 0 even then, so 4.4 asks ``container list`` first.
        """
        if self.commands.show_checks_name:
            cmd = [self.binary] + self.commands.show(name)
            rc, stdout, stderr = self.run(self.commands.show(name), check=False)
            if rc == 0:
                return parse_show(stdout), None
            failure = WarewulfError(failure_message(cmd, rc, stdout, stderr), cmd, rc, stdout, stderr)
            if 'is not a valid' not in (stderr or '') + (stdout or ''):
                raise failure
            return None, failure
        if name not in self.images():
            return None, WarewulfError('image {0} is not in the output of wwctl {1} list'.format(name, self.commands.noun))
        return self.rootfs(name), None

    def require_image(self, name):
        """The rootfs of an existing image, or the reason it does not exist."""
        rootfs, missing = self.lookup(name)
        if missing is not None:
            raise missing
        return rootfs


# ---------------------------------------------------------------------------------------
# Image


class WarewulfImage(WarewulfLogic):
    """Ensure an image exists (import when missing) and optionally is built."""

    def __init__(self, module, runner=None, mountinfo=None):
        super(WarewulfImage, self).__init__(module, runner)
        self._mountinfo = mountinfo
        self.actions = []
        self.changed = False
        self.newer = []

    def _mount_points(self):
        if self._mountinfo is not None:
            return parse_mountinfo(self._mountinfo)
        return parse_mountinfo(read_mountinfo())

    def _act(self, description, args):
        self.actions.append(description)
        if not self.module.check_mode:
            return self.runner.run(args)
        return 0, '', ''

    def run(self):
        params = self.params
        name = params['name']
        check = self.module.check_mode
        version = self.runner.detect()
        commands = self.runner.commands
        build_wanted = params['state'] == 'built'
        image_file = commands.image_file(params['provision_dir'], name)

        rootfs, missing = self.runner.lookup(name)
        exists = missing is None
        before = {'name': name, 'exists': exists, 'image_file_exists': exists and os.path.exists(image_file)}
        imported = built = False

        # A failed (or interrupted) build leaves a partial image file newer than the rootfs,
        # which wwctl then takes as current: a record beside the image file, written before
        # each build and removed after a successful one, makes the next run force the build.
        failed_record = image_file + FAILED_BUILD_SUFFIX
        failed_before = os.path.exists(failed_record)
        before['last_build_failed'] = failed_before

        if not exists:
            source = params['source']
            if not source:
                missing.msg = 'image {0} does not exist and no source was given to import it from: {1}'.format(name, missing.msg)
                raise missing
            if source.startswith('/') and not os.path.exists(source):
                raise WarewulfError('source {0} of image {1} does not exist'.format(source, name))
            builds_on_import = build_wanted or commands.import_builds
            description = 'import {0} from {1}{2}'.format(name, source, ' and build it' if builds_on_import else '')
            if builds_on_import and not check:
                self._recorded_build(failed_record, description, commands.import_image(source, name, build=build_wanted))
            else:
                self._act(description, commands.import_image(source, name, build=build_wanted))
            imported = True
            built = builds_on_import
            self.changed = True
            if not check:
                rootfs = self.runner.rootfs(name)

        if build_wanted and not imported:
            mounted = mounts_below(os.path.realpath(rootfs), self._mount_points())
            if mounted:
                raise WarewulfError('refusing to build image {0}: mounted below its rootfs {1}: {2} (unmount them first)'.format(
                    name, rootfs, ', '.join(mounted)))
            force = params['force'] or failed_before
            label = 'build {0}{1}'.format(name, ' (forced: the last build failed)' if failed_before
                                          else ' (forced)' if force else '')
            # what wwctl judges by (ctimes, links followed): the prediction and the reason
            newer = None if force else newer_than_image(rootfs, image_file)
            predicted = force or newer is not None
            self.newer = newer or []
            if newer and any(' -> ' in entry for entry in newer):
                links = volatile_links(rootfs)
                if links:
                    self.runner.warnings.append(
                        'image {0}: {1} resolve{2} into the master\'s /proc, /sys or /dev; Warewulf follows links when '
                        'it judges an image current, so every build rebuilds this image and no run leaves it '
                        'unchanged (a node mounts its own /dev and /run at boot: removing these links from the '
                        'image lets it stay current)'.format(name, ', '.join(links), 's' if len(links) == 1 else ''))
            if check:
                if predicted:
                    self.actions.append(label)
                    built = self.changed = True
            else:
                dummy, stdout, stderr = self._recorded_build(failed_record, None, commands.build(name, force=force))
                if not build_skipped(stdout, stderr):
                    self.actions.append(label)
                    built = self.changed = True

        if self.changed:
            self._cluster_steps()

        after = {'name': name, 'exists': True, 'image_file_exists': before['image_file_exists'] or built,
                 'last_build_failed': failed_before and not built}
        result = {
            'changed': self.changed,
            'name': name,
            'version': version,
            'rootfs': rootfs,
            'image_file': image_file,
            'imported': imported,
            'built': built,
            'actions': self.actions,
            'newer_than_image': self.newer,
            'diff': {'before': before, 'after': after},
        }
        return result

    def _recorded_build(self, record, description, args):
        """Run a command that builds the image with the failure record in place; remove the
        record only when the command succeeded."""
        if description:
            self.actions.append(description)
        folder = os.path.dirname(record)
        if not os.path.isdir(folder):
            os.makedirs(folder, 0o755)
        with open(record, 'w') as handle:
            handle.write('a build of this image started and has not succeeded yet (hpcllm.webui.warewulf_image)\n')
        try:
            result = self.runner.run(args)
        except WarewulfError as exc:
            exc.msg = '{0} (recorded in {1}: the next run forces the build)'.format(exc.msg, record)
            raise
        os.remove(record)
        return result

    def _cluster_steps(self):
        commands = self.runner.commands
        if self.params['configure_all']:
            self._act('wwctl configure --all', commands.configure_all())
        if self.params['overlay_build']:
            self._act('wwctl overlay build', commands.overlay_build())
        if self.params['server_restart']:
            self.restart_server()

    def restart_server(self):
        """``systemctl restart warewulfd``; ``wwctl server restart`` only where systemctl is missing (4.4/4.5)."""
        systemctl = self.module.get_bin_path('systemctl')
        if systemctl:
            self.actions.append('systemctl restart warewulfd')
            if not self.module.check_mode:
                cmd = [systemctl, 'restart', 'warewulfd']
                rc, stdout, stderr = run(command_runner(self.module, systemctl), cmd[1:])
                if rc != 0:
                    raise WarewulfError('systemctl restart warewulfd failed (rc {0}): {1}'.format(rc, stderr.strip()), cmd, rc, stdout, stderr)
            return
        self._act('wwctl server restart', self.runner.commands.server_restart())


# ---------------------------------------------------------------------------------------
# Kernel


class WarewulfKernel(WarewulfLogic):
    """Report the kernels in an image; on 4.4/4.5 import one from the image when asked."""

    def __init__(self, module, runner=None):
        super(WarewulfKernel, self).__init__(module, runner)
        self.actions = []

    def run(self):
        params = self.params
        version = self.runner.detect()
        commands = self.runner.commands
        result = {'changed': False, 'version': version, 'actions': self.actions,
                  'image': params['image'], 'rootfs': None, 'kernels': [], 'kernel_version': None,
                  'kernel_name': None, 'imported_kernels': []}

        if params['from_master']:
            return self._from_master(result)

        if not params['image']:
            raise WarewulfError('image is required unless from_master is true')
        rootfs = self.runner.require_image(params['image'])
        kernels = find_kernels(rootfs)
        result.update(rootfs=rootfs, kernels=kernels)
        wanted = params['kernel_version'] or (kernels[-1] if kernels else None)
        if params['kernel_version'] and params['kernel_version'] not in kernels:
            raise WarewulfError('kernel {0} not found in image {1} (found: {2})'.format(
                params['kernel_version'], params['image'], ', '.join(kernels) or 'none'))
        result['kernel_version'] = wanted

        if not commands.has_kernel_command:
            if params['state'] == 'imported':
                self._warnings.append('Warewulf {0} has no wwctl kernel: nodes boot the kernel found in the image; nothing imported'.format(version))
            return result

        listed = self._kernel_list()
        result['imported_kernels'] = listed
        if params['state'] != 'imported':
            return result
        if wanted is None:
            raise WarewulfError('no kernel found in image {0} (rootfs {1}): nothing to import'.format(params['image'], rootfs))
        if commands.newest_kernel_only and wanted != kernels[-1]:
            raise WarewulfError('Warewulf {0} imports only the newest kernel of an image ({1}); kernel {2} cannot be imported from {3}'.format(
                version, kernels[-1], wanted, params['image']))
        name = params['kernel_name'] or wanted
        result['kernel_name'] = name
        return self._import(result, wanted, name, image=params['image'], listed=listed)

    def _kernel_list(self):
        dummy, stdout, dummy = self.runner.run(self.runner.commands.kernel_list())
        return parse_kernel_list(stdout)

    def _from_master(self, result):
        params = self.params
        commands = self.runner.commands
        if params['state'] != 'imported' or not params['kernel_version']:
            raise WarewulfError('from_master needs state=imported and kernel_version')
        if not commands.has_kernel_command:
            raise WarewulfError('Warewulf {0} has no wwctl kernel: the master\'s kernel cannot be imported'.format(result['version']))
        name = params['kernel_name'] or params['kernel_version']
        listed = self._kernel_list()
        result.update(kernel_version=params['kernel_version'], kernel_name=name, imported_kernels=listed)
        self._warnings.append('importing the master\'s kernel {0}: nodes will not boot the image\'s own kernel and modules'.format(
            params['kernel_version']))
        return self._import(result, params['kernel_version'], name, image=None, listed=listed)

    def _import(self, result, kernel_version, name, image, listed):
        present = [row for row in listed if row['name'] == name]
        if any(row['version'] == kernel_version for row in present):
            return result
        source = 'image {0}'.format(image) if image else 'the master'
        self.actions.append('{0} kernel {1} as {2} from {3}'.format('re-import' if present else 'import', kernel_version, name, source))
        result['changed'] = True
        result['diff'] = {'before': {'kernels': [row['name'] for row in listed]},
                          'after': {'kernels': sorted(set([row['name'] for row in listed] + [name]))}}
        if self.module.check_mode:
            return result
        self.runner.run(self.runner.commands.kernel_import(kernel_version, name, image=image, set_default=self.params['set_default']))
        listed = self._kernel_list()
        result['imported_kernels'] = listed
        if not any(row['name'] == name for row in listed):
            raise WarewulfError('wwctl kernel import ran but kernel {0} is not in wwctl kernel list'.format(name))
        return result


# ---------------------------------------------------------------------------------------
# Info


class WarewulfInfo(WarewulfLogic):
    """Read-only: version, images with rootfs, built image file and kernels, imported kernels."""

    def run(self):
        version = self.runner.detect()
        commands = self.runner.commands
        known = self.runner.images()
        wanted = self.params['names'] or known
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise WarewulfError('unknown images (not in wwctl {0} list): {1}'.format(commands.noun, ', '.join(unknown)))
        images = []
        for name in wanted:
            rootfs = self.runner.rootfs(name)
            image_file = commands.image_file(self.params['provision_dir'], name)
            images.append({
                'name': name,
                'rootfs': rootfs,
                'kernels': find_kernels(rootfs) if os.path.isdir(rootfs) else [],
                'image_file': image_file,
                'image_file_exists': os.path.exists(image_file),
            })
        imported = []
        if commands.has_kernel_command:
            dummy, stdout, dummy = self.runner.run(commands.kernel_list())
            imported = parse_kernel_list(stdout)
        return {'changed': False, 'version': version, 'noun': commands.noun, 'images': images, 'imported_kernels': imported}
