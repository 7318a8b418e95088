"""chroot_prep refuses, before mounting anything, an image whose Python the controller's ansible-core cannot drive.

The image is a minimal root (the host's dash and its libraries) with a stand-in interpreter:
tests/integration/standin-platform-python reports Python 3.6, as EL8's platform-python does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chroot"), reason="chroot needs root")

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Prepare the image
      ansible.builtin.include_role:
        name: hpcllm.webui.chroot_prep
        tasks_from: master
"""


def _mini_root(tmp_path):
    """/bin/sh (the host's dash with its libraries) and EL8's platform-python path with the stand-in."""
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/dash", root / "bin" / "sh")
    for lib in re.findall(r"(/\S+\.so[.\d]*)", subprocess.run(["ldd", "/bin/dash"], capture_output=True, text=True, check=True).stdout):
        target = root / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), target)
    python = root / "usr" / "libexec" / "platform-python"
    python.parent.mkdir(parents=True)
    shutil.copy2(HERE / "standin-platform-python", python)
    return root


def _vars(root, tmp_path, python):
    return {
        "chroot_prep_images": [{"name": "el8", "rootfs": str(root)}],
        "chroot_prep_use_wwctl": "false",
        "chroot_prep_nfs_check": False,
        "chroot_prep_opt_path": str(tmp_path / "opt"),
        "chroot_prep_scratch_dir": str(tmp_path / "scratch"),
        "chroot_prep_pkg_cache_dir": str(tmp_path / "pkg-cache"),
        "chroot_prep_image_python": python,
    }


def _mounts_under(root):
    targets = subprocess.run(["findmnt", "--raw", "--noheadings", "--output", "TARGET"], capture_output=True, text=True, check=True).stdout
    return [line for line in targets.splitlines() if line.startswith(str(root) + "/")]


def _ansible_core():
    import ansible.release
    major, minor = ansible.release.__version__.split(".")[:2]
    return int(major), int(minor)


@pytest.mark.skipif(_ansible_core() < (2, 17), reason="ansible-core 2.16 still manages Python 3.6")
def test_python_36_image_is_refused_naming_what_to_use(ansible_playbook, tmp_path):
    root = _mini_root(tmp_path)
    playbook = tmp_path / "prepare.yml"
    playbook.write_text(PLAYBOOK)
    run = ansible_playbook(playbook, _vars(root, tmp_path, "/usr/libexec/platform-python"))
    assert run.rc != 0
    msg = run.results("hpcllm.webui.chroot_prep : Fail on an image whose Python this ansible-core cannot manage")["results"][0]["msg"]
    core = "{0}.{1}".format(*_ansible_core())
    assert msg.startswith(f"image 'el8': its Python /usr/libexec/platform-python is 3.6, which ansible-core {core}")
    assert "run the playbook with ansible-core 2.16 (the newest that manages Python 3.6)" in msg
    assert msg.endswith("nothing was mounted")
    assert _mounts_under(root) == []
    assert not (tmp_path / "opt").exists()


def test_missing_python_is_refused_naming_the_variable(ansible_playbook, tmp_path):
    root = _mini_root(tmp_path)
    playbook = tmp_path / "prepare.yml"
    playbook.write_text(PLAYBOOK)
    run = ansible_playbook(playbook, _vars(root, tmp_path, "/usr/bin/python3"))
    assert run.rc != 0
    msg = run.results("hpcllm.webui.chroot_prep : Fail on an image without a working Python")["results"][0]["msg"]
    assert msg.startswith("chroot_prep_image_python: image 'el8' has no working Python at /usr/bin/python3 (rc 127")
    assert _mounts_under(root) == []
