"""Helpers for the Warewulf integration tests: the wwctl test double on PATH, rootfs trees,
docker-save archives, the double's call log, and a bind mount that is always undone."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest

DOUBLE_DIR = Path(__file__).resolve().parents[1] / "wwctl"
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks" / "warewulf"
VERSIONS = ["4.4.1", "4.5.8", "4.6.0"]
VENV_BIN = Path(sys.executable).parent  # the double's `#!/usr/bin/env python` finds this Python first


class WarewulfDouble:
    """One wwctl test double: its version, state folder and the environment that selects it."""

    def __init__(self, version: str, state: Path):
        self.version = version
        self.state = state
        self.noun = "image" if version.startswith("4.6") else "container"

    @property
    def env(self) -> dict:
        return {
            "PATH": os.pathsep.join([str(DOUBLE_DIR), str(VENV_BIN), os.environ["PATH"]]),
            "WWCTL_DOUBLE_VERSION": self.version,
            "WWCTL_DOUBLE_STATE": str(self.state),
        }

    @property
    def provision(self) -> Path:
        return self.state / "provision"

    def rootfs(self, name: str) -> Path:
        return self.state / "chroots" / name / "rootfs"

    def image_file(self, name: str) -> Path:
        return self.provision / ("images" if self.noun == "image" else "container") / f"{name}.img"

    def wwctl(self, *args: str) -> subprocess.CompletedProcess:
        """Run the double directly (test setup), with the same environment a playbook gets."""
        env = dict(os.environ)
        env.update(self.env)
        env["LANG"] = env["LC_ALL"] = "C"
        return subprocess.run([str(DOUBLE_DIR / "wwctl"), *args], capture_output=True, text=True, env=env, check=True)

    def calls(self) -> list[list[str]]:
        log = self.state / "calls.log"
        if not log.exists():
            return []
        return [json.loads(line)["argv"] for line in log.read_text().splitlines()]

    def call_langs(self) -> set:
        log = self.state / "calls.log"
        return {json.loads(line)["env_lang"] for line in log.read_text().splitlines()}

    def mark(self) -> int:
        """How many calls were logged so far (to look at the calls of one run only)."""
        return len(self.calls())


def make_rootfs(path: Path, kernels: tuple[str, ...] = ("6.1.0-9-amd64",), with_sh: bool = True) -> Path:
    """A tiny image tree: bin/sh (empty executable stand-in) and lib/modules/<kver>/vmlinuz."""
    (path / "bin").mkdir(parents=True, exist_ok=True)
    (path / "etc").mkdir(exist_ok=True)
    (path / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    if with_sh:
        sh = path / "bin" / "sh"
        sh.write_text("#!/bin/false\n")
        sh.chmod(0o755)
    for kver in kernels:
        folder = path / "lib" / "modules" / kver
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vmlinuz").write_bytes(b"not a kernel\n")
        (folder / "modules.dep").write_text("")
    return path


def make_docker_save(path: Path, rootfs: Path) -> Path:
    """A `docker save`-shaped archive (manifest.json + one layer) of rootfs."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add(str(rootfs), arcname=".")
    data = layer.getvalue()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["local/test:latest"], "Layers": ["layer0/layer.tar"]}]).encode()
    with tarfile.open(path, mode="w") as tar:
        for name, payload in (("manifest.json", manifest), ("config.json", b"{}"), ("layer0/layer.tar", data)):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


@contextmanager
def bind_mount(source: Path, target: Path):
    """mount --bind source target, always unmounted again; skips the test where mounting is not allowed."""
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot bind mount here: {proc.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
