"""Fixtures for hf_model integration tests: a local hub with GPTQ-like model repos, playbook writing, tree snapshots."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "hubserver"))

from hubserver import Blob, Hub  # noqa: E402  pylint: disable=wrong-import-position

REPO = "TheBloke/WizardCoder-Tiny-GPTQ"
GPTQ_BRANCH = "gptq-4bit-32g-actorder_True"


def safetensors(tensors: dict[str, tuple[str, list[int]]], seed: int) -> bytes:
    """A valid tiny safetensors file: u64 header length, JSON header, raw tensor bytes."""
    rng = random.Random(seed)
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    sizes = {"F16": 2, "I32": 4, "F32": 4}
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        blobs.append(rng.randbytes(n))
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def tokenizer_files() -> dict[str, bytes]:
    vocab = {f"tok{i}": i for i in range(64)}
    return {
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": []}}).encode(),
        "tokenizer_config.json": json.dumps({"bos_token": "<s>", "eos_token": "</s>", "model_max_length": 16384}).encode(),
        "special_tokens_map.json": json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}).encode(),
        "tokenizer.model": random.Random(7).randbytes(4096),
    }


def main_files(seed: int = 1) -> dict[str, bytes]:
    files = {
        "README.md": b"# WizardCoder tiny (test model)\n",
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "torch_dtype": "float16"}).encode(),
        "generation_config.json": b'{"bos_token_id": 1, "eos_token_id": 2}',
        "model.safetensors": safetensors({"embed.weight": ("F16", [1024, 512]), "lm_head.weight": ("F16", [1024, 512])}, seed),
    }
    files.update(tokenizer_files())
    return files


def gptq_files(seed: int = 2) -> dict[str, bytes]:
    quant = {"bits": 4, "group_size": 32, "damp_percent": 0.1, "desc_act": True, "sym": True, "true_sequential": True,
             "model_file_base_name": "model"}
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "torch_dtype": "float16",
              "quantization_config": dict(quant, quant_method="gptq")}
    files = {
        "README.md": b"# WizardCoder tiny GPTQ (test model)\n",
        "config.json": json.dumps(config).encode(),
        "quantize_config.json": json.dumps(quant).encode(),
        "model.safetensors": safetensors({"qweight": ("I32", [8, 64]), "qzeros": ("I32", [1, 8]), "scales": ("F16", [1, 64])}, seed),
    }
    files.update(tokenizer_files())
    return files


@pytest.fixture
def hub():
    """A started local hub (stopped afterwards) holding REPO with main and the GPTQ branch."""
    server = Hub().start()
    server.create_repo(REPO)
    server.commit(REPO, "main", main_files())
    server.commit(REPO, GPTQ_BRANCH, gptq_files(), parent="main", delete=["generation_config.json"])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hf_env(tmp_path):
    """Environment for ansible-playbook: HF_HOME inside tmp_path, no token or endpoint from the outside."""
    home = tmp_path / "hf_home"
    env = {"HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1"}
    for name in ("HF_TOKEN", "HF_ENDPOINT", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        env[name] = ""
    return env


def write_playbook(path: Path, tasks: list[dict], name: str = "hf_model test") -> Path:
    """A localhost playbook with the given tasks (dicts as in YAML)."""
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    return path


def hf_task(name: str, **args) -> dict:
    extra = {k: args.pop(k) for k in ("ignore_errors", "check_mode", "diff", "register") if k in args}
    task = {"name": name, "hpcllm.webui.hf_model": args}
    task.update(extra)
    return task


def snapshot(root: Path) -> dict:
    """Every path under root with its type, size, mtime and content hash (for 'nothing changed' checks)."""
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else None
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


@contextmanager
def tmpfs(target: Path, options: str):
    """A tmpfs mounted on target (root only), always unmounted again; yields None where mounting is impossible."""
    target.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, check=False
    ).returncode == 0
    try:
        yield target if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(target)], check=False)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


__all__ = ["Blob", "GPTQ_BRANCH", "REPO", "Hub", "gptq_files", "hf_env", "hf_task", "hub", "main_files", "safetensors",
           "sha256_file", "snapshot", "tmpfs", "write_playbook"]
