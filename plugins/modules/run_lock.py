#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: run_lock
short_description: Let one deployment run at a time work on a Warewulf master
version_added: 0.4.0
description:
  - With O(state=present), takes the lock file O(path) for the C(ansible-playbook) process that runs this module
    (the outermost one among its ancestors, since Ansible runs on the master). The file records that process's pid, its
    start time as the kernel counts it (so a reused pid does not count) and its command line.
  - When another live run holds the lock, fails at once naming its pid, start time and command line.
  - A lock whose process is gone (killed, crashed, a reboot) is stale, taken over, and reported in RV(stale).
  - With O(state=absent), empties the lock if this run holds it; a lock of another run is left alone.
  - The file itself stays between runs. Creating and removing it would change its folder, and Warewulf follows
    symlinks when it decides whether an image changed (a Debian image's C(/var/run) points to the master's C(/run)).
  - Reading, checking and writing the lock happen under C(flock(2)); a symlink in place of the file is refused.
  - Taking and giving back the lock is not a change of the master (C(changed) is always false).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: Checks for another run and fails the same way; writes no file.
  diff_mode:
    support: none
options:
  path:
    description:
      - The lock file on the master.
    type: path
    default: /run/hpcllm-webui.lock
  state:
    description:
      - V(present) takes the lock, V(absent) gives it back.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Must run on the master with the local connection, inside the C(ansible-playbook) run it locks for.
'''

EXAMPLES = r'''
- name: One run at a time
  hpcllm.webui.run_lock:
    path: /run/hpcllm-webui.lock

- name: Give the lock back at the end
  hpcllm.webui.run_lock:
    state: absent
'''

RETURN = r'''
path:
  description: The lock file.
  returned: always
  type: str
  sample: /run/hpcllm-webui.lock
holder:
  description: What the lock file held before this task (V(null) when there was none).
  returned: always
  type: dict
  sample: {"pid": 4242, "start_ticks": 912345, "cmdline": "/usr/bin/python3 /usr/bin/ansible-playbook -i inventories/site site.yml",
           "started": "2026-12-02 10:00:00 UTC"}
stale:
  description: Whether a lock left by a run whose process is gone was taken over.
  returned: always
  type: bool
  sample: false
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module
from ansible_collections.hpcllm.webui.plugins.module_utils._run_lock import RunLock


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', default='/run/hpcllm-webui.lock'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
        ),
        supports_check_mode=True,
    )
    run_module(module, RunLock)


if __name__ == '__main__':
    main()
