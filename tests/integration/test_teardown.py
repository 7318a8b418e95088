"""chroot_prep's teardown through ansible-playbook against real mounts below two image roots
(root needed): everything below each root goes in one umount, a mount's children first; the
mounts this run made (and what they brought along) are no change, one left by an earlier run
is; a mount that will not go fails the run, named; the master's own mounts are never touched."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")

UNMOUNT = "hpcllm.webui.chroot_prep : Unmount, deepest first"

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Note the mounts this run made (prepare does it for a real run)
      ansible.builtin.set_fact:
        _chroot_prep_mounted_here: {here}

    - name: Tear down
      ansible.builtin.include_role:
        name: hpcllm.webui.chroot_prep
        tasks_from: teardown
      vars:
        chroot_prep_use_wwctl: "false"
        chroot_prep_images:
          - {{name: a, rootfs: "{root_a}"}}
          - {{name: b, rootfs: "{root_b}"}}
"""


def _mounts() -> list[str]:
    out = subprocess.run(["findmnt", "--json", "--list", "--output", "TARGET"],
                         capture_output=True, text=True, check=True).stdout
    return [fs["target"] for fs in json.loads(out)["filesystems"]]


def _tmpfs(path):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hpcllm-test", str(path)], check=True)


@pytest.fixture
def roots(tmp_path):
    root_a, root_b, beside = tmp_path / "a" / "rootfs", tmp_path / "b" / "rootfs", tmp_path / "a" / "rootfs-old"
    for root in (root_a, root_b, beside):
        root.mkdir(parents=True)
    yield root_a, root_b, beside
    for target in reversed(_mounts()):
        if target.startswith(str(tmp_path) + "/"):
            subprocess.run(["umount", "-l", target], check=False)


def _playbook(tmp_path, root_a, root_b, here):
    playbook = tmp_path / "teardown.yml"
    playbook.write_text(PLAYBOOK.format(here=json.dumps([str(p) for p in here]), root_a=root_a, root_b=root_b))
    return playbook


def test_unmounts_below_every_root_and_reports_only_what_an_earlier_run_left(ansible_playbook, tmp_path, roots):
    root_a, root_b, beside = roots
    # this run's: a mount with one below it (as /opt with its recursive copies), and one in b
    _tmpfs(root_a / "opt")
    _tmpfs(root_a / "opt" / "sub")
    _tmpfs(root_b / "proc")
    _tmpfs(beside / "keep")  # a folder whose name starts like a root: not below it
    playbook = _playbook(tmp_path, root_a, root_b, [root_a / "opt", root_b / "proc"])

    run = ansible_playbook(playbook)
    assert run.rc == 0, run.stdout
    assert run.results(UNMOUNT)["changed"] is False
    left = [m for m in _mounts() if m.startswith(str(tmp_path) + "/")]
    assert left == [str(beside / "keep")]

    # one left by an interrupted run (this run mounted nothing): a change, and gone
    _tmpfs(root_b / "dev")
    run = ansible_playbook(_playbook(tmp_path, root_a, root_b, []))
    assert run.rc == 0, run.stdout
    assert run.results(UNMOUNT)["changed"] is True
    assert str(root_b / "dev") not in _mounts()

    # nothing below the roots: nothing to do
    run = ansible_playbook(_playbook(tmp_path, root_a, root_b, []))
    assert run.rc == 0 and run.changed() == 0
    assert run.results(UNMOUNT).get("skipped") is True


def test_a_mount_whose_path_has_a_space_goes_too(ansible_playbook, tmp_path, roots):
    """findmnt's raw output spells a space `\\x20`: the teardown read that and umount found no such mount."""
    root_a, root_b = roots[:2]
    _tmpfs(root_a / "srv" / "my data")
    _tmpfs(root_b / "tmp")
    run = ansible_playbook(_playbook(tmp_path, root_a, root_b, []))
    assert run.rc == 0, run.stdout
    assert run.results(UNMOUNT)["changed"] is True
    assert not [m for m in _mounts() if m.startswith(str(tmp_path) + "/")]


def test_a_mount_that_will_not_go_fails_naming_it(ansible_playbook, tmp_path, roots):
    root_a, root_b = roots[:2]
    # b's first: findmnt lists it first, so umount, taking them last first, meets a's first
    _tmpfs(root_b / "tmp")
    _tmpfs(root_a / "opt")
    # a process of the master's own (not chrooted, so the teardown leaves it alone) keeps it busy
    holder = subprocess.Popen(["sleep", "600"], cwd=root_a / "opt")
    try:
        run = ansible_playbook(_playbook(tmp_path, root_a, root_b, [root_a / "opt", root_b / "tmp"]))
        assert run.rc != 0
        result = run.results(UNMOUNT)
        assert result["failed"] is True
        assert f"{root_a / 'opt'}: target is busy" in result["stderr"]
        # umount still took the others
        assert str(root_b / "tmp") not in _mounts()
        assert str(root_a / "opt") in _mounts()
    finally:
        holder.kill()
        holder.wait()
