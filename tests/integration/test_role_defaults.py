"""Role defaults that follow another role's value, rendered by a real ansible-playbook."""

from __future__ import annotations

import pytest

from conftest import REPO_ROOT

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  vars_files:
    - {defaults}
  tasks:
    - name: Show webui_python
      ansible.builtin.debug:
        msg: "{{{{ webui_python }}}}"
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "/opt/ai_apps/webui_llama2/python_3.11.4/bin/python3.11"),
        ({"python_build_version": "3.11.2"}, "/opt/ai_apps/webui_llama2/python_3.11.2/bin/python3.11"),
        ({"python_build_version": "3.12.1", "hpcllm_install_root": "/opt/x"}, "/opt/x/python_3.12.1/bin/python3.12"),
    ],
)
def test_webui_python_follows_python_build_version(ansible_playbook, tmp_path, extra, expected):
    playbook = tmp_path / "show.yml"
    playbook.write_text(PLAYBOOK.format(defaults=REPO_ROOT / "roles" / "webui" / "defaults" / "main.yml"))
    run = ansible_playbook(playbook, extra)
    assert run.rc == 0, run.stdout
    assert run.results("Show webui_python")["msg"] == expected


LOCK_PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  vars_files:
    - {defaults}
    - {role_vars}
  vars:
    role_path: {role}
  tasks:
    - name: Show the lock settings
      ansible.builtin.debug:
        msg:
          file: "{{{{ webui_lock_file }}}}"
          wheels: "{{{{ webui_wheel_urls | map(attribute='url') | list }}}}"
          extra_index: "{{{{ webui_pip_extra_index_url }}}}"
"""


@pytest.mark.parametrize(("lock", "cuda", "extra_index"), [
    (None, "cu117", ""),
    ("cu117", "cu117", ""),
    ("cu118", "cu118", "https://download.pytorch.org/whl/cu118"),
])
def test_webui_lock_picks_file_wheels_and_index(ansible_playbook, tmp_path, lock, cuda, extra_index):
    role = REPO_ROOT / "roles" / "webui"
    playbook = tmp_path / "lock.yml"
    playbook.write_text(LOCK_PLAYBOOK.format(defaults=role / "defaults" / "main.yml", role_vars=role / "vars" / "main.yml", role=role))
    run = ansible_playbook(playbook, {"webui_lock": lock} if lock else {})
    assert run.rc == 0, run.stdout
    got = run.results("Show the lock settings")["msg"]
    assert got["file"] == str(role / "files" / "locks" / ("8466cf2-py311-x86_64.txt" if cuda == "cu117" else "8466cf2-py311-x86_64-cu118.txt"))
    assert len(got["wheels"]) == 5 and all(f"+{cuda}-" in url for url in got["wheels"])
    assert got["extra_index"] == extra_index


def test_an_unknown_webui_lock_is_refused_naming_it(ansible_playbook, tmp_path):
    playbook = tmp_path / "role.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: hpcllm.webui.webui\n")
    run = ansible_playbook(playbook, {"webui_lock": "cu121", "webui_install_root": str(tmp_path / "root")})
    assert run.rc != 0
    result = run.results("hpcllm.webui.webui : Validating arguments against arg spec 'main' - "
                         "text-generation-webui at a pinned commit, in a venv installed from a shipped lock.")
    assert "value of webui_lock must be one of: cu117, cu118, got: cu121" in result["msg"]
    assert not (tmp_path / "root").exists()


def test_an_unknown_models_no_gpu_is_refused_naming_it(ansible_playbook, tmp_path):
    playbook = tmp_path / "role.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: hpcllm.webui.models\n")
    run = ansible_playbook(playbook, {"models_no_gpu": "gpu-or-bust", "models_install_root": str(tmp_path / "root")})
    assert run.rc != 0
    result = run.results("hpcllm.webui.models : Validating arguments against arg spec 'main' - "
                         "Download the model catalog, link it into the web UI and write the launchers.")
    assert "value of models_no_gpu must be one of: cpu, stop, got: gpu-or-bust" in result["msg"]
    assert not (tmp_path / "root").exists()
