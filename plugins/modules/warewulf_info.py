#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: warewulf_info
short_description: Read the Warewulf 4 version, images, their root file systems and kernels
version_added: 0.1.0
description:
  - Reports the Warewulf version (from C(wwctl version)), the images (C(wwctl container list), C(wwctl image list) on 4.6)
    with their root file system (C(show)), the kernels found in each image and whether the built image file exists,
    and on 4.4 and 4.5 the kernels Warewulf has imported (C(wwctl kernel list)).
  - Changes nothing.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
  - hpcllm.webui.warewulf
  - hpcllm.webui.warewulf.provision_dir
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
options:
  names:
    description:
      - Images to report; all images when empty. An unknown name fails.
    type: list
    elements: str
    default: []
seealso:
  - module: hpcllm.webui.warewulf_image
  - module: hpcllm.webui.warewulf_kernel
'''

EXAMPLES = r'''
- name: Find the rootfs of an image
  hpcllm.webui.warewulf_info:
    names: [rocky-8]
  register: ww

- name: Show it
  ansible.builtin.debug:
    msg: "{{ ww.images[0].rootfs }} (Warewulf {{ ww.version }})"
'''

RETURN = r'''
version:
  description: Warewulf version as reported by C(wwctl version).
  returned: always
  type: str
  sample: 4.6.0-1.el9
noun:
  description: The wwctl command for images in this version, C(container) (4.4, 4.5) or C(image) (4.6).
  returned: always
  type: str
  sample: image
images:
  description: The images asked for (all when O(names) is empty).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Image name.
      type: str
      sample: rocky-8
    rootfs:
      description: Root file system as printed by C(show).
      type: str
      sample: /var/lib/warewulf/chroots/rocky-8/rootfs
    kernels:
      description: Kernel versions found in the image, oldest to newest.
      type: list
      elements: str
      sample: ["4.18.0-477.27.1.el8_8.x86_64"]
    image_file:
      description: Where the built image file is.
      type: str
      sample: /var/lib/warewulf/provision/container/rocky-8.img
    image_file_exists:
      description: Whether the built image file exists.
      type: bool
      sample: true
imported_kernels:
  description: Kernels listed by C(wwctl kernel list) (4.4, 4.5); empty on 4.6.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "4.18.0-477.27.1.el8_8.x86_64", "version": "4.18.0-477.27.1.el8_8.x86_64", "nodes": "0"}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf import (
    DEFAULT_PROVISION_DIR,
    WarewulfInfo,
)
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type='list', elements='str', default=[]),
            provision_dir=dict(type='path', default=DEFAULT_PROVISION_DIR),
        ),
        supports_check_mode=True,
    )
    run_module(module, WarewulfInfo)


if __name__ == '__main__':
    main()
