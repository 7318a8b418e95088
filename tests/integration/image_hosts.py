"""Helpers for integration tests that reach a podman container as the image host `image`."""

from __future__ import annotations

from pathlib import Path


def write_inventory(tmp_path: Path, name: str, **host_vars) -> str:
    """An inventory with one host, `image`, reached through podman (Ansible's files in /tmp, as on chroot hosts)."""
    host = {"ansible_connection": "containers.podman.podman", "ansible_host": name,
            "ansible_python_interpreter": "/usr/bin/python3", "ansible_remote_tmp": "/tmp/.ansible/tmp", **host_vars}
    path = tmp_path / f"{name}.yml"
    lines = ["---", "all:", "  hosts:", "    image:"] + [f"      {k}: {v!r}" if isinstance(v, str) else
                                                         f"      {k}: {v}" for k, v in host.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def image_result(run, task_name: str) -> dict:
    """The result of a task on the image host, also inside an included role (its name gets the role's prefix)."""
    for play in run.data.get("plays", []):
        for task in play.get("tasks", []):
            if task["task"]["name"].split(" : ")[-1] == task_name and "image" in task["hosts"]:
                return task["hosts"]["image"]
    raise KeyError(task_name)
