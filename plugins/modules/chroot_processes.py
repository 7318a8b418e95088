#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: chroot_processes
short_description: Stop the processes running inside image root filesystems before they are unmounted
version_added: 0.4.0
description:
  - Finds every process whose root directory (C(/proc/PID/root)) is one of O(roots) or lies below one, such as a
    daemon that a package script started inside a chroot, sends it SIGTERM, and SIGKILL after O(timeout) seconds.
  - A process of the master that only uses a bind-mounted folder (its root is C(/)) is never touched.
  - Fails naming the processes that survive SIGKILL.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: Lists the processes it would stop; sends no signal.
  diff_mode:
    support: none
options:
  roots:
    description:
      - Root filesystems of the images, as paths on the master.
    type: list
    elements: path
    required: true
  timeout:
    description:
      - Seconds to wait after SIGTERM before SIGKILL.
    type: int
    default: 10
'''

EXAMPLES = r'''
- name: Stop what still runs inside the images
  hpcllm.webui.chroot_processes:
    roots:
      - /var/lib/warewulf/chroots/compute/rootfs
    timeout: 5
'''

RETURN = r'''
processes:
  description: The processes found inside the roots (stopped, or in check mode to be stopped).
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id.
      type: int
    root:
      description: The image root the process runs in.
      type: str
    cmdline:
      description: Its command line, arguments separated by spaces.
      type: str
  sample: [{"pid": 4242, "root": "/var/lib/warewulf/chroots/compute/rootfs", "cmdline": "/usr/bin/nvidia-persistenced"}]
killed:
  description: Pids that did not end after SIGTERM within O(timeout) and got SIGKILL.
  returned: always
  type: list
  elements: int
  sample: []
actions:
  description: What was done (or in check mode would be done).
  returned: always
  type: list
  elements: str
  sample: ["stop 4242 (/usr/bin/nvidia-persistenced) running in /var/lib/warewulf/chroots/compute/rootfs"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._chroot_processes import ChrootProcesses
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            roots=dict(type='list', elements='path', required=True),
            timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    run_module(module, ChrootProcesses)


if __name__ == '__main__':
    main()
