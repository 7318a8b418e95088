"""Benchmark: model bytes on disk divided by model bytes, hf_model vs the seed's `git lfs clone`. Not a test.

Measured side by side in one run, from the same files (random, incompressible content):
  - hf_model (through ansible-playbook) downloading the repo from the local hub stand-in
    (tests/hubserver) into a folder, the way the models role does;
  - `git clone` of a local bare repository whose large files are in Git LFS (git-lfs from Debian,
    served by its built-in standalone file transfer for file:// remotes), the way the seed did
    `git lfs clone` from huggingface.co.
"On disk" is the allocated size (st_blocks) of every file under the destination folder, bookkeeping
included (hf_model's manifest; git's .git with its LFS object store). "Model bytes" is the sum of the
model's file sizes.

Usage: .venv/bin/python bench/bench_model_disk.py [--mib N] [--workdir DIR]
Run by `make bench`; needs git and git-lfs on PATH (apt-get install git-lfs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hubserver"))

from hubserver import Blob, Hub  # noqa: E402  pylint: disable=wrong-import-position
from bench_hf_model import collections_path, disk_bytes, timed  # noqa: E402  pylint: disable=wrong-import-position

VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024
REPO = "hpcllm-bench/WizardCoder-Disk"


def make_files(store: Path, mib: int) -> dict[str, Path]:
    """A model's files: two safetensors shards (3/4 and 1/4 of `mib`), a tokenizer model, small JSON files."""
    store.mkdir(parents=True)
    rng = random.Random(20230920)
    sizes = {
        "model-00001-of-00002.safetensors": mib * MIB * 3 // 4,
        "model-00002-of-00002.safetensors": mib * MIB // 4,
        "tokenizer.model": 500_000,
    }
    files = {}
    for name, size in sizes.items():
        path = store / name
        with open(path, "wb") as fh:
            left = size
            while left:
                n = min(left, 4 * MIB)
                fh.write(rng.randbytes(n))
                left -= n
        files[name] = path
    small = {
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "torch_dtype": "float16"}),
        "tokenizer_config.json": '{"model_max_length": 16384}',
        "generation_config.json": '{"bos_token_id": 1, "eos_token_id": 2}',
        "README.md": "# disk benchmark model\n",
    }
    for name, text in small.items():
        (store / name).write_text(text)
        files[name] = store / name
    return files


def with_hf_model(work: Path, hub: Hub, dest: Path) -> float:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path()),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        HF_HOME=str(work / "hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("HF_TOKEN", None)
    task = {"hpcllm.webui.hf_model": {"repo_id": REPO, "dest": str(dest), "endpoint": hub.url}}
    play = work / "play.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    return timed([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)], env)


def with_git_lfs(work: Path, files: dict[str, Path], dest: Path) -> float:
    """Commit the files to a repository with LFS, push to a local bare repository, time `git clone` of it."""
    home = work / "git-home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
           "LANG": "C", "GIT_TERMINAL_PROMPT": "0"}
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.invalid"), ("init.defaultBranch", "main")):
        timed(["git", "config", "--global", key, value], env)
    timed(["git", "lfs", "install"], env)
    src, bare = work / "lfs-src", work / "lfs-remote.git"
    timed(["git", "init", "-q", str(src)], env)
    # the patterns of the Hub's default .gitattributes for these files
    timed(["git", "-C", str(src), "lfs", "track", "*.safetensors", "*.bin", "*.model"], env)
    for name, path in files.items():
        shutil.copyfile(path, src / name)
    timed(["git", "-C", str(src), "add", "-A"], env)
    timed(["git", "-C", str(src), "commit", "-q", "-m", "model"], env)
    timed(["git", "init", "-q", "--bare", str(bare)], env)
    timed(["git", "-C", str(src), "push", "-q", f"file://{bare}", "main"], env)
    lfs_store = bare / "lfs" / "objects"
    if not lfs_store.is_dir() or not any(lfs_store.rglob("*")):
        raise SystemExit("bench: git lfs did not upload the objects to the bare repository")
    return timed(["git", "clone", "-q", f"file://{bare}", str(dest)], env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="model size in MiB (default 64)")
    parser.add_argument("--workdir", default="/var/tmp", help="parent of the scratch folder (default /var/tmp)")
    opts = parser.parse_args()
    for tool in ("git", "git-lfs"):
        if shutil.which(tool) is None:
            print(f"bench_model_disk: {tool} not found on PATH (apt-get install git git-lfs)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="hpcllm-bench-disk-", dir=opts.workdir))
    hub = Hub().start()
    try:
        files = make_files(work / "store", opts.mib)
        model_bytes = sum(p.stat().st_size for p in files.values())
        hub.create_repo(REPO)
        blobs = {}
        for name, path in files.items():
            blobs[name] = Blob.from_file(str(path), lfs=name.endswith((".safetensors", ".model")))
        hub.commit(REPO, "main", blobs)

        hf_dest, lfs_dest = work / "hf_model" / "model", work / "git_lfs" / "model"
        t_hf = with_hf_model(work, hub, hf_dest)
        t_lfs = with_git_lfs(work, files, lfs_dest)
        for name, path in files.items():
            for dest in (hf_dest, lfs_dest):
                if (dest / name).read_bytes() != path.read_bytes():
                    raise SystemExit(f"bench: {dest / name} differs from the source")
        hf_disk, lfs_disk = disk_bytes(hf_dest), disk_bytes(lfs_dest)
        lfs_objects = disk_bytes(lfs_dest / ".git" / "lfs")

        print(f"Model bytes on disk / model bytes ({len(files)} files, {model_bytes / MIB:.1f} MiB of incompressible data,"
              f" allocated blocks of everything under the destination)")
        print(f"  {'method':<44} {'on disk MiB':>12} {'ratio':>7} {'time s':>7}")
        print(f"  {'hf_model (ansible-playbook, local hub)':<44} {hf_disk / MIB:>12.1f} {hf_disk / model_bytes:>7.3f} {t_hf:>7.2f}")
        print(f"  {'git clone with git-lfs (file:// remote)':<44} {lfs_disk / MIB:>12.1f} {lfs_disk / model_bytes:>7.3f} {t_lfs:>7.2f}")
        print(f"    of which .git/lfs/objects (second copy):    {lfs_objects / MIB:>8.1f} MiB")
        print(f"  git lfs / hf_model: {lfs_disk / hf_disk:.2f}x the disk for the same model")
        return 0
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
