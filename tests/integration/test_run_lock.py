"""run_lock through real ansible-playbook processes: a second run stops at once naming the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import COLLECTIONS_ROOT

HOLD = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Take the lock
      hpcllm.webui.run_lock:
        path: "{lock}"
    - name: Work until told to stop
      ansible.builtin.wait_for:
        path: "{release}"
        timeout: 120
    - name: Give the lock back
      hpcllm.webui.run_lock:
        path: "{lock}"
        state: absent
"""

TAKE = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Take the lock
      hpcllm.webui.run_lock:
        path: "{lock}"
"""


def test_second_run_stops_naming_the_first(ansible_playbook, tmp_path):
    lock, release = tmp_path / "run" / "hpcllm.lock", tmp_path / "release"
    hold = tmp_path / "hold.yml"
    hold.write_text(HOLD.format(lock=lock, release=release))
    take = tmp_path / "take.yml"
    take.write_text(TAKE.format(lock=lock))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT), ANSIBLE_NOCOLOR="1",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCAL_TEMP=str(tmp_path / "first-tmp"))
    first = subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(hold)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while not (lock.exists() and lock.read_text()) and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        record = json.loads(lock.read_text())
        assert record["pid"] == first.pid and "hold.yml" in record["cmdline"]

        check = ansible_playbook(take, check=True)
        second = ansible_playbook(take)
        for run in (check, second):
            msg = run.results("Take the lock")["msg"]
            assert msg.startswith(f"another run holds {lock}: pid {first.pid}, started ")
            assert "hold.yml" in msg and "this run stopped before changing anything" in msg
        assert json.loads(lock.read_text()) == record
    finally:
        release.touch()
        output = first.communicate(timeout=120)[0]
    assert first.returncode == 0, output
    assert lock.read_text() == ""  # given back: emptied, the file stays

    # the first run is gone: its lock, had it stayed, would be stale; the next run takes the lock
    lock.write_text(json.dumps(record))
    later = ansible_playbook(take)
    result = later.results("Take the lock")
    assert result["stale"] is True and result["holder"]["pid"] == first.pid
    assert any("took over the stale lock" in w for w in result.get("warnings", []))
    assert json.loads(lock.read_text())["pid"] != first.pid
