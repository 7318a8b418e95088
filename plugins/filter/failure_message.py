# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way a rescue block words the failure it caught (the plays record it, the roles re-raise it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: failure_message
short_description: Word the failure a rescue block caught
version_added: 0.4.0
description:
  - Takes C(ansible_failed_result) and returns its C(msg), else its C(reason) (an unreachable host, a
    missing file), else C(failed); with C(task) (C(ansible_failed_task)) the failed task's name comes first,
    then a colon and the message.
  - Either variable may be undefined (a rescue reached without a failed task), so pass it through C(default({})).
positional: task
options:
  _input:
    description: The failed task's result (C(ansible_failed_result)).
    type: dict
    required: true
  task:
    description: The failed task (C(ansible_failed_task)); its name is put before the message.
    type: dict
"""

EXAMPLES = r"""
- name: Record the failure (the teardown must still run)
  ansible.builtin.set_fact:
    _failure: "system: {{ ansible_failed_result | default({}) | hpcllm.webui.failure_message(ansible_failed_task | default({})) }}"
"""

RETURN = r"""
_value:
  description: The message, with the task's name first when C(task) is given (C(a task) when it has none).
  type: str
"""


def failure_message(result, task=None):
    """msg, else reason, else 'failed'; 'name: ...' when task is given."""
    result = result if isinstance(result, dict) else {}
    message = result.get('msg', result.get('reason', 'failed'))
    if task is None:
        return '%s' % (message,)
    name = task.get('name', 'a task') if isinstance(task, dict) else 'a task'
    return '%s: %s' % (name or 'a task', message)


class FilterModule(object):
    def filters(self):
        return {"failure_message": failure_message}
