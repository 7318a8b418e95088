#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: bundle_export
short_description: Gather the artifacts a deployment lock names into one offline bundle
version_added: 0.3.0
description:
  - Reads a lock written by M(hpcllm.webui.deploy_lock) and writes one uncompressed tar archive O(dest) holding
    the lock itself, the CPython source tarball (C(python/Python-<version>.tgz)), every wheel the lock names
    (C(wheelhouse/)), a C(git bundle) of the web UI at the lock's commit (C(git/text-generation-webui.bundle),
    with C(refs/heads/main) and the tag or branch of the lock's version), optionally the models and LoRAs
    (C(models/<name>/), C(loras/<name>/) with their C(.hf_model.json)) and a folder of OS packages (C(packages/)).
  - C(bundle.json) in the archive lists the sha256 and size of every artifact (C(SHA256SUMS) the same for
    C(sha256sum -c)). Files whose sha256 the lock knows (tarball, wheels, model files) must match it, or the
    export fails naming the artifact.
  - Artifacts are staged in C(<dest>.partial/); one already staged with the right sha256 is kept, so an
    interrupted export resumes where it stopped. The archive is written next to O(dest) and renamed into place,
    then the staging folder is removed. Member headers carry no owner and no time stamp.
  - Nothing changes when O(dest) already holds a bundle of the same lock with the same contents.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: Works out whether the bundle is current and which artifacts would be staged; writes nothing.
  diff_mode:
    support: none
options:
  lock:
    description:
      - The deployment lock (C(<install root>/hpcllm-lock.json)). The install root recorded in it locates the
        wheelhouse, the web UI checkout and the models unless given below.
    type: path
    required: true
  dest:
    description:
      - The archive to write. Its folder must exist and hold room for the artifacts twice (staging and archive).
    type: path
    required: true
  python_tarball:
    description:
      - The CPython source tarball (python.org's C(Python-<version>.tgz)); its sha256 must be the lock's.
    type: path
    required: true
  wheelhouse:
    description:
      - Folder holding the wheels the lock names. Default C(<install root>/wheelhouse).
    type: path
  webui_repo:
    description:
      - A local git repository holding the lock's web UI commit. Default the checkout C(<install root>/text-generation-webui).
    type: path
  models:
    description:
      - Carry the models and LoRAs of the lock (their files and C(.hf_model.json)).
    type: bool
    default: false
  os_packages:
    description:
      - A folder of OS packages (driver, kernel and their dependencies, as the site's repository tools left them)
        carried as C(packages/), files only (links are refused).
    type: path
  image_packages:
    description:
      - Per image, a package repository folder made inside the image (C(chroot_prep) entry point
        C(image_packages_collect), which C(playbooks/bundle_export.yml) runs), carried as C(packages/<image>/).
        site.yml with C(hpcllm_bundle) points each image's package manager at its folder.
      - Mutually exclusive with O(os_packages).
    type: dict
  force:
    description:
      - Write the archive even when O(dest) already holds a bundle of the same lock.
    type: bool
    default: false
requirements:
  - git on the managed host.
seealso:
  - module: hpcllm.webui.deploy_lock
  - module: hpcllm.webui.bundle_import
'''

EXAMPLES = r'''
- name: Bundle the deployment of /opt/ai_apps/webui_llama2 with its models
  hpcllm.webui.bundle_export:
    lock: /opt/ai_apps/webui_llama2/hpcllm-lock.json
    python_tarball: /srv/cache/Python-3.11.4.tgz
    models: true
    os_packages: /srv/reposync/cuda-rhel8
    dest: /srv/hpcllm-bundle.tar
  register: bundle
'''

RETURN = r'''
dest:
  description: The archive.
  returned: success
  type: str
  sample: /srv/hpcllm-bundle.tar
lock_sha256:
  description: sha256 of the lock the bundle was made from.
  returned: success
  type: str
  sample: 0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8
webui_commit:
  description: The web UI commit in the bundle.
  returned: success
  type: str
  sample: 8466cf229ab29ace6e336a96f81f4eda44ca94fa
python_version:
  description: The CPython version in the bundle.
  returned: success
  type: str
  sample: 3.11.4
artifacts:
  description: Number of artifacts in the archive.
  returned: success, not in check mode
  type: int
  sample: 97
manifest:
  description: The archive's bundle.json (artifacts with sha256, size and kind).
  returned: success, not in check mode
  type: dict
kept:
  description: Artifacts found staged with the right sha256 by an earlier, interrupted run and not copied again.
  returned: success
  type: list
  elements: str
copied:
  description: Artifacts copied (or made) into the staging folder by this run.
  returned: success
  type: list
  elements: str
actions:
  description: What was done (or would be done in check mode).
  returned: success
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_export import BundleExport
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lock=dict(type='path', required=True),
            dest=dict(type='path', required=True),
            python_tarball=dict(type='path', required=True),
            wheelhouse=dict(type='path'),
            webui_repo=dict(type='path'),
            models=dict(type='bool', default=False),
            os_packages=dict(type='path'),
            image_packages=dict(type='dict'),
            force=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    run_module(module, BundleExport, prefix='bundle_export')


if __name__ == '__main__':
    main()
