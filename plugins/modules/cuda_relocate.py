#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cuda_relocate
short_description: Move a folder out of a node image onto the master's /opt, resumably, and leave a symlink
version_added: 0.1.0
description:
  - Moves the folder O(src) (typically C(/usr/local/cuda-<version>) or an Nsight folder under C(/opt/nvidia) inside a
    Warewulf image's root filesystem) to O(dest) on the master (typically under the NFS-exported C(/opt)), and leaves a
    symlink at O(src) that points to O(link), so nodes find the tree at its usual path over NFS.
  - On one filesystem the move is a rename. Across filesystems the folder is copied into C(<dest>.partial), the copy
    is compared with the source (type, permissions, owner, size and sha256 of every file, symlink targets), renamed to
    O(dest), and only then is the source removed.
  - A marker file next to O(dest) (C(.<name>.cuda_relocate)) records the source and the phase. A run that was
    interrupted anywhere (even by SIGKILL or a power cut) resumes on the next run, keeping the files it already
    copied and verifying everything again; no file is removed from O(src) before a verified copy has its final name.
  - When O(src) and O(dest) are the same folder (the master's C(/opt) was bind-mounted into the image while the
    software was installed, so it landed on the master directly), nothing is done.
  - When O(dest) exists but this module did not write it (another image relocated the same version), the source is
    removed only if both trees are identical; otherwise the module fails and changes nothing.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details:
      - Inspects both paths and reports the steps that would run and the bytes that would leave the image; reads no
        file contents and writes nothing.
  diff_mode:
    support: full
    details:
      - Shows what O(src) and O(dest) are (folder, symlink, absent) before and after.
options:
  src:
    description:
      - The folder to move, as seen from the master (inside the image's root filesystem).
    type: path
    required: true
  dest:
    description:
      - Where the folder goes. Its parent folders are created (mode 0755) if needed.
    type: path
    required: true
  link:
    description:
      - Target written into the symlink left at O(src), as the nodes will resolve it (usually the same path as O(dest),
        since the nodes mount the master's C(/opt) at C(/opt)).
      - Leave it out for trees that need no link, such as Nsight under C(/opt) (the nodes' C(/opt) is the master's).
    type: str
  required:
    description:
      - Fail when neither O(src) nor O(dest) exists. With V(false) such a relocation is skipped (an image without Nsight).
    type: bool
    default: true
  verify:
    description:
      - How a copy (or a O(dest) that is already there) is compared with O(src) before the source is removed.
      - V(sha256) reads both trees and compares the sha256 of every file; V(size) compares sizes and modification times.
    type: str
    choices: [sha256, size]
    default: sha256
notes:
  - Regular files, folders and symlinks are moved with their permissions, owners and times; hard links become separate
    copies across filesystems; extended attributes and ACLs are not copied. Any other file type stops the move before
    anything is removed.
  - Run it as root on the master, with nothing writing into O(src) or O(dest) meanwhile.
seealso:
  - name: Warewulf container documentation
    description: Where image root filesystems live.
    link: https://warewulf.org/docs/main/contents/containers.html
"""

EXAMPLES = r"""
- name: Move the CUDA toolkit out of the image and link it back
  hpcllm.webui.cuda_relocate:
    src: /var/lib/warewulf/chroots/rocky8/rootfs/usr/local/cuda-12.3
    dest: /opt/cuda/cuda-12.3
    link: /opt/cuda/cuda-12.3
  register: cuda_move

- name: Report what left the image
  ansible.builtin.debug:
    msg: "{{ cuda_move.bytes_removed }} bytes left the image ({{ cuda_move.method }})"

- name: Move Nsight Systems if the image has it (no link needed, /opt is the master's on the nodes)
  hpcllm.webui.cuda_relocate:
    src: /var/lib/warewulf/chroots/rocky8/rootfs/opt/nvidia/nsight-systems
    dest: /opt/nvidia/nsight-systems
    required: false
"""

RETURN = r"""
src:
  description: The normalized source path.
  returned: always
  type: str
  sample: /var/lib/warewulf/chroots/rocky8/rootfs/usr/local/cuda-12.3
dest:
  description: The normalized destination path.
  returned: always
  type: str
  sample: /opt/cuda/cuda-12.3
link:
  description: The symlink target left at O(src) (null without O(link)).
  returned: always
  type: str
  sample: /opt/cuda/cuda-12.3
situation:
  description:
    - What the module found. V(move) and V(copy) a fresh move, V(resume_copy) and V(resume_remove) an interrupted one,
      V(finish) a move that only lacks its link or still has its marker, V(duplicate) a O(dest) written by someone else
      (an identical tree, so only the source is removed), V(in_place) O(src) and O(dest) are the same folder (bind mount),
      V(absent) nothing to move (O(required=false)), V(done) nothing to do.
  returned: always
  type: str
  sample: copy
method:
  description: How the tree moved, V(rename), V(copy), V(remove_duplicate) or V(none).
  returned: always
  type: str
  sample: copy
steps:
  description: The steps of the plan (run, or that would run in check mode).
  returned: always
  type: list
  elements: str
  sample: [mkparent, mark, copy, verify, mark_verified, promote, remove_source, link, clear_marker]
bytes_removed:
  description: Bytes of regular files that left the image (in check mode, that would leave it).
  returned: always
  type: int
  sample: 4617089024
bytes_copied:
  description: Bytes copied by this run (a resumed copy does not count again what an earlier run copied).
  returned: always
  type: int
  sample: 4617089024
files:
  description: Number of entries (files, folders, symlinks) that left the image.
  returned: always
  type: int
  sample: 2841
actions:
  description: What the run did (or would do in check mode), one readable line per step.
  returned: always
  type: list
  elements: str
  sample: ["rename /var/lib/warewulf/chroots/rocky8/rootfs/usr/local/cuda-12.3 to /opt/cuda/cuda-12.3 (same filesystem)"]
diff:
  description: What O(src) and O(dest) were before and are after.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: Kinds of O(src) and O(dest) before the run.
      type: dict
    after:
      description: Kinds of O(src) and O(dest) after the run.
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._cuda_relocate import Relocation
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            link=dict(type="str"),
            required=dict(type="bool", default=True),
            verify=dict(type="str", choices=["sha256", "size"], default="sha256"),
        ),
        supports_check_mode=True,
    )
    run_module(module, Relocation)


if __name__ == "__main__":
    main()
