#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: bundle_import
short_description: Verify an offline bundle and unpack it as a local mirror
version_added: 0.3.0
description:
  - Reads a bundle written by M(hpcllm.webui.bundle_export) and unpacks it into the folder O(dest), the mirror an
    air-gapped site points its sources at (C(inventories/airgapped), C(hpcllm_mirror)).
  - Before anything is written, every member of the archive is checked against its C(bundle.json) - an artifact
    the manifest lists but the archive lacks, a member the manifest does not list, a link or device, or an unsafe
    path fails naming it. The artifacts are then extracted into C(<dest>.partial/) while their sha256 and size are
    checked; the first mismatch removes the staging folder and fails naming the artifact. Only a complete, verified
    tree replaces O(dest) (by rename), so a bad bundle leaves an earlier import untouched.
  - The mirror layout - C(python/Python-<version>.tgz), C(wheelhouse/), C(git/text-generation-webui.git) (a bare
    repository made from the git bundle, with C(git update-server-info) run so that a plain web server serves it
    over git's dumb HTTP protocol; C(HEAD) is C(refs/heads/main) at the lock's commit), C(hpcllm-lock.json),
    optionally C(models/<name>/), C(loras/<name>/) and C(packages/).
  - Nothing changes when O(dest) already holds the import of a bundle with the same manifest.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: Checks the archive's members against the manifest (not their sha256) and reports whether it would unpack.
  diff_mode:
    support: none
options:
  src:
    description:
      - The bundle archive on the managed host.
    type: path
    required: true
  dest:
    description:
      - The mirror folder to create or replace. Its parent must exist.
    type: path
    required: true
  checksum:
    description:
      - sha256 of the whole archive, as published with it; checked before anything else.
    type: str
requirements:
  - git on the managed host.
seealso:
  - module: hpcllm.webui.bundle_export
  - module: hpcllm.webui.deploy_lock
'''

EXAMPLES = r'''
- name: Unpack the bundle as the site's mirror
  hpcllm.webui.bundle_import:
    src: /media/usb/hpcllm-bundle.tar
    checksum: 3f7ac0b5d9c2e1f8a6b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2
    dest: /opt/hpcllm-mirror
  register: mirror
'''

RETURN = r'''
dest:
  description: The mirror folder.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror
lock:
  description: The deployment lock in the mirror.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/hpcllm-lock.json
python_tarball:
  description: The CPython source tarball in the mirror.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/python/Python-3.11.4.tgz
python_version:
  description: The CPython version of the bundle.
  returned: success
  type: str
  sample: 3.11.4
webui_repo:
  description: The web UI's bare repository in the mirror.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/git/text-generation-webui.git
webui_commit:
  description: The web UI commit of the bundle.
  returned: success
  type: str
  sample: 8466cf229ab29ace6e336a96f81f4eda44ca94fa
webui_version:
  description: The web UI version (tag, branch or commit) the lock recorded.
  returned: success
  type: str
  sample: 8466cf229ab29ace6e336a96f81f4eda44ca94fa
wheelhouse:
  description: The wheelhouse in the mirror.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/wheelhouse
webui_lock_file:
  description:
    - The web UI's lock in the mirror, under the name it was deployed with (C(webui/<name>)), or V(null)
      for a bundle written before bundles carried it. An air-gapped rebuild installs exactly these
      requirements, whatever the inventory's C(webui_lock) says.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/webui/8466cf2-py311-x86_64-cu118.txt
models:
  description: Model and LoRA folders in the mirror (relative, C(models/<name>), C(loras/<name>)).
  returned: success
  type: list
  elements: str
  sample: ["models/WizardLM_WizardCoder-1B-V1.0"]
os_packages:
  description: The OS package folder in the mirror, when the bundle has one.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/packages
manifest:
  description: The bundle's manifest.
  returned: success
  type: dict
actions:
  description: What was done (or would be done in check mode).
  returned: success
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_import import BundleImport
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path', required=True),
            dest=dict(type='path', required=True),
            checksum=dict(type='str', no_log=False),
        ),
        supports_check_mode=True,
    )
    run_module(module, BundleImport, prefix='bundle_import')


if __name__ == '__main__':
    main()
