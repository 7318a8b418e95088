#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: warewulf_nfs
short_description: Check that Warewulf exports a master folder over NFS and mounts it on the nodes
version_added: 0.1.0
description:
  - Runs on the Warewulf master. Checks that O(path) (the master's C(/opt) by default) is exported over NFS by
    Warewulf and mounted on the nodes, so that what is installed there on the master is what the nodes see.
  - Exported means C(nfs.enabled) is true (Warewulf's default when absent) and C(nfs.export paths) in O(conf)
    has an entry for O(path).
  - Mounted on the nodes means, on Warewulf 4.4 and 4.5, that this entry has C(mount) true (Warewulf's default
    when absent); on 4.6, which ignores C(mount) keys, an C(fstab) resource of a profile or node in O(nodes_conf)
    (C(spec) C(<server>:<path>), C(file) O(path), C(vfstype) nfs or nfs4). On every version an C(etc/fstab) or
    C(etc/fstab.ww) file of an overlay under O(overlays_dir) with a line that mounts C(<server>:<path>) on O(path)
    with type nfs or nfs4 also counts. Entries with C(noauto) (without C(x-systemd.automount)) do not count,
    they are not mounted at boot, like the C(/opt) resource Warewulf 4.6 adds to its default profile.
  - With O(state=checked) (the default) it changes nothing and fails, when the folder is not exported or not
    mounted, with the exact lines to set in O(conf) (or the profile resource on 4.6), the commands to run next,
    and the alternative fstab overlay line.
  - With O(state=present) it makes the change in O(conf) - C(nfs.enabled) true, and an export entry for O(path)
    with O(export_options), plus on 4.4 and 4.5 O(mount_options) and C(mount) true (C(mount) false when an overlay
    fstab already mounts it). On 4.6 it adds the export only and then fails, when no profile mounts the folder,
    with the profile resource to add (C(wwctl profile edit)); it does not edit nodes.conf, which wwctl rewrites.
  - The Warewulf version comes from C(wwctl version).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
  - hpcllm.webui.warewulf
attributes:
  check_mode:
    support: full
    details: Works out the new O(conf) and returns it as a diff without writing it or running wwctl commands that change anything.
  diff_mode:
    support: full
    details: Before and after text of O(conf).
options:
  path:
    description:
      - The master folder the nodes must mount over NFS, at the same path on the nodes. Must be absolute.
    type: str
    default: /opt
  state:
    description:
      - V(checked) only reads, and fails with instructions when O(path) is not exported or not mounted on the nodes.
      - V(present) changes O(conf) so that it is.
    type: str
    choices: [checked, present]
    default: checked
  conf:
    description:
      - Warewulf's server configuration file.
    type: path
    default: /etc/warewulf/warewulf.conf
  nodes_conf:
    description:
      - Warewulf's node configuration file, read on 4.6 for C(fstab) resources of profiles and nodes.
      - A missing file counts as no resources.
    type: path
    default: /etc/warewulf/nodes.conf
  overlays_dir:
    description:
      - Folder of the site's overlays; C(<overlay>/rootfs/etc/fstab), C(<overlay>/rootfs/etc/fstab.ww) (and the
        same under C(<overlay>/etc)) are searched for an NFS line that mounts O(path).
      - Template expressions such as C({{ .Ipaddr }}) in the server part are accepted.
    type: path
    default: /var/lib/warewulf/overlays
  export_options:
    description:
      - C(export options) of a new export entry (ignored when O(path) already has an entry).
    type: str
    default: ro,sync,no_root_squash
  mount_options:
    description:
      - C(mount options) of a new export entry on 4.4 and 4.5, and the options in the instructions.
    type: str
    default: defaults
  configure:
    description:
      - After this module changed O(conf), run C(wwctl configure nfs) (writes C(/etc/exports) and restarts the NFS
        server). Touches the cluster's services; off by default and never run when nothing changed.
    type: bool
    default: false
  overlay_build:
    description:
      - After this module changed O(conf), run C(wwctl overlay build) so that the nodes' C(/etc/fstab) follows.
        Off by default and never run when nothing changed.
    type: bool
    default: false
  backup:
    description:
      - Keep a timestamped copy of O(conf) next to it before changing it.
    type: bool
    default: true
requirements:
  - PyYAML (it comes with ansible-core).
notes:
  - O(conf) is changed with line edits (comments, order and layout stay) that are verified by parsing the result.
    When the layout does not allow a verified line edit (flow style, an empty C(export paths:)), the file is
    rewritten from its parsed content, which drops its comments; the module then warns, and O(backup=true)
    keeps the original.
  - The write goes through a temporary file in the same folder and an atomic move; mode and owner are kept.
  - Which nodes use a profile that mounts the folder is not checked.
seealso:
  - module: hpcllm.webui.warewulf_image
  - module: hpcllm.webui.warewulf_info
'''

EXAMPLES = r'''
- name: Check that the nodes mount the master's /opt (fails with instructions otherwise)
  hpcllm.webui.warewulf_nfs:
    path: /opt

- name: Export /opt and mount it on the nodes, then reconfigure NFS and rebuild the overlays
  hpcllm.webui.warewulf_nfs:
    path: /opt
    state: present
    configure: true
    overlay_build: true
  register: nfs

- name: Say where the mount comes from
  ansible.builtin.debug:
    msg: "{{ nfs.mounted_by }}"
'''

RETURN = r'''
version:
  description: Warewulf version as reported by C(wwctl version).
  returned: success or when the folder is not ready
  type: str
  sample: 4.5.8-1.el9
path:
  description: The folder checked, normalized.
  returned: success or when the folder is not ready
  type: str
  sample: /opt
conf:
  description: The warewulf.conf read.
  returned: success or when the folder is not ready
  type: str
  sample: /etc/warewulf/warewulf.conf
exported:
  description: Whether O(conf) exports O(path) with NFS enabled (after the change with O(state=present)).
  returned: success or when the folder is not ready
  type: bool
  sample: true
mounted:
  description: Whether the nodes mount O(path) at boot (after the change with O(state=present)).
  returned: success or when the folder is not ready
  type: bool
  sample: true
mounted_by:
  description:
    - What mounts it on the nodes - the path of O(conf) (4.4, 4.5), overlay fstab files, C(profile:NAME) and C(node:NAME) (4.6).
  returned: success or when the folder is not ready
  type: list
  elements: str
  sample: ["/etc/warewulf/warewulf.conf"]
method:
  description: How O(conf) was changed - V(none), V(lines) (line edits, comments kept) or V(rewrite) (comments dropped).
  returned: success or when the folder is not ready
  type: str
  sample: lines
backup_file:
  description: The copy of O(conf) made before the change.
  returned: success or when the folder is not ready
  type: str
  sample: /etc/warewulf/warewulf.conf.4242.2026-01-01@10:00:00~
actions:
  description: What was done (or would be done in check mode).
  returned: success or when the folder is not ready
  type: list
  elements: str
  sample: ["set mount: true for export /opt in /etc/warewulf/warewulf.conf", "wwctl configure nfs"]
instructions:
  description: The steps that make the nodes mount O(path), one per line (also in C(msg)).
  returned: when the folder is not ready
  type: list
  elements: str
  sample: ["In /etc/warewulf/warewulf.conf, change `mount: false` to `mount: true` in the `- path: /opt` entry of `nfs: export paths:`."]
diff:
  description: Before and after text of O(conf).
  returned: success or when the folder is not ready
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf_nfs import (
    DEFAULT_CONF,
    DEFAULT_EXPORT_OPTIONS,
    DEFAULT_MOUNT_OPTIONS,
    DEFAULT_NODES_CONF,
    DEFAULT_OVERLAYS_DIR,
    WarewulfNfs,
)
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='str', default='/opt'),
            state=dict(type='str', default='checked', choices=['checked', 'present']),
            conf=dict(type='path', default=DEFAULT_CONF),
            nodes_conf=dict(type='path', default=DEFAULT_NODES_CONF),
            overlays_dir=dict(type='path', default=DEFAULT_OVERLAYS_DIR),
            export_options=dict(type='str', default=DEFAULT_EXPORT_OPTIONS),
            mount_options=dict(type='str', default=DEFAULT_MOUNT_OPTIONS),
            configure=dict(type='bool', default=False),
            overlay_build=dict(type='bool', default=False),
            backup=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    run_module(module, WarewulfNfs)


if __name__ == '__main__':
    main()
