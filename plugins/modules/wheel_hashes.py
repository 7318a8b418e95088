#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: wheel_hashes
short_description: Make a pip lock installable with --require-hashes, recording first-fetched wheels
version_added: 0.4.0
description:
  - Reads the pip lock O(lock). Lines that carry C(--hash=sha256:...) stay as they are.
  - Each line without a hash must pin one version (C(name==version)); its wheel must already be in O(wheelhouse)
    (fetched from a URL or an index). The wheel's sha256 is compared with O(record), where the sha256 of every such
    file is kept from its first use (trust on first use). A file whose sha256 differs from the recorded one is refused,
    naming it; a file not yet recorded is recorded.
  - Writes O(dest), the lock with the hashes of those wheels added, for C(pip install --require-hashes).
  - Refuses lines pip cannot check by hash from a lock (C(-r), C(-c), C(-e)) and unhashed lines that are not a
    C(name==version) pin, naming the line.
  - Both files are written through a temporary file and moved in place; nothing is written when nothing differs.
  - With O(plan_only=true), only works out which pins still lack their wheel (RV(missing), for the caller to fetch) and
    what would be recorded; writes nothing and reports no change. A recorded file that changed is refused all the same.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: Reports what would be recorded and written; a wheel not yet fetched is reported, not refused.
  diff_mode:
    support: none
options:
  lock:
    description: The pip lock (requirements file) to read.
    type: path
    required: true
  wheelhouse:
    description: The folder the lines without a hash take their wheels from.
    type: path
    required: true
  record:
    description: JSON record of the sha256 of each wheel hashed here, by file name (kept between runs).
    type: path
    required: true
  dest:
    description: Where the hashed lock is written.
    type: path
    required: true
  plan_only:
    description: Report the pins whose wheel is not in O(wheelhouse) yet instead of failing, and write nothing.
    type: bool
    default: false
notes:
  - Trust on first use protects what was fetched once from being swapped later (a wheel re-fetched from a URL that now
    serves another file, a file replaced in the wheelhouse). It cannot vouch for the first fetch; give a sha256 where the
    publisher gives one.
'''

EXAMPLES = r'''
- name: Hash the lock's URL wheels and write the lock pip installs with --require-hashes
  hpcllm.webui.wheel_hashes:
    lock: /opt/ai_apps/webui_llama2/webui/lock.txt
    wheelhouse: /opt/ai_apps/webui_llama2/wheelhouse
    record: /opt/ai_apps/webui_llama2/webui/wheel-sha256.json
    dest: /opt/ai_apps/webui_llama2/webui/lock-hashed.txt
'''

RETURN = r'''
dest:
  description: The hashed lock.
  returned: always
  type: str
  sample: /opt/ai_apps/webui_llama2/webui/lock-hashed.txt
record:
  description: The record of first-fetched wheels.
  returned: always
  type: str
  sample: /opt/ai_apps/webui_llama2/webui/wheel-sha256.json
missing:
  description: The pins without a hash whose wheel is not in O(wheelhouse) (check mode and O(plan_only) only).
  returned: always
  type: list
  elements: str
  sample: ["torch==2.0.1+cu118"]
recorded:
  description: File names recorded by this run (first use).
  returned: always
  type: list
  elements: str
  sample: [auto_gptq-0.4.2+cu117-cp311-cp311-linux_x86_64.whl]
hashed:
  description: The sha256 added to each pin without a hash in the lock.
  returned: always
  type: dict
  sample: {"auto-gptq==0.4.2+cu117": ["7b2c4e..."]}
actions:
  description: What was done (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["write /opt/ai_apps/webui_llama2/webui/lock-hashed.txt"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module
from ansible_collections.hpcllm.webui.plugins.module_utils._wheel_hashes import WheelHashes


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lock=dict(type='path', required=True),
            wheelhouse=dict(type='path', required=True),
            record=dict(type='path', required=True),
            dest=dict(type='path', required=True),
            plan_only=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    run_module(module, WheelHashes, prefix='wheel_hashes')


if __name__ == '__main__':
    main()
