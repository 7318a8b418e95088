# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # What every module of the collection says the same way (with
    # ansible.builtin.action_common_attributes, which describes the attributes).
    DOCUMENTATION = r'''
options: {}
author:
  - hpcllm.webui developers (@hpcllm)
attributes:
  platform:
    platforms: posix
'''
