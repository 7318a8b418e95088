# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does Warewulf export a master folder (``/opt``) over NFS and mount it on the nodes?

Sources that count as "mounted on the nodes":
- 4.4/4.5: the folder's entry in ``nfs: export paths:`` of warewulf.conf with ``mount``
  true (Warewulf's default when the key is absent) while ``nfs: enabled`` is true;
- 4.6: an ``fstab`` resource of a profile (or node) in nodes.conf (``mount`` keys of
  warewulf.conf are ignored there, warewulf PRs #1568/#1746);
- any version: an ``etc/fstab`` or ``etc/fstab.ww`` of an overlay that mounts
  ``<server>:<path>`` on ``<path>`` with type nfs or nfs4.
An entry with ``noauto`` (and no ``x-systemd.automount``) is not mounted at boot and does not count.

Changes are line edits of warewulf.conf (comments and layout stay), verified by parsing the
result; when a line edit cannot be verified the file is rewritten from the parsed data.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import os
import posixpath
import re
import tempfile

try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML comes with ansible-core
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf import WarewulfError, WarewulfLogic

DEFAULT_CONF = '/etc/warewulf/warewulf.conf'
DEFAULT_NODES_CONF = '/etc/warewulf/nodes.conf'
DEFAULT_OVERLAYS_DIR = '/var/lib/warewulf/overlays'
DEFAULT_EXPORT_OPTIONS = 'ro,sync,no_root_squash'
DEFAULT_MOUNT_OPTIONS = 'defaults'
NFS_TYPES = ('nfs', 'nfs4')
FSTAB_NAMES = ('fstab', 'fstab.ww')

_TEMPLATE_RE = re.compile(r'\{\{.*?\}\}')


class NfsNotReady(WarewulfError):
    """The folder is not exported or not mounted and the module may not (or cannot) fix it."""

    def __init__(self, msg, result):
        super(NfsNotReady, self).__init__(msg, **result)


# ---------------------------------------------------------------------------------------
# Reading


def norm(path):
    """'/opt/' and '/opt' are the same folder; None for anything that is not a string."""
    if not isinstance(path, str) or not path:
        return None
    return posixpath.normpath(path)


def truthy(value, default):
    """YAML booleans, and the strings Go's YAML parser takes as booleans; default when absent."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('true', 'yes', 'on', 'y', '1')


def read_text(path, option):
    try:
        with open(path, 'r') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if not os.path.exists(path):
            raise WarewulfError('{0} does not exist (option {1})'.format(path, option))
        raise WarewulfError('cannot read {0} (option {1}): {2}'.format(path, option, exc))


def load_yaml(text, path, option):
    """The parsed mapping of a Warewulf YAML file; an error naming the file and the option otherwise."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WarewulfError('cannot parse {0} (option {1}): {2}'.format(path, option, ' '.join(str(exc).split())))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WarewulfError('cannot parse {0} (option {1}): the file is not a YAML mapping'.format(path, option))
    return data


def nfs_section(data):
    section = data.get('nfs')
    return section if isinstance(section, dict) else None


def nfs_enabled(data):
    """``nfs: enabled`` (Warewulf's default is true); False when there is no nfs section."""
    section = nfs_section(data)
    return section is not None and truthy(section.get('enabled'), True)


def find_export(data, path):
    section = nfs_section(data) or {}
    exports = section.get('export paths')
    for entry in exports if isinstance(exports, list) else []:
        if isinstance(entry, dict) and norm(entry.get('path')) == path:
            return entry
    return None


def active_options(options):
    """False for mount options that keep the mount from happening at boot (noauto without automount)."""
    words = [word.strip() for word in str(options or 'defaults').split(',')]
    return 'noauto' not in words or 'x-systemd.automount' in words


def fstab_line_mounts(line, path):
    """True when one fstab(.ww) line mounts <server>:<path> on <path> over NFS at boot."""
    line = _TEMPLATE_RE.sub('TEMPLATE', line).strip()
    if not line or line.startswith('#'):
        return False
    fields = line.split()
    if len(fields) < 3 or ':' not in fields[0]:
        return False
    remote = fields[0].rsplit(':', 1)[1]
    options = fields[3] if len(fields) > 3 else 'defaults'
    return norm(remote) == path and norm(fields[1]) == path and fields[2] in NFS_TYPES and active_options(options)


def fstab_mounts(text, path):
    return any(fstab_line_mounts(line, path) for line in (text or '').splitlines())


def overlay_fstabs(overlays_dir):
    """fstab and fstab.ww files under each overlay's rootfs/etc (and etc, the older layout)."""
    found = []
    if not overlays_dir or not os.path.isdir(overlays_dir):
        return found
    for name in sorted(os.listdir(overlays_dir)):
        for sub in (('rootfs', 'etc'), ('etc',)):
            for fname in FSTAB_NAMES:
                candidate = os.path.join(overlays_dir, name, *(sub + (fname,)))
                if os.path.isfile(candidate):
                    found.append(candidate)
    return found


def overlay_sources(overlays_dir, path):
    sources = []
    for candidate in overlay_fstabs(overlays_dir):
        try:
            with open(candidate, 'r') as handle:
                text = handle.read()
        except (IOError, OSError):
            continue
        if fstab_mounts(text, path):
            sources.append(candidate)
    return sources


def resource_mounts(entry, path):
    """One 4.6 ``resources: fstab:`` entry (spec, file, vfstype, mntops) mounting path at boot."""
    if not isinstance(entry, dict):
        return False
    spec = entry.get('spec')
    if not isinstance(spec, str) or ':' not in spec:
        return False
    return (norm(spec.rsplit(':', 1)[1]) == path and norm(entry.get('file')) == path
            and str(entry.get('vfstype', '')).strip() in NFS_TYPES and active_options(entry.get('mntops')))


def nodes_conf_sources(nodes_data, path):
    """``profile:NAME`` / ``node:NAME`` whose fstab resources mount path (4.6 nodes.conf)."""
    sources = []
    for key, label in (('nodeprofiles', 'profile'), ('nodes', 'node')):
        group = nodes_data.get(key)
        for name in sorted(group) if isinstance(group, dict) else []:
            item = group[name]
            resources = item.get('resources') if isinstance(item, dict) else None
            fstab = resources.get('fstab') if isinstance(resources, dict) else None
            if isinstance(fstab, list) and any(resource_mounts(entry, path) for entry in fstab):
                sources.append('{0}:{1}'.format(label, name))
    return sources


def analyse(data, path, is_46, conf_path, overlays=None, nodes=None):
    """{'exported', 'mounted', 'mounted_by'} from parsed warewulf.conf and the other sources found."""
    entry = find_export(data, path)
    exported = nfs_enabled(data) and entry is not None
    mounted_by = []
    if exported and not is_46 and truthy(entry.get('mount'), True):
        mounted_by.append(conf_path)
    mounted_by.extend(nodes or [])
    mounted_by.extend(overlays or [])
    return {'exported': exported, 'mounted': exported and bool(mounted_by), 'mounted_by': mounted_by}


# ---------------------------------------------------------------------------------------
# Editing


def desired_data(data, path, is_46, mount, export_options, mount_options):
    """A copy of data with nfs enabled and an export entry for path (``mount`` as asked on 4.4/4.5)."""
    wanted = copy.deepcopy(data)
    section = wanted.get('nfs')
    if not isinstance(section, dict):
        section = wanted['nfs'] = {'enabled': True}
    if not truthy(section.get('enabled'), True):
        section['enabled'] = True
    exports = section.get('export paths')
    if not isinstance(exports, list):
        exports = section['export paths'] = []
    entry = find_export(wanted, path)
    if entry is None:
        exports.append(new_entry(path, is_46, mount, export_options, mount_options))
    elif not is_46 and mount and not truthy(entry.get('mount'), True):
        entry['mount'] = True
    return wanted


def new_entry(path, is_46, mount, export_options, mount_options):
    entry = {'path': path, 'export options': export_options}
    if not is_46:
        entry['mount options'] = mount_options
        entry['mount'] = bool(mount)
    return entry


def entry_lines(entry, dash_indent, key_indent):
    """The YAML lines of one new export entry, as a block sequence item."""
    lines = []
    for number, (key, value) in enumerate(entry.items()):
        text = 'true' if value is True else 'false' if value is False else str(value)
        prefix = ' ' * dash_indent + '- ' + ' ' * (key_indent - dash_indent - 2) if number == 0 else ' ' * key_indent
        lines.append('{0}{1}: {2}\n'.format(prefix, key, text))
    return ''.join(lines)


def _get(node, key):
    if not isinstance(node, yaml.MappingNode):
        return None, None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None, None


def _last_end(node):
    if isinstance(node, yaml.MappingNode) and node.value:
        return _last_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value:
        return _last_end(node.value[-1])
    return node.end_mark.index


def _after_line(text, index):
    """Where the line holding index ends (after its newline)."""
    end = text.find('\n', index)
    return len(text) if end < 0 else end + 1


def _is_block(node):
    return isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style


def line_edits(text, path, is_46, mount, export_options, mount_options):
    """(position, end, replacement) edits that give nfs enabled and the export entry; None when
    the file's layout is not one this knows how to edit line by line (flow style, empty file)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not _is_block(root) or not isinstance(root, yaml.MappingNode):
        return None
    entry = new_entry(path, is_46, mount, export_options, mount_options)
    nfs_key, nfs = _get(root, 'nfs')
    if nfs is None:
        block = 'nfs:\n  enabled: true\n  export paths:\n' + entry_lines(entry, 2, 4)
        glue = '' if text.endswith('\n') else '\n'
        return [(len(text), len(text), glue + block)]
    if not _is_block(nfs) or not isinstance(nfs, yaml.MappingNode) or not nfs.value:
        return None
    edits = []
    dummy, enabled = _get(nfs, 'enabled')
    if enabled is not None and not truthy(yaml.safe_load(text[enabled.start_mark.index:enabled.end_mark.index]), True):
        edits.append((enabled.start_mark.index, enabled.end_mark.index, 'true'))
    key_indent = nfs.value[0][0].start_mark.column
    dummy, exports = _get(nfs, 'export paths')
    if exports is None or (isinstance(exports, yaml.ScalarNode) and exports.value in ('', '~', 'null')):
        if exports is not None:
            return None
        where = _after_line(text, _last_end(nfs))
        edits.append((where, where, ' ' * key_indent + 'export paths:\n' + entry_lines(entry, key_indent, key_indent + 2)))
        return edits
    if not _is_block(exports) or not isinstance(exports, yaml.SequenceNode) or not exports.value:
        return None
    for item in exports.value:
        dummy, item_path = _get(item, 'path')
        if item_path is not None and norm(item_path.value) == path:
            dummy, mount_node = _get(item, 'mount')
            if not is_46 and mount and mount_node is not None and not truthy(yaml.safe_load(mount_node.value or 'null'), True):
                edits.append((mount_node.start_mark.index, mount_node.end_mark.index, 'true'))
            return edits
    first = exports.value[0]
    item_indent = first.start_mark.column
    line_start = text.rfind('\n', 0, first.start_mark.index) + 1
    dash = text.find('-', line_start, first.start_mark.index)
    if dash < 0:
        return None
    where = _after_line(text, _last_end(exports))
    edits.append((where, where, entry_lines(entry, dash - line_start, item_indent)))
    return edits


def apply_edits(text, edits):
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0], reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def plan_change(text, data, path, is_46, mount, export_options, mount_options):
    """(new text, method) where method is 'none', 'lines' (line edits, comments kept) or 'rewrite'."""
    wanted = desired_data(data, path, is_46, mount, export_options, mount_options)
    if wanted == data:
        return text, 'none'
    try:
        edits = line_edits(text, path, is_46, mount, export_options, mount_options)
    except yaml.YAMLError:
        edits = None
    if edits:
        candidate = apply_edits(text, edits)
        try:
            if yaml.safe_load(candidate) == wanted:
                return candidate, 'lines'
        except yaml.YAMLError:
            pass
    return yaml.safe_dump(wanted, default_flow_style=False, sort_keys=False), 'rewrite'


def write_file(module, path, text):
    """Write through a temporary file in the same folder and atomic_move (mode and owner kept)."""
    folder = os.path.dirname(path) or '.'
    handle, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=folder)
    try:
        with os.fdopen(handle, 'w') as stream:
            stream.write(text)
        module.atomic_move(tmp, path, unsafe_writes=False)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------
# Instructions


def instructions(path, version, is_46, data, analysis, conf, nodes_conf, overlays_dir, export_options, mount_options):
    """What an administrator changes, in order, to export path and mount it on the nodes."""
    lines = []
    entry = find_export(data, path)
    server = data.get('ipaddr') or '<master address>'
    if not analysis['exported']:
        if not nfs_enabled(data) and nfs_section(data) is not None:
            lines.append('In {0}, set `enabled: true` under `nfs:`.'.format(conf))
        if entry is None:
            lines.append('In {0}, add to `nfs: export paths:`:'.format(conf))
            lines.append('  - path: {0}'.format(path))
            lines.append('    export options: {0}'.format(export_options))
            if not is_46:
                lines.append('    mount options: {0}'.format(mount_options))
                lines.append('    mount: true')
    if not analysis['mounted']:
        if is_46:
            lines.append('Warewulf {0} mounts NFS folders on the nodes through fstab resources of node profiles '
                         '(mount keys of warewulf.conf are ignored). Run `wwctl profile edit default` and add '
                         '(or remove `noauto` from the existing entry):'.format(version))
            lines.append('    resources:')
            lines.append('      fstab:')
            lines.append('        - spec: warewulf:{0}'.format(path))
            lines.append('          file: {0}'.format(path))
            lines.append('          vfstype: nfs')
            lines.append('          mntops: {0}'.format(mount_options))
            if not os.path.exists(nodes_conf):
                lines.append('({0} (option nodes_conf) does not exist.)'.format(nodes_conf))
        elif entry is not None and not truthy(entry.get('mount'), True):
            lines.append('In {0}, change `mount: false` to `mount: true` in the `- path: {1}` entry of `nfs: export paths:`.'.format(conf, path))
        lines.append('Then run: wwctl configure nfs && wwctl overlay build')
        lines.append('Alternative: a site overlay file {0}/<overlay>/rootfs/etc/fstab.ww with the line'.format(overlays_dir))
        lines.append('  {0}:{1} {1} nfs {2} 0 0'.format(server, path, mount_options))
    elif not analysis['exported']:
        lines.append('Then run: wwctl configure nfs')
    if not is_46:
        lines.append('Or let hpcllm.webui.warewulf_nfs do the warewulf.conf part: state=present (role: chroot_prep_nfs_manage=true).')
    return lines


# ---------------------------------------------------------------------------------------
# Module logic


class WarewulfNfs(WarewulfLogic):
    """Check (state=checked) or make sure (state=present) that Warewulf exports path and mounts it on nodes."""

    def __init__(self, module, runner=None):
        super(WarewulfNfs, self).__init__(module, runner)
        self.actions = []

    @classmethod
    def from_module(cls, module):
        if not HAS_YAML:
            from ansible.module_utils.basic import missing_required_lib
            raise WarewulfError(missing_required_lib('PyYAML'), exception=str(YAML_IMPORT_ERROR))
        return cls(module)

    def _sources(self, path, is_46):
        params = self.params
        overlays = overlay_sources(params['overlays_dir'], path)
        nodes = []
        if is_46 and os.path.exists(params['nodes_conf']):
            nodes_data = load_yaml(read_text(params['nodes_conf'], 'nodes_conf'), params['nodes_conf'], 'nodes_conf')
            nodes = nodes_conf_sources(nodes_data, path)
        return overlays, nodes

    def run(self):
        params = self.params
        raw_path = params['path']
        if not raw_path or not raw_path.startswith('/'):
            raise WarewulfError('path must be an absolute path (got {0!r})'.format(raw_path))
        path = norm(raw_path)
        conf = params['conf']
        version = self.runner.detect()
        is_46 = self.runner.commands.is_46
        text = read_text(conf, 'conf')
        data = load_yaml(text, conf, 'conf')
        overlays, nodes = self._sources(path, is_46)
        before = analyse(data, path, is_46, conf, overlays, nodes)

        result = {'changed': False, 'version': version, 'path': path, 'conf': conf, 'method': 'none',
                  'backup_file': None, 'actions': self.actions,
                  'diff': {'before': text, 'after': text, 'before_header': conf, 'after_header': conf}}
        result.update(before)
        if before['exported'] and before['mounted']:
            return result

        def not_ready(analysis, data_now, prefix):
            steps = instructions(path, version, is_46, data_now, analysis, conf, params['nodes_conf'],
                                 params['overlays_dir'], params['export_options'], params['mount_options'])
            result['instructions'] = steps
            return NfsNotReady('{0}\n{1}'.format(prefix, '\n'.join(steps)), result)

        if params['state'] == 'checked':
            missing = [word for word, ok in (('exported over NFS', before['exported']), ('mounted on the nodes', before['mounted'])) if not ok]
            raise not_ready(before, data, 'The master folder {0} is not {1} (Warewulf {2}, {3}). To fix it:'.format(
                path, ' and not '.join(missing), version, conf))

        # state=present: the warewulf.conf part; mount there only when nothing else mounts it
        elsewhere = bool(overlays or nodes)
        new_text, method = plan_change(text, data, path, is_46, not elsewhere, params['export_options'], params['mount_options'])
        new_data = load_yaml(new_text, conf, 'conf') if method != 'none' else data
        after = analyse(new_data, path, is_46, conf, overlays, nodes)
        result.update(after)
        result['method'] = method
        if method != 'none':
            result['changed'] = True
            result['diff']['after'] = new_text
            self.actions.append(self._describe(data, path, is_46, not elsewhere, conf))
            if method == 'rewrite':
                self._warnings.append('{0} was rewritten from its parsed content: its comments and layout are gone '
                                      '(a line edit could not be verified); {1}'.format(
                                          conf, 'the backup keeps them' if params['backup'] else 'set backup=true to keep a copy'))
            if not self.module.check_mode:
                if params['backup']:
                    result['backup_file'] = self.module.backup_local(conf)
                write_file(self.module, conf, new_text)
            self._cluster_steps()
        if not after['mounted']:
            raise not_ready(after, new_data, 'The master folder {0} is {1}but not mounted on the nodes (Warewulf {2}). To fix it:'.format(
                path, 'now exported ' if result['changed'] else 'exported ', version))
        return result

    @staticmethod
    def _describe(data, path, is_46, mount, conf):
        entry = find_export(data, path)
        parts = []
        if nfs_section(data) is not None and not nfs_enabled(data):
            parts.append('enable nfs')
        if entry is None:
            parts.append('add export {0}{1}'.format(path, '' if is_46 else ' (mount: {0})'.format('true' if mount else 'false')))
        elif not is_46 and mount:
            parts.append('set mount: true for export {0}'.format(path))
        if nfs_section(data) is None:
            parts.insert(0, 'add an nfs section')
        return '{0} in {1}'.format(', '.join(parts), conf)

    def _cluster_steps(self):
        steps = []
        if self.params['configure']:
            steps.append(('wwctl configure nfs', ['configure', 'nfs']))
        if self.params['overlay_build']:
            steps.append(('wwctl overlay build', ['overlay', 'build']))
        for description, args in steps:
            self.actions.append(description)
            if not self.module.check_mode:
                self.runner.run(args)
