"""ChrootProcesses on a recorded /proc layout: which processes count, signals, what survives."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._chroot_processes import (
    ChrootProcessError,
    ChrootProcesses,
    processes_in,
)


def _proc(tmp_path, table):
    """A /proc stand-in: pid -> (root, cmdline argv)."""
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "self").mkdir(exist_ok=True)  # not a pid
    for pid, (root, argv) in table.items():
        folder = proc / str(pid)
        folder.mkdir()
        os.symlink(root, folder / "root")
        (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return proc


ROOT = "/var/lib/warewulf/chroots/compute/rootfs"


@pytest.mark.parametrize(
    ("root", "counted"),
    [
        (ROOT, True),
        (ROOT + "/srv/inner", True),  # a chroot inside the image
        ("/", False),  # a master process, even one working in the bound /opt
        ("/var/lib/warewulf/chroots/compute/rootfs-old", False),  # a sibling with the same prefix
        ("/var/lib/warewulf/chroots/compute", False),
    ],
)
def test_which_processes_count(tmp_path, root, counted):
    proc = _proc(tmp_path, {101: (root, ["sleep", "600"])})
    found = processes_in([ROOT + "/"], str(proc))
    assert found == ([{"pid": 101, "root": ROOT, "cmdline": "sleep 600"}] if counted else [])


class Signals:
    """Records signals; a pid ends on SIGTERM unless stubborn, on SIGKILL unless unkillable."""

    def __init__(self, proc, stubborn=(), unkillable=()):
        self.proc, self.stubborn, self.unkillable = proc, set(stubborn), set(unkillable)
        self.sent = []

    def kill(self, pid, signum):
        self.sent.append((pid, signum))
        if not (self.proc / str(pid)).exists():
            raise ProcessLookupError(pid)
        if signum == signal.SIGTERM and pid in self.stubborn | self.unkillable:
            return
        if signum == signal.SIGKILL and pid in self.unkillable:
            return
        shutil.rmtree(self.proc / str(pid))


class Clock:
    def __init__(self):
        self.now = 0.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _run(proc, signals, check_mode=False, timeout=3):
    clock = Clock()
    logic = ChrootProcesses([ROOT], timeout, check_mode, proc=str(proc), kill=signals.kill, sleep=clock.sleep, clock=clock.time)
    return logic.run(), clock


def test_nothing_inside_changes_nothing(tmp_path):
    proc = _proc(tmp_path, {1: ("/", ["init"])})
    signals = Signals(proc)
    result = _run(proc, signals)[0]
    assert result == {"changed": False, "processes": [], "actions": [], "killed": []}
    assert signals.sent == []


def test_sigterm_is_enough(tmp_path):
    proc = _proc(tmp_path, {1: ("/", ["init"]), 200: (ROOT, ["/usr/bin/nvidia-persistenced"])})
    signals = Signals(proc)
    result, clock = _run(proc, signals)
    assert result["changed"] is True and result["killed"] == []
    assert result["actions"] == [f"stop 200 (/usr/bin/nvidia-persistenced) running in {ROOT}"]
    assert signals.sent == [(200, signal.SIGTERM)]
    assert clock.now == 0.0  # gone at the first look


def test_stubborn_process_gets_sigkill_after_the_timeout(tmp_path):
    proc = _proc(tmp_path, {200: (ROOT, ["daemon"]), 201: (ROOT, ["sleep", "1"])})
    signals = Signals(proc, stubborn=[200])
    result, clock = _run(proc, signals, timeout=3)
    assert result["killed"] == [200]
    assert signals.sent == [(200, signal.SIGTERM), (201, signal.SIGTERM), (200, signal.SIGKILL)]
    assert 3.0 <= clock.now < 3.5


def test_check_mode_sends_nothing(tmp_path):
    proc = _proc(tmp_path, {200: (ROOT, ["daemon"])})
    signals = Signals(proc)
    result = _run(proc, signals, check_mode=True)[0]
    assert result["changed"] is True and [p["pid"] for p in result["processes"]] == [200]
    assert signals.sent == [] and (proc / "200").exists()


def test_a_process_that_survives_sigkill_fails_naming_it(tmp_path):
    proc = _proc(tmp_path, {200: (ROOT, ["stuck", "in", "D"])})
    signals = Signals(proc, unkillable=[200])
    with pytest.raises(ChrootProcessError) as failed:
        _run(proc, signals)
    assert failed.value.msg == f"processes still running inside the images after SIGKILL: 200 (stuck in D) in {ROOT}"
    assert failed.value.processes[0]["pid"] == 200


def test_a_process_gone_before_the_signal_is_fine(tmp_path):
    proc = _proc(tmp_path, {200: (ROOT, ["short"])})

    def kill(pid, signum):
        shutil.rmtree(proc / str(pid), ignore_errors=True)
        raise ProcessLookupError(pid)

    clock = Clock()
    result = ChrootProcesses([ROOT], 3, False, proc=str(proc), kill=kill, sleep=clock.sleep, clock=clock.time).run()
    assert result["changed"] is True and result["killed"] == []
