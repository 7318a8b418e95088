"""The sha256 of the index's files for the shipped locks' PyPI pins (PEP 691 JSON simple API).

For each pin the lock takes from PyPI, every wheel of that version that installs on
CPython 3.11 on x86_64 Linux with glibc (any manylinux tag: pip on a node with a newer
glibc may pick a newer tag than the resolver here does) or anywhere (pure Python).
Used by test_webui_lock.py, which checks the locks' --hash options against it, and run by
hand to write them after a pin changes:

    .venv/bin/python tests/unit/roles/lock_hashes.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

HERE = Path(__file__).resolve().parent
SIMPLE = os.environ.get("HPCLLM_TEST_PYPI", "https://pypi.org/simple").rstrip("/")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_PLATFORMS = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"] + [
    f"manylinux_2_{minor}_x86_64" for minor in range(5, 50)]
NODE_TAGS = frozenset(cpython_tags((3, 11), platforms=_PLATFORMS)) | frozenset(
    compatible_tags((3, 11), "cp311", platforms=_PLATFORMS))
_LINE = re.compile(r"^(?P<req>[A-Za-z0-9][A-Za-z0-9._-]*==[^\s#]+)(?P<hashes>(\s+--hash=sha256:[0-9a-f]{64})*)"
                   r"(?P<comment>\s+#.*)?$")


def index_files(name: str) -> list[dict]:
    """The files of a project as the index's JSON simple page lists them."""
    request = urllib.request.Request(f"{SIMPLE}/{canonicalize_name(name)}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    kwargs = {}
    if os.path.isfile(CA_BUNDLE):
        import ssl
        kwargs["context"] = ssl.create_default_context(cafile=CA_BUNDLE)
    with urllib.request.urlopen(request, timeout=120, **kwargs) as response:  # noqa: S310 (the index)
        return json.load(response)["files"]


def node_hashes(name: str, version: str) -> list[str]:
    """sorted sha256 of the wheels of name==version that install on the lock's nodes."""
    wanted = Version(version)
    digests = set()
    for entry in index_files(name):
        filename = entry["filename"]
        if not filename.endswith(".whl") or entry.get("yanked"):
            continue
        try:
            wheel_name, wheel_version, _build, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:  # old uploads with names pip does not take either
            continue
        if wheel_name != canonicalize_name(name) or wheel_version != wanted or not tags & NODE_TAGS:
            continue
        digests.add(entry["hashes"]["sha256"])
    return sorted(digests)


def pypi_pins(path: Path, not_pypi: set[str]) -> dict[str, str]:
    """{name: version} of the lock's lines the index serves (not_pypi: canonical names from elsewhere)."""
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(raw.strip())
        if match:
            name, version = match.group("req").split("==", 1)
            if canonicalize_name(name) not in not_pypi:
                pins[name] = version
    return pins


def all_hashes(pins: dict[str, str]) -> dict[str, list[str]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = dict(zip(pins, pool.map(lambda n: node_hashes(n, pins[n]), pins)))
    return found


def write(path: Path, hashes: dict[str, list[str]]) -> None:
    """Rewrite the lock's PyPI lines with their --hash options (comments kept)."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(raw.strip())
        name = match.group("req").split("==", 1)[0] if match else None
        if name in hashes:
            line = match.group("req") + "".join(f" --hash=sha256:{h}" for h in hashes[name])
            out.append(line + (match.group("comment") or ""))
        else:
            out.append(raw)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the hashes into the shipped locks")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import test_webui_lock as t  # the shipped locks and what they take from elsewhere
    for lock in t.LOCKS:
        not_pypi = set(t.url_wheels(lock)) | {n for n, v in t.lock_pins(lock).items() if "+" in v}
        path = t.lock_path(lock)
        hashes = all_hashes(pypi_pins(path, not_pypi))
        empty = sorted(n for n, h in hashes.items() if not h)
        print(f"{path.name}: {len(hashes)} PyPI pins, {sum(map(len, hashes.values()))} hashes, none for {empty}")
        if args.write:
            write(path, hashes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
