#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: deploy_lock
short_description: Record exactly what a deployment installed in a lock file of the install root
version_added: 0.3.0
description:
  - Runs on the Warewulf master after a successful deployment and writes C(<install_root>/hpcllm-lock.json) (O(dest)).
  - The lock records the web UI's repository, version and commit (from C(webui/checkout.json) and C(webui/lock.sha256)),
    the CPython version, the sha256 of its source tarball and its configure arguments (from
    C(python_<version>/.hpcllm-build.json)), every distribution installed in the venv with its version and the sha256
    of the file it was installed from when the wheelhouse holds a file of that name and version (or CPython's
    C(ensurepip) folder, for pip and setuptools of a fresh venv), each model and LoRA with its repository,
    revision, commit and the sha256 of every file (from the C(.hf_model.json) manifests), and, per image, the
    package versions and kernels given in O(images).
  - Installed distributions are read from C(*.dist-info/METADATA) in the venv's site-packages; nothing is imported
    from the venv and nothing runs in it.
  - The file is JSON with sorted keys and no time stamps, so the same deployment gives the same bytes on any
    machine; it is written through a temporary file and an atomic move, and only when its content differs.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details: Works out the lock and reports whether it would change, without writing.
  diff_mode:
    support: full
    details: Before and after text of the lock.
options:
  install_root:
    description:
      - The install root (C(hpcllm_install_root)) to record.
    type: path
    required: true
  dest:
    description:
      - Where the lock goes. Default C(<install_root>/hpcllm-lock.json).
    type: path
  venv:
    description:
      - The web UI's venv. Default C(<install_root>/venv).
    type: path
  wheelhouse:
    description:
      - The wheelhouse whose files are hashed for the installed distributions (matched by project name and version in
        the file name). Default C(<install_root>/wheelhouse).
    type: path
  python_version:
    description:
      - The CPython build to record, C(<install_root>/python_<python_version>). Default the one the venv was made with
        (C(home) in C(pyvenv.cfg)), else the only build in the root.
    type: str
  images:
    description:
      - Per image, what the image play gathered inside it. C(packages) maps package names to versions (driver,
        kernel, DKMS packages, as C(dpkg-query -W) or C(rpm -q) print them), C(kernels) lists kernel versions.
    type: dict
    default: {}
  keep_other_images:
    description:
      - Keep the records of images that the lock on disk has and O(images) lacks (a run over some of the images that
        share the install root must not forget the others). A record is replaced only by a new one of the same image.
    type: bool
    default: false
requirements:
  - Records written by the python_build, webui and models roles (hf_model) in the install root.
notes:
  - Distributions without a file in the wheelhouse get an empty C(files) and C(source=none) and are listed in
    RV(unhashed); a bundle export refuses them. Fill the wheelhouse with C(webui_wheelhouse_fill=true).
  - Every file of the wheelhouse that matches an installed distribution is hashed on each run (a few seconds per GB).
    Model files stored with LFS take their sha256 from the manifest; small files stored in git are hashed.
seealso:
  - module: hpcllm.webui.bundle_export
  - module: hpcllm.webui.hf_model
'''

EXAMPLES = r'''
- name: Record what the deployment installed
  hpcllm.webui.deploy_lock:
    install_root: /opt/ai_apps/webui_llama2
    images:
      compute:
        packages:
          nvidia-kernel-dkms: 535.261.03-1
          linux-image-6.1.0-56-amd64: 6.1.158-1
        kernels: [6.1.0-56-amd64]
  register: lock

- name: Show its sha256
  ansible.builtin.debug:
    msg: "{{ lock.dest }} {{ lock.sha256 }}"
'''

RETURN = r'''
dest:
  description: The lock file.
  returned: success
  type: str
  sample: /opt/ai_apps/webui_llama2/hpcllm-lock.json
sha256:
  description: sha256 of the lock's bytes (as C(sha256sum) prints it for the file).
  returned: success
  type: str
  sample: 9f2c1d5e0b7a4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d
lock:
  description: The lock's content.
  returned: success
  type: dict
  sample:
    format: 1
    webui: {repo: "https://github.com/oobabooga/text-generation-webui", version: 8466cf2, commit: 8466cf229ab29ace6e336a96f81f4eda44ca94fa}
    python: {version: "3.11.4", sha256: 85c37a265e5c9dd9f75b35f954e31fbfc10383162417285e30ad25cc073a0d63}
kept_images:
  description: Images whose records came from the lock on disk (O(keep_other_images)).
  returned: success
  type: list
  elements: str
  sample: [compute-lite]
unhashed:
  description: Installed distributions (C(name==version)) for which neither the wheelhouse nor ensurepip has a file.
  returned: success
  type: list
  elements: str
  sample: ["torch==2.0.1"]
actions:
  description: What was done (or would be done in check mode).
  returned: success
  type: list
  elements: str
  sample: ["write /opt/ai_apps/webui_llama2/hpcllm-lock.json"]
diff:
  description: Before and after text of the lock.
  returned: with diff mode
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._deploy_lock import DeployLock
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            install_root=dict(type='path', required=True),
            dest=dict(type='path'),
            venv=dict(type='path'),
            wheelhouse=dict(type='path'),
            python_version=dict(type='str'),
            images=dict(type='dict', default={}),
            keep_other_images=dict(type='bool', default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    run_module(module, DeployLock, prefix='deploy_lock')


if __name__ == '__main__':
    main()
