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
