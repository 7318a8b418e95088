"""chroot_processes through ansible-playbook against real processes chrooted into a folder (root needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")

CHILD = textwrap.dedent("""\
    import os, signal, sys, time
    if sys.argv[2] == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.chroot(sys.argv[1])
    os.chdir("/")
    print("in", flush=True)
    time.sleep(600)
""")


def _start(root, mode):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), mode], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"in\n"  # chrooted before the test looks
    return child


PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Stop the processes
      hpcllm.webui.chroot_processes:
        roots: ["{root}"]
        timeout: 1
"""


def test_stops_what_runs_inside_and_nothing_else(ansible_playbook, tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    playbook = tmp_path / "stop.yml"
    playbook.write_text(PLAYBOOK.format(root=root))
    polite = _start(root, "obey")
    stubborn = _start(root, "ignore-term")
    bystander = subprocess.Popen(["sleep", "600"], cwd=root)  # the master's own process, working there
    try:
        predicted = ansible_playbook(playbook, check=True)
        listed = predicted.results("Stop the processes")
        assert listed["changed"] is True
        assert sorted(p["pid"] for p in listed["processes"]) == sorted([polite.pid, stubborn.pid])
        assert polite.poll() is None and stubborn.poll() is None

        run = ansible_playbook(playbook)
        result = run.results("Stop the processes")
        assert result["changed"] is True and result["killed"] == [stubborn.pid]
        assert polite.wait(timeout=10) == -15 and stubborn.wait(timeout=10) == -9
        assert bystander.poll() is None

        again = ansible_playbook(playbook)
        assert again.results("Stop the processes")["changed"] is False
    finally:
        for process in (polite, stubborn, bystander):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_negative_timeout_is_refused(ansible_playbook, tmp_path):
    playbook = tmp_path / "bad.yml"
    playbook.write_text(PLAYBOOK.format(root=tmp_path).replace("timeout: 1", "timeout: -1"))
    run = ansible_playbook(playbook)
    assert run.results("Stop the processes")["msg"] == "timeout must be 0 or more seconds (got -1)"
