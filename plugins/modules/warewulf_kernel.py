#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: warewulf_kernel
short_description: Report the kernels of a Warewulf 4 image and import one from the image on 4.4/4.5
version_added: 0.1.0
description:
  - Finds the kernels inside a Warewulf image (folders of C(/lib/modules) that come with a C(vmlinuz))
    and reports them, together with the kernels Warewulf has imported (C(wwctl kernel list), 4.4 and 4.5).
  - With O(state=imported) on Warewulf 4.4 and 4.5, imports a kernel B(from the image)
    (C(wwctl kernel import -C IMAGE KVER NAME)) unless Warewulf already lists a kernel of that name and version.
  - Never imports the master's kernel, which would drop the image's own modules (such as the NVIDIA driver),
    unless O(from_master=true) asks for exactly that.
  - Warewulf 4.6 removed C(wwctl kernel); nodes boot the kernel found in the image. On 4.6 the module
    reports the kernels found in the image and changes nothing, with a warning when O(state=imported).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
  - hpcllm.webui.warewulf
attributes:
  check_mode:
    support: full
    details: Works out whether the kernel would be imported without importing it.
  diff_mode:
    support: full
    details: Before and after list the names of the kernels Warewulf has imported.
options:
  image:
    description:
      - Name of the image (Warewulf container) whose kernels are reported and imported.
      - Required unless O(from_master=true).
    type: str
  state:
    description:
      - V(present) only reports; V(imported) imports the kernel on 4.4 and 4.5 when Warewulf does not list it yet.
    type: str
    choices: [present, imported]
    default: present
  kernel_version:
    description:
      - Kernel version to import, a folder name under the image's C(/lib/modules).
      - Defaults to the newest kernel found in the image. Warewulf 4.5 imports only the newest kernel of an
        image, so another version fails there.
      - Required with O(from_master=true).
    type: str
  kernel_name:
    description:
      - Name of the kernel in Warewulf (the C(NAME) argument of C(wwctl kernel import)).
      - Defaults to the kernel version, as wwctl does.
    type: str
  from_master:
    description:
      - Import the master's own kernel O(kernel_version) instead of the image's (C(wwctl kernel import) without C(-C)).
      - Nodes then boot a kernel that does not match the modules built into the image. Only for sites that want exactly that.
    type: bool
    default: false
  set_default:
    description:
      - Pass C(--setdefault) to make the imported kernel the default profile's kernel.
      - Warewulf changes the profile even when a later step of the import fails.
    type: bool
    default: false
seealso:
  - module: hpcllm.webui.warewulf_image
'''

EXAMPLES = r'''
- name: Report the kernels of the image
  hpcllm.webui.warewulf_kernel:
    image: rocky-8
  register: kernels

- name: Import the image's newest kernel on Warewulf 4.4/4.5 (reports only on 4.6)
  hpcllm.webui.warewulf_kernel:
    image: rocky-8
    state: imported

- name: Import a given kernel of the image under a name of its own
  hpcllm.webui.warewulf_kernel:
    image: rocky-8
    state: imported
    kernel_version: 4.18.0-477.27.1.el8_8.x86_64
    kernel_name: rocky-8-kernel
'''

RETURN = r'''
version:
  description: Warewulf version as reported by C(wwctl version).
  returned: always
  type: str
  sample: 4.5.8-1.el8
image:
  description: Name of the image.
  returned: always
  type: str
  sample: rocky-8
rootfs:
  description: Root file system of the image; V(null) with O(from_master=true).
  returned: always
  type: str
  sample: /var/lib/warewulf/chroots/rocky-8/rootfs
kernels:
  description: Kernel versions found in the image, oldest to newest.
  returned: always
  type: list
  elements: str
  sample: ["4.18.0-477.10.1.el8_8.x86_64", "4.18.0-477.27.1.el8_8.x86_64"]
kernel_version:
  description: The kernel version chosen (the requested one, or the newest in the image).
  returned: always
  type: str
  sample: 4.18.0-477.27.1.el8_8.x86_64
kernel_name:
  description: Name of the kernel in Warewulf; V(null) unless O(state=imported) on 4.4/4.5.
  returned: always
  type: str
  sample: 4.18.0-477.27.1.el8_8.x86_64
imported_kernels:
  description: Kernels Warewulf lists (C(wwctl kernel list)) after the task; empty on 4.6.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Kernel name.
      type: str
    version:
      description: Kernel version.
      type: str
    nodes:
      description: Number of nodes using it, as printed.
      type: str
  sample: [{"name": "4.18.0-477.27.1.el8_8.x86_64", "version": "4.18.0-477.27.1.el8_8.x86_64", "nodes": "0"}]
actions:
  description: What was done (or in check mode would be done).
  returned: always
  type: list
  elements: str
  sample: ["import kernel 4.18.0-477.27.1.el8_8.x86_64 as 4.18.0-477.27.1.el8_8.x86_64 from image rocky-8"]
cmd:
  description: The failed command, as an argument list.
  returned: failure of a command
  type: list
  elements: str
  sample: ["/usr/bin/wwctl", "kernel", "import", "-C", "rocky-8", "4.18.0-477.27.1.el8_8.x86_64"]
rc:
  description: Exit code of the failed command.
  returned: failure of a command
  type: int
  sample: 255
stdout:
  description: Standard output of the failed command.
  returned: failure of a command
  type: str
  sample: ""
stderr:
  description: Standard error of the failed command.
  returned: failure of a command
  type: str
  sample: "ERROR: Could not locate kernel image\n"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf import (
    WarewulfKernel,
)
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'imported']),
            kernel_version=dict(type='str'),
            kernel_name=dict(type='str'),
            from_master=dict(type='bool', default=False),
            set_default=dict(type='bool', default=False),
        ),
        required_if=[('from_master', True, ['kernel_version'])],
        supports_check_mode=True,
    )
    run_module(module, WarewulfKernel)


if __name__ == '__main__':
    main()
