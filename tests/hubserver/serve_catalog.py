# Test stand-in: serves tests/hubserver/hubserver.py with small repos named like the models role's catalog (not the real Hub).
"""Seed a local hub with tiny repos for the models role's catalog and serve it until killed.

usage: serve_catalog.py PORT EXPECTED_JSON [TOKEN]

Repos (a few hundred KB each, deterministic content): the five default catalog repos, the
13B GPTQ one with a branch gptq-4bit-32g-actorder_True (quantize_config.json, other weights),
a LoRA (hpcllm-test/WizardCoder-7B-LoRA) and an extra repo (hpcllm-test/Extra-Model) for the
prune test. WizardLM/WizardCoder-Python-13B-V1.0 is gated with TOKEN when one is given.
EXPECTED_JSON receives {repo: {revision: {"commit": id, "files": {path: sha256}}}} for the tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hubserver import Hub, serve_until_killed  # noqa: E402  pylint: disable=wrong-import-position

GATED = "WizardLM/WizardCoder-Python-13B-V1.0"
GPTQ13 = "TheBloke/WizardCoder-Python-13B-V1.0-GPTQ"
GPTQ_BRANCH = "gptq-4bit-32g-actorder_True"


def blob(seed: str, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def common(repo: str, **config) -> dict:
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "_name_or_path": repo}
    cfg.update(config)
    return {
        "README.md": f"# {repo} (tiny test stand-in)\n".encode(),
        "config.json": json.dumps(cfg, sort_keys=True).encode(),
        "tokenizer_config.json": b'{"bos_token": "<s>", "eos_token": "</s>"}',
        "tokenizer.model": blob(repo + "tok", 8192),
    }


def gptq(repo: str, seed: str, group: int, act: bool) -> dict:
    quant = {"bits": 4, "group_size": group, "desc_act": act, "sym": True, "model_file_base_name": "model"}
    files = common(repo, quantization_config=dict(quant, quant_method="gptq"))
    files["quantize_config.json"] = json.dumps(quant, sort_keys=True).encode()
    files["model.safetensors"] = blob(seed, 300_000)
    return files


def build(hub: Hub, token: str | None) -> dict:
    revs = {}

    def add(repo, branch, files, parent=None, delete=()):
        commit = hub.commit(repo, branch, files, parent=parent, delete=delete)
        revs.setdefault(repo, {})[branch] = commit

    hub.create_repo(GATED, token=token or None)
    files = common(GATED, torch_dtype="float16")
    files.update({"model-00001-of-00002.safetensors": blob("13b-1", 400_000),
                  "model-00002-of-00002.safetensors": blob("13b-2", 200_000),
                  "model.safetensors.index.json": b'{"weight_map": {}}'})
    add(GATED, "main", files)

    repo = "WizardLM/WizardCoder-Python-7B-V1.0"
    hub.create_repo(repo)
    add(repo, "main", dict(common(repo, torch_dtype="float16"), **{"pytorch_model.bin": blob("7b-old", 100_000)}))
    # a second commit on main: the role must fetch the branch head
    add(repo, "main", {"pytorch_model.bin": blob("7b", 350_000), "generation_config.json": b'{"do_sample": false}'})

    hub.create_repo(GPTQ13)
    add(GPTQ13, "main", gptq(GPTQ13, "13b-gptq-main", 128, False))
    add(GPTQ13, GPTQ_BRANCH, gptq(GPTQ13, "13b-gptq-32g", 32, True), parent="main")

    repo = "TheBloke/WizardCoder-Python-7B-V1.0-GPTQ"
    hub.create_repo(repo)
    add(repo, "main", gptq(repo, "7b-gptq", 128, False))

    repo = "WizardLM/WizardCoder-1B-V1.0"
    hub.create_repo(repo)
    add(repo, "main", dict(common(repo, torch_dtype="float32"), **{"pytorch_model.bin": blob("1b", 250_000)}))

    repo = "hpcllm-test/WizardCoder-7B-LoRA"
    hub.create_repo(repo)
    add(repo, "main", {"adapter_config.json": b'{"peft_type": "LORA", "r": 8}',
                       "adapter_model.safetensors": blob("lora", 120_000)})

    repo = "hpcllm-test/Extra-Model"
    hub.create_repo(repo)
    add(repo, "main", dict(common(repo), **{"model.safetensors": blob("extra", 50_000)}))

    expected = {}
    for repo_id, branches in revs.items():
        for branch in branches:
            commit = hub.repos[repo_id].refs[branch]
            files = hub.repos[repo_id].commits[commit]
            expected.setdefault(repo_id, {})[branch] = {
                "commit": commit,
                "files": {path: hashlib.sha256(b.data).hexdigest() for path, b in sorted(files.items())},
            }
    return expected


def main() -> None:
    port, expected_path = int(sys.argv[1]), sys.argv[2]
    token = sys.argv[3] if len(sys.argv) > 3 else None
    hub = Hub()
    expected = build(hub, token)
    serve_until_killed(hub, port, expected_path, expected, f"serving {len(expected)} repos on http://127.0.0.1:{port}")


if __name__ == "__main__":
    main()
