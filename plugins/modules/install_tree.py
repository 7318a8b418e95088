#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: install_tree
short_description: Refuse an install root another account can change; give it its owner and modes
version_added: 0.4.0
description:
  - Root runs code from an install root on every run (the built interpreter, the venv's python and pip, git in the
    checkout). With O(state=checked) the module fails, naming what it found, when anything in the tree is not root's
    or is writable by group or others and is not exactly as the last O(state=owned) pass left it (same inode, change
    time, owner and mode, from a record only root can write, C(<path>/.hpcllm/tree.json)). A file planted or changed
    since by another account is therefore refused, and so is a folder above the tree that another account could use
    to swap it (sticky folders such as C(/tmp) excepted).
  - With O(state=owned) it first makes the same check, then gives every entry O(owner) and O(group), takes write
    access away from group and others, makes everything readable (by everyone, or with O(world_readable=false) by
    the group only), and records what is not root's for the next check.
  - Links are never followed; they are looked at and re-owned themselves.
  - A missing O(path) is not an error (nothing to check or own yet).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: O(state=owned) reports the changes it would make and writes nothing.
  diff_mode:
    support: none
options:
  path:
    description:
      - The install root.
    type: path
    required: true
  state:
    description:
      - V(checked) only checks; V(owned) checks, then sets owners and modes and writes the record.
    type: str
    choices: [checked, owned]
    default: checked
  owner:
    description:
      - User that owns every entry with O(state=owned). Any account other than root can then plant code that root
        runs on the next run, which the next check refuses (but only after it was planted).
    type: str
    default: root
  group:
    description:
      - Group of every entry with O(state=owned). It never gets write access.
    type: str
    default: root
  world_readable:
    description:
      - With O(state=owned), whether everyone may read the tree (V(true)) or only O(owner) and O(group) (V(false)).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Refuse the install root if another account could have planted code in it
  hpcllm.webui.install_tree:
    path: /opt/ai_apps/webui_llama2

- name: Root's, readable by the members of hpcusers only
  hpcllm.webui.install_tree:
    path: /opt/ai_apps/webui_llama2
    state: owned
    group: hpcusers
    world_readable: false
'''

RETURN = r'''
root:
  description: The install root, absolute.
  returned: always
  type: str
  sample: /opt/ai_apps/webui_llama2
offenders:
  description: What another account could have changed (on failure; empty on success).
  returned: always
  type: list
  elements: str
  sample: ["/opt/ai_apps/webui_llama2/venv/lib/python3.11/site-packages/x.pth (owner test, mode 0644: not in the record of the last run)"]
actions:
  description: What O(state=owned) changed (or in check mode would change).
  returned: always
  type: list
  elements: str
  sample: ["give 1520 entries of /opt/ai_apps/webui_llama2 to uid 0, gid 0"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._install_tree import InstallTree
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            state=dict(type='str', choices=['checked', 'owned'], default='checked'),
            owner=dict(type='str', default='root'),
            group=dict(type='str', default='root'),
            world_readable=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    run_module(module, InstallTree)


if __name__ == '__main__':
    main()
