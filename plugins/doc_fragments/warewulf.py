# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The modules that run wwctl.
    DOCUMENTATION = r'''
options: {}
requirements:
  - Warewulf 4.4, 4.5 or 4.6 (C(wwctl)) on the managed host.
notes:
  - C(wwctl) runs as an argument list with C(LANG=C); its version (C(wwctl version)) picks the verbs
    (C(container) up to 4.5, C(image) on 4.6).
'''

    # Where the built image files are.
    PROVISION_DIR = r'''
options:
  provision_dir:
    description:
      - Warewulf's provision folder, where the built image files are (C(container/NAME.img), C(images/NAME.img) on 4.6).
    type: path
    default: /var/lib/warewulf/provision
'''
