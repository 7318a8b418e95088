# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of hpcllm.webui.wheel_hashes: a pip lock made fit for ``--require-hashes``.

A lock pins every package; most lines carry the sha256 of the files the index publishes
(``name==version --hash=sha256:...``). Some cannot: wheels fetched from a URL whose
publisher gives no sha256 (GitHub release assets) and wheels from an index whose hashes
could not be taken when the lock was written. For those lines the file already fetched
into the wheelhouse is hashed on first use and its sha256 recorded (trust on first use);
a different file under a recorded name later is refused, naming it. The hashed lock is
the lock with those hashes added, every other line unchanged; pip installs it with
``--require-hashes``.

The record is JSON with sorted keys and no time stamps ({"format": 1, "files": {file
name: sha256}}); entries are never dropped, so a file that leaves the lock and comes back
is still checked against its first fetch.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

from ansible_collections.hpcllm.webui.plugins.module_utils._deploy_lock import (
    index_files,
    normalize_name,
    normalize_version,
    sha256_file,
    write_atomic,
)
from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure

RECORD_FORMAT = 1
# a line pip cannot check by hash in a lock: another file, a constraint file, an editable
_UNHASHABLE_OPTIONS = ('-r', '--requirement', '-c', '--constraint', '-e', '--editable')
_HASH = re.compile(r'^--hash[= ]sha256:([0-9a-f]{64})$')
_PIN = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;,]+)\s*(;.*)?$')
_COMMENT = re.compile(r'(^|\s)#.*$')


class WheelHashesError(ModuleFailure):
    """A failure to report through fail_json."""


def logical_lines(text):
    """[(first physical line number, text)] of a requirements file: continuations joined,
    comments and blank lines dropped."""
    out, parts, start = [], [], None
    for number, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub('', raw).rstrip()
        if start is None:
            start = number
        if line.endswith('\\'):
            parts.append(line[:-1])
            continue
        parts.append(line)
        joined = ' '.join(p.strip() for p in parts if p.strip())
        if joined:
            out.append((start, joined))
        parts, start = [], None
    if parts:
        joined = ' '.join(p.strip() for p in parts if p.strip())
        if joined:
            out.append((start, joined))
    return out


def split_hashes(line):
    """(requirement text, [sha256]) of one logical requirement line."""
    tokens = re.sub(r'--hash\s+', '--hash=', line).split()
    hashes = []
    rest = []
    for token in tokens:
        if token.startswith('--hash'):
            match = _HASH.match(token)
            if not match:
                raise WheelHashesError('%r is not a --hash=sha256:<64 hex digits> option' % token)
            hashes.append(match.group(1))
        else:
            rest.append(token)
    return ' '.join(rest), hashes


def parse_lock(text, lock_path):
    """[{'line', 'text', 'kind': 'option'|'hashed'|'pin', 'name', 'version'}] of a lock."""
    entries = []
    for number, line in logical_lines(text):
        where = '%s line %d (%s)' % (lock_path, number, line)
        if line.startswith('-'):
            option = line.split()[0].split('=', 1)[0]
            if option in _UNHASHABLE_OPTIONS:
                raise WheelHashesError('%s: %s cannot be installed with --require-hashes from a lock; '
                                       'list its packages in the lock itself' % (where, option))
            entries.append({'line': number, 'text': line, 'kind': 'option'})
            continue
        try:
            requirement, hashes = split_hashes(line)
        except WheelHashesError as exc:
            raise WheelHashesError('%s: %s' % (where, exc))
        if hashes:
            entries.append({'line': number, 'text': line, 'kind': 'hashed'})
            continue
        match = _PIN.match(requirement)
        if not match:
            raise WheelHashesError('%s: a line without --hash must pin one version (name==version) so that its '
                                   'wheel can be found and hashed; a URL belongs in the role\'s wheel URLs' % where)
        entries.append({'line': number, 'text': line, 'kind': 'pin',
                        'name': normalize_name(match.group(1)), 'version': normalize_version(match.group(3)),
                        'spec': '%s==%s' % (match.group(1), match.group(3))})
    return entries


def read_record(path):
    if not os.path.exists(path):
        return {}
    try:
        with open(path, 'r') as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        raise WheelHashesError('cannot read the record %s: %s' % (path, exc))
    except ValueError as exc:
        raise WheelHashesError('the record %s is not valid JSON: %s' % (path, exc))
    files = data.get('files') if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get('format') != RECORD_FORMAT:
        raise WheelHashesError('the record %s is not a format %d record ({"format": 1, "files": {...}})'
                               % (path, RECORD_FORMAT))
    return dict(files)


def render_record(files):
    return json.dumps({'format': RECORD_FORMAT, 'files': files}, indent=1, sort_keys=True) + '\n'


class WheelHashes(object):
    """Hash the wheels of the lock's lines without --hash, check them against the record,
    and write the record and the hashed lock when they differ (not in check mode)."""

    def __init__(self, params, check_mode=False, mover=None, hasher=sha256_file):
        self.p = params
        self.check_mode = check_mode
        self.mover = mover
        self.hasher = hasher

    @classmethod
    def from_module(cls, module):
        def mover(src, dest):
            module.atomic_move(src, dest, unsafe_writes=False)
        return cls(module.params, module.check_mode, mover)

    def _read(self, path, what):
        try:
            with open(path, 'r') as handle:
                return handle.read()
        except (IOError, OSError) as exc:
            raise WheelHashesError('cannot read %s %s: %s' % (what, path, exc))

    def run(self):
        lock_path, wheelhouse = self.p['lock'], self.p['wheelhouse']
        record_path, dest = self.p['record'], self.p['dest']
        plan_only = bool(self.p.get('plan_only'))
        entries = parse_lock(self._read(lock_path, 'the lock'), lock_path)
        files = index_files(wheelhouse)
        before = read_record(record_path)
        record = dict(before)
        recorded, missing, hashed, out = [], [], {}, []
        for entry in entries:
            if entry['kind'] != 'pin':
                out.append(entry['text'])
                continue
            paths = [p for p in files.get((entry['name'], entry['version']), []) if p.endswith('.whl')]
            if not paths:
                if self.check_mode or plan_only:  # not fetched yet: its first fetch will be recorded
                    missing.append(entry['spec'])
                    out.append(entry['text'])
                    continue
                raise WheelHashesError(
                    '%s (%s line %d) has no --hash in the lock and no wheel in %s: it is hashed and recorded from '
                    'the wheelhouse on first fetch, so it must be fetched there first (from its URL or the index)'
                    % (entry['spec'], lock_path, entry['line'], wheelhouse))
            digests = []
            for path in paths:
                name = os.path.basename(path)
                digest = self.hasher(path)
                known = record.get(name)
                if known is not None and known != digest:
                    raise WheelHashesError(
                        '%s (%s) is not the file first fetched under that name: its sha256 is %s, %s recorded %s. '
                        'Remove the file to fetch it again; if the new file is the one to trust, remove its entry '
                        'from the record too' % (path, entry['spec'], digest, record_path, known))
                if known is None:
                    record[name] = digest
                    recorded.append(name)
                digests.append(digest)
            hashed[entry['spec']] = digests
            out.append(entry['text'] + ''.join(' --hash=sha256:%s' % d for d in digests))
        # no paths in it: the same lock and wheels give the same bytes on any master (an
        # air-gapped rebuild is compared with its origin file by file)
        text = '# The lock as pip installs it (--require-hashes): the sha256 of each wheel the lock gives\n' \
               '# none for is added, as recorded on its first fetch into the wheelhouse.\n%s\n' % '\n'.join(out)
        dest_before = self._read(dest, 'the hashed lock') if os.path.exists(dest) else None
        actions = []
        if recorded:
            actions.append('record the sha256 of %s in %s' % (', '.join(sorted(recorded)), record_path))
        if missing:
            actions.append('fetch and record %s' % ', '.join(missing))
        if dest_before != text and not missing:
            actions.append('write %s' % dest)
        result = {
            'changed': bool(actions) and not plan_only,
            'missing': missing,
            'dest': dest,
            'record': record_path,
            'recorded': sorted(recorded),
            'hashed': hashed,
            'actions': actions,
        }
        if actions and not self.check_mode and not plan_only:
            for path in (record_path, dest):
                if not os.path.isdir(os.path.dirname(path) or '.'):
                    raise WheelHashesError('the folder of %s does not exist' % path)
            if recorded:
                write_atomic(record_path, render_record(record), self.mover)
            if dest_before != text:
                write_atomic(dest, text, self.mover)
        return result
