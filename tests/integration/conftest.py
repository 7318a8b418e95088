"""Fixtures for integration tests that run real `ansible-playbook` processes.

Each test writes (or names) a playbook, runs it with the collection laid out under
.build/collections, and asserts on the per-task results that the ansible.posix.json
callback prints, plus the raw stdout/stderr (for secrets that must never show up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO_ROOT / ".build" / "collections"
VENV_BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    """What one ansible-playbook process did."""

    rc: int
    stdout: str
    stderr: str
    data: dict = field(default_factory=dict)

    def results(self, task_name: str, host: str = "localhost") -> dict:
        """The result of the named task on host (the last one if the task ran in a loop)."""
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == task_name and host in task["hosts"]:
                    return task["hosts"][host]
        raise KeyError(f"task {task_name!r} did not run on {host}")

    @property
    def stats(self) -> dict:
        return self.data.get("stats", {})

    def changed(self, host: str = "localhost") -> int:
        return self.stats.get(host, {}).get("changed", 0)

    def failed(self, host: str = "localhost") -> int:
        return self.stats.get(host, {}).get("failures", 0)


def _parse_json_stdout(stdout: str) -> dict:
    start = stdout.find("{")
    if start < 0:
        return {}
    try:
        return json.loads(stdout[start:])
    except json.JSONDecodeError:
        return {}


@pytest.fixture
def ansible_playbook(tmp_path):
    """Run ansible-playbook; returns a callable(playbook, extra_vars=None, check=False, ...)."""
    return playbook_runner(tmp_path)


@pytest.fixture(scope="module")
def module_ansible_playbook(tmp_path_factory):
    """ansible_playbook for module-scoped fixtures (one setup shared by a module's tests)."""
    return playbook_runner(tmp_path_factory.mktemp("module-playbook"))


def playbook_runner(tmp_path: Path):
    """The ansible_playbook callable with its files under tmp_path (module-scoped fixtures use it too)."""

    def run(
        playbook: str | Path,
        extra_vars: dict | None = None,
        *,
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        env: dict | None = None,
        json_output: bool = True,
        inventory: str = "localhost,",
        timeout: int = 900,
    ) -> PlaybookRun:
        args = [str(VENV_BIN / "ansible-playbook"), "-i", inventory, "-c", "local", str(playbook)]
        if extra_vars:
            vars_file = tmp_path / f"extra_vars_{os.getpid()}_{len(list(tmp_path.iterdir()))}.json"
            vars_file.write_text(json.dumps(extra_vars))
            args += ["-e", f"@{vars_file}"]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        if verbosity:
            args.append("-" + "v" * verbosity)
        run_env = dict(os.environ)
        run_env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_DEPRECATION_WARNINGS": "0",
                # the module goes to the interpreter's stdin: no temporary files per task
                "ANSIBLE_PIPELINING": "1",
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        if json_output:
            run_env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        if env:
            run_env.update(env)
        proc = subprocess.run(
            args, capture_output=True, text=True, env=run_env, timeout=timeout, check=False
        )
        data = _parse_json_stdout(proc.stdout) if json_output else {}
        return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, data)

    return run
