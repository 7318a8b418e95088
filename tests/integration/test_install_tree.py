"""hpcllm.webui.install_tree through ansible-playbook: check mode, idempotence, the refusal and the
argument errors, each message naming what is wrong; a real unprivileged account (nobody) cannot
plant into a tree the module settled."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, runuser)")

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Tree
      hpcllm.webui.install_tree:
        path: "{{ tree_path }}"
        state: "{{ tree_state | default('checked') }}"
        owner: "{{ tree_owner | default('root') }}"
        group: "{{ tree_group | default('root') }}"
"""


@pytest.fixture()
def play(tmp_path):
    path = tmp_path / "play.yml"
    path.write_text(PLAY)
    return path


def make_tree(tmp_path):
    root = tmp_path / "root"
    (root / "venv/lib/site-packages").mkdir(parents=True)
    (root / "venv/lib/site-packages/mod.py").write_text("x = 1\n")
    (root / "venv/lib/site-packages/mod.py").chmod(0o600)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o775)
    tmp_path.chmod(0o755)
    return root


@pytest.fixture()
def open_tmp():
    """A folder other accounts can traverse (pytest's own is root's 0700)."""
    path = tempfile.mkdtemp(prefix="hpcllm-tree-", dir="/var/tmp")
    yield Path(path)
    shutil.rmtree(path)


def test_owned_in_check_mode_then_for_real_then_nothing(ansible_playbook, play, open_tmp):
    root = make_tree(open_tmp)
    check = ansible_playbook(play, {"tree_path": str(root), "tree_state": "owned"}, check=True)
    assert check.rc == 0 and check.changed() == 1, check.stdout
    assert check.results("Tree")["actions"] == [
        f"set the modes of 2 entries of {root} (no write for group and others, readable by all)"]
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o775
    assert not (root / ".hpcllm").exists()
    first = ansible_playbook(play, {"tree_path": str(root), "tree_state": "owned"})
    assert first.rc == 0 and first.changed() == 1, first.stdout
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "venv/lib/site-packages/mod.py").stat().st_mode) == 0o644
    second = ansible_playbook(play, {"tree_path": str(root), "tree_state": "owned"})
    assert second.rc == 0 and second.changed() == 0, second.stdout
    # what the module settled, an unprivileged account reads but cannot plant into
    nobody = ["runuser", "-u", "nobody", "--"]
    assert subprocess.run(nobody + ["cat", str(root / "venv/lib/site-packages/mod.py")], capture_output=True, check=False).returncode == 0
    planted = subprocess.run(nobody + ["sh", "-c", f"echo 'import os' > {root}/venv/lib/site-packages/zz.pth"],
                             capture_output=True, text=True, check=False)
    assert planted.returncode != 0 and "Permission denied" in planted.stderr


def test_a_planted_file_fails_the_check_naming_it(ansible_playbook, play, tmp_path):
    root = make_tree(tmp_path)
    planted = root / "venv/lib/site-packages/zz.pth"
    planted.write_text("import os\n")
    os.chown(planted, 65534, 65534)
    run = ansible_playbook(play, {"tree_path": str(root)})
    assert run.rc != 0
    result = run.results("Tree")
    assert result["offenders"] == [f"{planted} (owner nobody, mode 0644: no record of the last run)"]
    assert result["msg"].startswith(f"install root {root}: root would run code from a tree another account can change")
    # owned refuses it as well: what was planted is never adopted
    owned = ansible_playbook(play, {"tree_path": str(root), "tree_state": "owned", "tree_owner": "nobody"})
    assert owned.rc != 0 and "zz.pth (owner nobody" in owned.results("Tree")["msg"]
    assert planted.stat().st_uid == 65534 and (root / "run.sh").stat().st_uid == 0


@pytest.mark.parametrize(("extra", "message"), [
    ({"tree_owner": "no-such-user-hpcllm"}, "owner: no user 'no-such-user-hpcllm' on this host"),
    ({"tree_group": "no-such-group-hpcllm"}, "group: no group 'no-such-group-hpcllm' on this host"),
    ({"tree_path": "/"}, "path: the install root may not be '/'"),
])
def test_bad_arguments_are_refused_naming_them(ansible_playbook, play, tmp_path, extra, message):
    root = make_tree(tmp_path)
    run = ansible_playbook(play, {"tree_path": str(root), "tree_state": "owned", **extra})
    assert run.rc != 0
    assert run.results("Tree")["msg"] == message
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o775  # nothing changed
