# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private file-system helpers shared by the collection's module_utils."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

HASH_CHUNK = 4 * 1024 * 1024


def nearest_existing(path):
    """The path itself or its closest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def hash_file(digest, path):
    """Feed the file at path into the hashlib object digest, in chunks; return its hex digest."""
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
