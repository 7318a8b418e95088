"""The stand-in web UI repository is deterministic: its commit ids are the ones in commits.json."""

import json
import subprocess
from pathlib import Path

STANDIN = Path(__file__).resolve().parents[2] / "tests" / "webui_standin"


def test_make_repo_gives_the_recorded_commits(tmp_path):
    head = subprocess.run([str(STANDIN / "make_repo.sh"), str(tmp_path / "repo"), str(tmp_path / "bare.git")],
                          capture_output=True, text=True, check=True).stdout.split()[-1]
    tag = subprocess.run(["git", "-C", str(tmp_path / "repo"), "rev-parse", "v0.0-standin"],
                         capture_output=True, text=True, check=True).stdout.strip()
    recorded = json.loads((STANDIN / "commits.json").read_text())
    assert {"main": head, "v0.0-standin": tag} == recorded, "tree/ changed: update commits.json"
    # the bare mirror serves the same history over git's dumb HTTP protocol
    refs = (tmp_path / "bare.git" / "info" / "refs").read_text()
    assert f"{head}\trefs/heads/main" in refs


def test_make_repo_refuses_a_non_empty_destination(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("data")
    proc = subprocess.run([str(STANDIN / "make_repo.sh"), str(tmp_path / "x")], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "exists and is not empty" in proc.stderr
