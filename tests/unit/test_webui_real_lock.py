"""tests/webui_real/lock-cpu.txt (the realui scenario's lock) is the shipped lock made for a CPU, and nothing else.

The derivation is tests/webui_real/make_cpu_lock.py's; here it is redone from the shipped lock with the file's own
hashes for the three newer pins, so the CPU lock cannot drift from the shipped one unnoticed, and those three
hashes are checked against the index as the shipped locks' are (tests/unit/roles/test_webui_lock.py).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "webui_real"))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "roles"))

import pytest  # noqa: E402  pylint: disable=wrong-import-position

import lock_hashes  # noqa: E402  pylint: disable=wrong-import-position
import make_cpu_lock  # noqa: E402  pylint: disable=wrong-import-position

CPU_LOCK = make_cpu_lock.OUT.read_text(encoding="utf-8")


def _hashes_in(text, name, version):
    line = next(raw for raw in text.splitlines() if raw.startswith(f"{name}=={version} "))
    return re.findall(r"--hash=sha256:([0-9a-f]{64})", line)


def test_the_cpu_lock_is_the_shipped_lock_made_for_a_cpu():
    shipped = make_cpu_lock.SHIPPED.read_text(encoding="utf-8")
    assert make_cpu_lock.derive(shipped, lambda name, version: _hashes_in(CPU_LOCK, name, version)) == CPU_LOCK


def test_what_the_cpu_lock_leaves_out_and_changes():
    names = {raw.split("==", 1)[0].lower(): raw for raw in CPU_LOCK.splitlines() if "==" in raw and not raw.startswith("#")}
    assert not [n for n in names if n.startswith("nvidia-") or n in {"triton", "torchaudio", "torchvision"}]
    assert not [raw for raw in names.values() if "+cu11" in raw]
    assert names["torch"].startswith(f"torch==2.13.0+cpu --hash=sha256:{make_cpu_lock.TORCH_SHA256} ")
    for name, version in make_cpu_lock.NEWER.items():
        assert names[name].startswith(f"{name}=={version} --hash=sha256:")


def test_the_newer_pins_carry_the_index_hashes():
    for name, version in make_cpu_lock.NEWER.items():
        assert _hashes_in(CPU_LOCK, name, version) == lock_hashes.node_hashes(name, version), name


def test_the_torch_hash_is_the_cpu_wheels_on_this_machine():
    wheel = Path("/opt/wheels") / make_cpu_lock.TORCH_WHEEL
    if not wheel.is_file():
        pytest.skip(f"{wheel} is not on this machine (the bench machines carry it)")
    digest = hashlib.sha256()
    with wheel.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    assert digest.hexdigest() == make_cpu_lock.TORCH_SHA256
