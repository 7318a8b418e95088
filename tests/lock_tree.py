"""Test stand-in: a small install root laid out as the roles leave it (records, venv metadata,
wheelhouse, model folders, a git checkout) for the deploy_lock and bundle tests; fake bytes, real git."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PY_VERSION = "3.11.2"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_AUTHOR_DATE": "2023-09-01T00:00:00Z", "GIT_COMMITTER_DATE": "2023-09-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}

# (METADATA Name, version, wheel file name or None, source)
PACKAGES = [
    ("PyYAML", "6.0.1", "PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "wheelhouse"),
    ("Markdown", "3.4.4", "Markdown-3.4.4-py3-none-any.whl", "wheelhouse"),
    ("auto_gptq", "0.4.2+cu117", "auto_gptq-0.4.2+cu117-cp311-cp311-linux_x86_64.whl", "wheelhouse"),
    ("pip", "23.0.1", "pip-23.0.1-py3-none-any.whl", "ensurepip"),
]

LFS_BYTES = b"weights " * 4096
CONFIG_BYTES = b'{"model_type": "llama"}\n'


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git(*args: str, cwd: Path | str | None = None) -> str:
    env = dict(os.environ)
    env.update(GIT_ENV)
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Tree:
    """Paths and expected values of a made install root."""

    root: Path
    tarball: Path
    tarball_sha256: str
    commit: str
    wheels: dict = field(default_factory=dict)
    os_packages: Path | None = None


LOCK_NAME = "8466cf2-py311-x86_64-cu118.txt"
EXTRA_INDEX = "https://download.pytorch.org/whl/cu118"


def make_root(base: Path, with_models: bool = True, untracked_package: bool = False) -> Tree:
    """Lay an install root under base/root, the CPython tarball at base/src, packages at base/os-packages."""
    root = base / "root"
    prefix = root / f"python_{PY_VERSION}"
    (prefix / "bin").mkdir(parents=True)
    src = base / "src"
    src.mkdir()
    tarball = src / f"Python-{PY_VERSION}.tgz"
    tarball.write_bytes(b"fake CPython source tarball\n" * 100)
    tar_sha = sha256(tarball.read_bytes())
    (prefix / ".hpcllm-build.json").write_text(json.dumps({
        "version": PY_VERSION, "sha256": tar_sha, "os_release": "Debian 12",
        "configure_args": [f"--prefix={prefix}", "--with-ensurepip=no"]}, indent=2) + "\n")
    (root / ".hpcllm-os-release").write_text("Debian 12\n")
    bundled = prefix / "lib" / "python3.11" / "ensurepip" / "_bundled"
    bundled.mkdir(parents=True)

    venv = root / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {prefix}/bin\ninclude-system-site-packages = false\nversion = {PY_VERSION}\n")
    os.symlink("lib", venv / "lib64")
    wheelhouse = root / "wheelhouse"
    wheelhouse.mkdir()
    wheels = {}
    packages = list(PACKAGES)
    if untracked_package:
        packages.append(("torch", "2.0.1", None, "none"))
    for name, version, wheel, source in packages:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\nlong description\n")
        if wheel:
            folder = wheelhouse if source == "wheelhouse" else bundled
            data = f"wheel {name} {version}\n".encode() * 50
            (folder / wheel).write_bytes(data)
            wheels[wheel] = sha256(data)
    # a wheel of another version and a file that is no distribution: neither is recorded
    (wheelhouse / "PyYAML-5.4-cp311-cp311-linux_x86_64.whl").write_bytes(b"old")
    (wheelhouse / "README").write_text("not a wheel\n")

    checkout = root / "text-generation-webui"
    checkout.mkdir()
    git("init", "-q", "-b", "main", str(checkout))
    (checkout / "server.py").write_text("print('stand-in')\n")
    git("add", "server.py", cwd=checkout)
    git("commit", "-q", "-m", "one", cwd=checkout)
    (checkout / "README.md").write_text("two\n")
    git("add", "README.md", cwd=checkout)
    git("commit", "-q", "-m", "two", cwd=checkout)
    git("tag", "v0.0-standin", cwd=checkout)
    commit = git("rev-parse", "HEAD", cwd=checkout)
    conf = root / "webui"
    conf.mkdir()
    (conf / "checkout.json").write_text(json.dumps({"repo": "http://mirror.invalid/git/text-generation-webui.git",
                                                    "version": "v0.0-standin", "commit": commit}, indent=2) + "\n")
    (conf / "lock.txt").write_text("PyYAML==6.0.1\n")
    (conf / "lock.sha256").write_text(sha256(b"PyYAML==6.0.1\n") + "\n")
    # as the webui role writes it after installing the lock (here the cu118 one)
    (conf / "torch-gpu.txt").write_text(
        "# written by the webui role\nWEBUI_LOCK=%s\nWEBUI_EXTRA_INDEX=%s\nTORCH_VERSION=2.0.1+cu118\nTORCH_CUDA=11.8\n"
        "TORCH_ARCHS=sm_37 sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90\n" % (LOCK_NAME, EXTRA_INDEX))

    if with_models:
        for kind, name, repo in (("models", "WizardLM_WizardCoder-1B-V1.0", "WizardLM/WizardCoder-1B-V1.0"),
                                 ("loras", "hpcllm-test_LoRA", "hpcllm-test/LoRA")):
            folder = root / kind / name
            (folder / "sub").mkdir(parents=True)
            (folder / "model.safetensors").write_bytes(LFS_BYTES)
            (folder / "sub" / "config.json").write_bytes(CONFIG_BYTES)
            (folder / ".hf_model.json").write_text(json.dumps({
                "format": 1, "repo_id": repo, "revision": "main", "commit": "c" * 40,
                "allow_patterns": None, "ignore_patterns": None, "stale": {},
                "files": {"model.safetensors": {"size": len(LFS_BYTES), "sha256": sha256(LFS_BYTES), "blob_id": None},
                          "sub/config.json": {"size": len(CONFIG_BYTES), "sha256": None, "blob_id": "b" * 40}}}, indent=1))

    os_packages = base / "os-packages"
    (os_packages / "deb").mkdir(parents=True)
    (os_packages / "deb" / "nvidia-kernel-dkms_535.261.03-1_amd64.deb").write_bytes(b"deb " * 1000)
    (os_packages / "Packages").write_text("Package: nvidia-kernel-dkms\n")
    return Tree(root=root, tarball=tarball, tarball_sha256=tar_sha, commit=commit, wheels=wheels, os_packages=os_packages)
