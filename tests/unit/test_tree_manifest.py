"""tests/bench/tree_manifest.py: the file-by-file comparison of the air-gapped rebuild must see every difference."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "tree_manifest.py"


def manifest(root: Path, *exclude: str) -> list:
    args = [sys.executable, str(SCRIPT), str(root)]
    for rel in exclude:
        args += ["--exclude", rel]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def make(root: Path) -> Path:
    (root / "a" / ".git").mkdir(parents=True)
    (root / "a" / ".git" / "index").write_bytes(b"stat data")
    (root / "a" / "f.py").write_text("print(1)\n")
    (root / "a" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "a" / "run.sh", 0o755)
    os.symlink("f.py", root / "a" / "link")
    return root


def test_entries_and_exclusion(tmp_path):
    entries = manifest(make(tmp_path / "one"), "a/.git")
    assert [e["path"] for e in entries] == ["a", "a/f.py", "a/link", "a/run.sh"]
    by_path = {e["path"]: e for e in entries}
    assert by_path["a/link"]["type"] == "link" and by_path["a/link"]["target"] == "f.py"
    assert by_path["a/run.sh"]["mode"] == "0755" and by_path["a/f.py"]["size"] == 9
    assert len(by_path["a/f.py"]["sha256"]) == 64
    assert "a/.git/index" in [e["path"] for e in manifest(tmp_path / "one")]


def test_same_trees_same_manifest_and_each_difference_shows(tmp_path):
    one, two = make(tmp_path / "one"), make(tmp_path / "two")
    assert manifest(one) == manifest(two)
    (two / "a" / "f.py").write_text("print(2)\n")  # same size, other bytes
    os.chmod(two / "a" / "run.sh", 0o744)
    os.unlink(two / "a" / "link")
    os.symlink("run.sh", two / "a" / "link")
    first, second = manifest(one), manifest(two)
    assert {e["path"] for e in second if e not in first} == {"a/f.py", "a/run.sh", "a/link"}


def test_not_a_folder(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nowhere")], capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "is not a folder" in run.stderr
