#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: bundle_verify
short_description: Check an unpacked offline bundle before a run takes its sources from it
version_added: 0.3.0
description:
  - Reads the import record of a folder unpacked by M(hpcllm.webui.bundle_import) and checks, without changing
    anything, that every artifact of the bundle is there as a regular file of the recorded size (with
    O(verify=sha256) also of the recorded sha256), that the bare repository holds the web UI commit and that the
    lock parses. The first missing or different artifact fails naming it.
  - site.yml runs it first when C(hpcllm_bundle) is set, so that a bundle with a missing artifact stops the run
    before anything is changed.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: Read-only; the same checks run in check mode.
  diff_mode:
    support: none
options:
  path:
    description:
      - The folder the bundle was unpacked into (O(hpcllm.webui.bundle_import#module:dest)).
    type: path
    required: true
  verify:
    description:
      - V(size) checks that each artifact exists with its recorded size (fast; the import checked every sha256).
      - V(sha256) reads every artifact again (models make that tens of GB).
    type: str
    choices: [size, sha256]
    default: size
requirements:
  - git on the managed host.
seealso:
  - module: hpcllm.webui.bundle_import
'''

EXAMPLES = r'''
- name: Check the unpacked bundle
  hpcllm.webui.bundle_verify:
    path: /opt/hpcllm-mirror
  register: bundle
'''

RETURN = r'''
path:
  description: The bundle folder.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror
verified:
  description: What was compared with the manifest (V(size) or V(sha256)).
  returned: success
  type: str
  sample: size
lock:
  description: The deployment lock in the bundle.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/hpcllm-lock.json
lock_content:
  description: The lock itself (web UI, CPython, packages, models, images).
  returned: success
  type: dict
python_tarball:
  description: The CPython source tarball.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/python/Python-3.11.4.tgz
python_version:
  description: The CPython version of the bundle.
  returned: success
  type: str
  sample: 3.11.4
webui_repo:
  description: The web UI's bare repository in the bundle.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/git/text-generation-webui.git
webui_commit:
  description: The web UI commit.
  returned: success
  type: str
  sample: 8466cf229ab29ace6e336a96f81f4eda44ca94fa
webui_version:
  description: The web UI version (tag, branch or commit) the lock recorded.
  returned: success
  type: str
  sample: 8466cf229ab29ace6e336a96f81f4eda44ca94fa
wheelhouse:
  description: The wheelhouse in the bundle.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/wheelhouse
webui_lock_file:
  description:
    - The web UI's lock in the bundle, under the name it was deployed with (C(webui/<name>)), or V(null)
      for a bundle written before bundles carried it. An air-gapped rebuild installs exactly these
      requirements, whatever the inventory's C(webui_lock) says.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/webui/8466cf2-py311-x86_64-cu118.txt
models:
  description: Model and LoRA folders in the bundle (relative, C(models/<name>), C(loras/<name>)).
  returned: success
  type: list
  elements: str
  sample: ["models/WizardLM_WizardCoder-1B-V1.0"]
os_packages:
  description: The OS package folder of the bundle, when it has one.
  returned: success
  type: str
  sample: /opt/hpcllm-mirror/packages
package_folders:
  description: The sub-folders of the OS package folder (one per image).
  returned: success
  type: list
  elements: str
  sample: [compute]
manifest:
  description: The bundle's manifest.
  returned: success
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_verify import BundleVerify
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            verify=dict(type='str', choices=['size', 'sha256'], default='size'),
        ),
        supports_check_mode=True,
    )
    run_module(module, BundleVerify, prefix='bundle_verify')


if __name__ == '__main__':
    main()
