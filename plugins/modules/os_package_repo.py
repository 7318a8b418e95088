#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: os_package_repo
short_description: Collect every installed OS package at its installed version into a self-contained repository
version_added: 0.3.0
description:
  - Runs inside an image (or any Debian or EL system). With O(collect=true) it lists every installed package
    (dpkg C(ii) packages with C(dpkg-query), or C(rpm -qa) without C(gpg-pubkey)), downloads the ones the folder
    O(path) does not hold yet at exactly their installed version, removes the packages of the folder that are
    not installed (O(prune)), and indexes the folder as a repository.
  - Debian. C(apt-get download name:arch=version) after an C(apt-get update), both with lists, caches and logs
    in O(scratch), so nothing under the system's root changes. Files are named as apt-get download names them
    (C(name_version_arch.deb), the epoch colon as C(%3a)). The index is a flat repository C(Packages) and
    C(Packages.gz) in dpkg-scanpackages' format, written from the .deb files (their control member, gz, xz or
    uncompressed; zst needs Python 3.14 or the zstandard module), sorted, atomically and only when its
    content changes. C(deb [trusted=yes] file:<path> ./) then uses it.
  - EL. C(dnf download name-epoch:version-release.arch) with cache, log and persist folders in O(scratch),
    then C(createrepo_c) (which must be installed in the system) when a package was added or removed or the
    folder has no C(repodata/repomd.xml) yet.
  - Downloads go to C(<path>/.partial) and are moved into the folder only when all arrived, so an interrupted
    run leaves no truncated package behind.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details: Works out which packages would be downloaded or removed and whether the index would change.
  diff_mode:
    support: none
options:
  path:
    description:
      - The repository folder. Created when missing.
    type: path
    required: true
  collect:
    description:
      - Download every installed package the folder lacks first. V(false) only indexes the folder (Debian) or
        makes sure it has repository metadata (EL).
    type: bool
    default: true
  prune:
    description:
      - Remove the folder's packages that are not installed (an older version after an upgrade).
    type: bool
    default: true
  scratch:
    description:
      - Folder for the private apt lists and caches or dnf cache; outside the system's root filesystem in an
        image (its C(/tmp), a scratch folder of the master).
    type: path
    default: /tmp/hpcllm-os-packages
  family:
    description:
      - Package format. Default from the system (C(dpkg-query) on PATH means Debian, else EL).
    type: str
    choices: [Debian, RedHat]
requirements:
  - apt-get and dpkg-query (Debian), or dnf with its download command and createrepo_c (EL), in the system.
  - The system's repositories still offer the installed versions (the module fails naming the ones they do not).
seealso:
  - module: hpcllm.webui.bundle_export
'''

EXAMPLES = r'''
- name: Collect the image's packages for an offline rebuild
  hpcllm.webui.os_package_repo:
    path: /opt/hpcllm-bundle/os-packages/compute
    scratch: /tmp/hpcllm-os-packages

- name: Only index a folder of .deb files
  hpcllm.webui.os_package_repo:
    path: /srv/debs
    collect: false
'''

RETURN = r'''
path:
  description: The repository folder.
  returned: success
  type: str
  sample: /opt/hpcllm-bundle/os-packages/compute
packages:
  description: How many packages the repository holds (installed packages with O(collect)).
  returned: success
  type: int
  sample: 412
downloaded:
  description: File names of the packages downloaded (to be downloaded in check mode).
  returned: success
  type: list
  elements: str
  sample: ["hello_2.10-3_amd64.deb", "libgmp10_2%3a6.2.1+dfsg1-1.1_amd64.deb"]
removed:
  description: File names of the packages removed because they are not installed.
  returned: success
  type: list
  elements: str
  sample: ["hello_2.10-2_amd64.deb"]
actions:
  description: What was done (or would be done in check mode).
  returned: success
  type: list
  elements: str
  sample: ["download 2 packages into /opt/hpcllm-bundle/os-packages/compute", "write /opt/hpcllm-bundle/os-packages/compute/Packages"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module
from ansible_collections.hpcllm.webui.plugins.module_utils._os_package_repo import OsPackageRepo


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            collect=dict(type='bool', default=True),
            prune=dict(type='bool', default=True),
            scratch=dict(type='path', default='/tmp/hpcllm-os-packages'),
            family=dict(type='str', choices=['Debian', 'RedHat']),
        ),
        supports_check_mode=True,
    )
    run_module(module, OsPackageRepo, prefix='os_package_repo')


if __name__ == '__main__':
    main()
