#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: warewulf_image
short_description: Import and build a Warewulf 4 image (container) with wwctl
version_added: 0.1.0
description:
  - Makes sure a Warewulf image exists, importing it from O(source) when it is missing, and
    returns its root file system path as printed by C(wwctl container show) (C(wwctl image show) on 4.6).
  - With O(state=built), builds the image with C(wwctl container build) (C(wwctl image build) on 4.6).
    C(changed) is taken from what wwctl reports; a build that prints C(Skipping (VNFS is current))
    or C(Skipping (Image is current)) changed nothing.
  - Refuses to build while anything is mounted below the image's root file system (such as the
    master's C(/opt) or C(/proc)), naming the mounts, so the image never swallows them.
  - In check mode the outcome of a build is predicted the way wwctl decides it, without running it,
    the build is needed when anything under the root file system has a ctime not older than the built image file.
    As in Warewulf's own check, links are followed to wherever they point on the master, so a link in the image
    to a file outside it that changed makes a build.
  - Warns, naming them, about links in the image that resolve into the master's C(/proc), C(/sys) or C(/dev) (a
    debootstrapped image's C(dev/fd -> /proc/self/fd), Debian's C(run/shm -> /dev/shm)). Their targets are always newer than the image, so
    Warewulf rebuilds such an image on every build and no run leaves it unchanged.
  - Works with Warewulf 4.4, 4.5 and 4.6, detected from C(wwctl version). Never uses C(wwctl container exec),
    which exits 0 after a failed command on 4.4.x to 4.5.2.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
  - hpcllm.webui.warewulf
  - hpcllm.webui.warewulf.provision_dir
attributes:
  check_mode:
    support: full
    details: Predicts the import and the build; runs no wwctl command that changes anything.
  diff_mode:
    support: full
    details: Before and after say whether the image exists and whether a built image file exists.
options:
  name:
    description:
      - Name of the image (Warewulf container).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the image exists (importing it from O(source) when missing) and builds nothing
        (except that Warewulf 4.4 always builds on import).
      - V(built) also builds it; wwctl skips the build when the image is current unless O(force=true).
    type: str
    choices: [present, built]
    default: present
  source:
    description:
      - What to import the image from when it does not exist yet, passed to C(wwctl container import)
        (C(wwctl image import) on 4.6).
      - A directory that contains C(/bin/sh), a C(docker save) archive, or a URI wwctl understands
        such as C(docker://registry/image:tag).
      - Ignored when the image exists. On 4.5 and 4.6 the import builds the image (C(-b)) only with O(state=built).
    type: str
  force:
    description:
      - With O(state=built), rebuild even when wwctl considers the image current (C(wwctl container build -f)).
      - Not needed after a failed build. A failed build leaves a newer partial image behind that makes wwctl
        skip, so the module keeps a record beside the image file (C(NAME.img.hpcllm-build-failed)) from the
        start of every build until it succeeds, and forces the next build while the record is there.
    type: bool
    default: false
  configure_all:
    description:
      - After the image was imported or built by this task, run C(wwctl configure --all).
      - Touches the whole cluster's services; off by default and skipped when nothing changed.
    type: bool
    default: false
  overlay_build:
    description:
      - After the image was imported or built by this task, run C(wwctl overlay build).
      - Rebuilds every node's overlays; off by default and skipped when nothing changed.
    type: bool
    default: false
  server_restart:
    description:
      - After the image was imported or built by this task, restart the Warewulf server with
        C(systemctl restart warewulfd); only where C(systemctl) is missing, C(wwctl server restart)
        (Warewulf 4.4 and 4.5; 4.6 has no such command).
      - Off by default and skipped when nothing changed.
    type: bool
    default: false
notes:
  - A mount point that is the root file system itself is accepted; mounts below it are not.
seealso:
  - module: hpcllm.webui.warewulf_kernel
'''

EXAMPLES = r'''
- name: Make sure the image exists, importing it from a chroot when missing
  hpcllm.webui.warewulf_image:
    name: rocky-8
    source: /srv/chroots/rocky-8
  register: image

- name: Build the image (skipped by wwctl when it is current)
  hpcllm.webui.warewulf_image:
    name: rocky-8
    state: built

- name: Rebuild after a failed build and refresh the cluster
  hpcllm.webui.warewulf_image:
    name: rocky-8
    state: built
    force: true
    overlay_build: true
    server_restart: true

- name: Import from a docker save archive and build in one step
  hpcllm.webui.warewulf_image:
    name: debian-12
    source: /srv/images/debian-12.tar
    state: built
'''

RETURN = r'''
name:
  description: Name of the image.
  returned: always
  type: str
  sample: rocky-8
version:
  description: Warewulf version as reported by C(wwctl version).
  returned: always
  type: str
  sample: 4.5.8-1.el8
rootfs:
  description:
    - Root file system of the image as printed by C(wwctl container show).
    - V(null) in check mode when the image would first be imported.
  returned: always
  type: str
  sample: /var/lib/warewulf/chroots/rocky-8/rootfs
image_file:
  description: The built image file the check mode prediction compares against.
  returned: always
  type: str
  sample: /var/lib/warewulf/provision/container/rocky-8.img
imported:
  description: Whether the image was (or in check mode would be) imported.
  returned: always
  type: bool
  sample: false
built:
  description: Whether an image was (or in check mode would be) built; false when wwctl skipped the build.
  returned: always
  type: bool
  sample: true
newer_than_image:
  description:
    - Up to five entries of the rootfs (relative to it) whose ctime is not older than the built image
      file, found before the build, which make wwctl rebuild. Links are followed as Warewulf's own check
      follows them and are named with their target (C(dev/fd -> /proc/self/fd)).
    - Empty when the image is current, when it has no image file yet, or with O(force).
  returned: always
  type: list
  elements: str
  sample: ["etc/motd"]
actions:
  description: What was done (or in check mode would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["build rocky-8", "wwctl overlay build"]
cmd:
  description: The failed command, as an argument list.
  returned: failure of a command
  type: list
  elements: str
  sample: ["/usr/bin/wwctl", "container", "show", "rocky-9"]
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
  sample: "ERROR: rocky-9 is not a valid container\n"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf import (
    DEFAULT_PROVISION_DIR,
    WarewulfImage,
)
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', default='present', choices=['present', 'built']),
            source=dict(type='str'),
            force=dict(type='bool', default=False),
            provision_dir=dict(type='path', default=DEFAULT_PROVISION_DIR),
            configure_all=dict(type='bool', default=False),
            overlay_build=dict(type='bool', default=False),
            server_restart=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    run_module(module, WarewulfImage)


if __name__ == '__main__':
    main()
