"""Shared pytest setup: make the checkout importable as ansible_collections.hpcllm.webui."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS_ROOT = REPO_ROOT / ".build" / "collections"


def _link_collection() -> None:
    """Lay the checkout at .build/collections/ansible_collections/hpcllm/webui (a symlink)."""
    link = COLLECTIONS_ROOT / "ansible_collections" / "hpcllm" / "webui"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        tmp = link.with_name(f".webui.{os.getpid()}")
        tmp.symlink_to(REPO_ROOT)
        os.replace(tmp, link)


_link_collection()
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
