"""RunLock on a recorded /proc layout: owner lookup, a live holder, a stale one, a reused pid."""

from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._run_lock import (
    RunLock,
    RunLockError,
    playbook_process,
)


def _stat(pid, ppid, ticks, comm="python3"):
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    # priority nice threads itrealvalue starttime ...
    fields = ["S", str(ppid)] + ["0"] * 17 + [str(ticks)] + ["0"] * 10
    return f"{pid} ({comm}) " + " ".join(fields) + "\n"


def _proc(tmp_path, table):
    """pid -> (ppid, start ticks, argv)"""
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    for pid, (ppid, ticks, argv) in table.items():
        folder = proc / str(pid)
        folder.mkdir()
        (folder / "stat").write_text(_stat(pid, ppid, ticks, comm="a) b"))  # a name with ") " in it
        (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return proc


TREE = {
    1: (0, 1, ["/sbin/init"]),
    100: (1, 500, ["bash"]),
    200: (100, 900, ["/usr/bin/python3", "/usr/bin/ansible-playbook", "-i", "inventories/site", "site.yml"]),
    210: (200, 950, ["/usr/bin/python3", "/usr/bin/ansible-playbook", "-i", "inventories/site", "site.yml"]),  # a worker
    220: (210, 960, ["/bin/sh", "-c", "python3 module.py"]),
    230: (220, 961, ["python3", "module.py"]),
    300: (1, 1200, ["/usr/bin/python3", "/usr/bin/ansible-playbook", "site.yml", "--check"]),
}


def test_owner_is_the_outermost_playbook_process(tmp_path):
    proc = _proc(tmp_path, TREE)
    assert playbook_process(str(proc), start=230) == 200
    assert playbook_process(str(proc), start=100) is None


def test_take_hold_and_give_back(tmp_path):
    proc = _proc(tmp_path, TREE)
    lock = tmp_path / "run" / "hpcllm.lock"
    taken = RunLock(str(lock), "present", 200, proc=str(proc)).run()
    record = json.loads(lock.read_text())
    assert taken["changed"] is False and taken["holder"] is None and taken["stale"] is False
    assert record["pid"] == 200 and record["start_ticks"] == 900 and "ansible-playbook" in record["cmdline"]
    assert RunLock(str(lock), "present", 200, proc=str(proc)).run()["holder"]["pid"] == 200  # already ours
    RunLock(str(lock), "absent", 200, proc=str(proc)).run()
    assert lock.read_text() == ""  # emptied, not removed: its folder does not change
    again = RunLock(str(lock), "present", 300, proc=str(proc)).run()
    assert again["holder"] is None and again["stale"] is False
    assert json.loads(lock.read_text())["pid"] == 300


def test_a_second_run_stops_naming_the_first(tmp_path):
    proc = _proc(tmp_path, TREE)
    lock = tmp_path / "hpcllm.lock"
    RunLock(str(lock), "present", 200, proc=str(proc)).run()
    before = lock.read_text()
    with pytest.raises(RunLockError) as refused:
        RunLock(str(lock), "present", 300, proc=str(proc)).run()
    assert refused.value.msg.startswith(f"another run holds {lock}: pid 200, started ")
    assert "(/usr/bin/python3 /usr/bin/ansible-playbook -i inventories/site site.yml)" in refused.value.msg
    assert "this run stopped before changing anything" in refused.value.msg
    RunLock(str(lock), "absent", 300, proc=str(proc)).run()  # not its lock: left alone
    assert lock.read_text() == before


@pytest.mark.parametrize("gone", ["no-process", "pid-reused"])
def test_a_stale_lock_is_taken_over(tmp_path, gone):
    proc = _proc(tmp_path, TREE)
    lock = tmp_path / "hpcllm.lock"
    stale = {"pid": 999 if gone == "no-process" else 100, "start_ticks": 42, "cmdline": "ansible-playbook site.yml", "started": "then"}
    lock.write_text(json.dumps(stale))
    result = RunLock(str(lock), "present", 300, proc=str(proc)).run()
    assert result["stale"] is True and result["holder"] == stale
    assert json.loads(lock.read_text())["pid"] == 300


def test_check_mode_refuses_the_same_and_writes_nothing(tmp_path):
    proc = _proc(tmp_path, TREE)
    lock = tmp_path / "hpcllm.lock"
    RunLock(str(lock), "present", 300, proc=str(proc), check_mode=True).run()
    assert not lock.exists()
    RunLock(str(lock), "present", 200, proc=str(proc)).run()
    with pytest.raises(RunLockError):
        RunLock(str(lock), "present", 300, proc=str(proc), check_mode=True).run()


def test_taking_and_giving_back_leaves_the_folder_alone(tmp_path):
    """Warewulf follows an image's /var/run -> /run: the lock's folder must not change on every run."""
    proc = _proc(tmp_path, TREE)
    folder = tmp_path / "run"
    folder.mkdir()
    lock = folder / "hpcllm.lock"
    RunLock(str(lock), "present", 200, proc=str(proc)).run()
    RunLock(str(lock), "absent", 200, proc=str(proc)).run()
    before = os.stat(folder).st_ctime_ns
    time.sleep(0.02)
    RunLock(str(lock), "present", 300, proc=str(proc)).run()
    RunLock(str(lock), "absent", 300, proc=str(proc)).run()
    assert os.stat(folder).st_ctime_ns == before


def test_a_symlink_in_place_of_the_lock_is_refused(tmp_path):
    proc = _proc(tmp_path, TREE)
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    lock = tmp_path / "hpcllm.lock"
    lock.symlink_to(target)
    with pytest.raises(OSError):
        RunLock(str(lock), "present", 300, proc=str(proc)).run()
    assert target.read_text() == "precious\n"


def test_an_unreadable_lock_is_stale(tmp_path):
    proc = _proc(tmp_path, TREE)
    lock = tmp_path / "hpcllm.lock"
    lock.write_text("{not json")
    assert RunLock(str(lock), "present", 300, proc=str(proc)).run()["stale"] is True
    assert json.loads(lock.read_text())["pid"] == 300
