"""The failure_message filter: how every rescue block words the failure it caught."""

from __future__ import annotations

import pytest

from ansible_collections.hpcllm.webui.plugins.filter.failure_message import failure_message


@pytest.mark.parametrize("result, task, expected", [
    ({"msg": "No package matching 'x'", "reason": "ignored"}, None, "No package matching 'x'"),
    ({"reason": "Host unreachable"}, None, "Host unreachable"),
    ({}, None, "failed"),
    (None, None, "failed"),
    ({"msg": "rc 1"}, {"name": "Build the module"}, "Build the module: rc 1"),
    ({"msg": "rc 1"}, {}, "a task: rc 1"),
    ({"msg": "rc 1"}, {"name": ""}, "a task: rc 1"),
    ({"reason": "gone"}, "not a task", "a task: gone"),
])
def test_message_then_reason_then_failed_with_the_tasks_name(result, task, expected):
    assert failure_message(result, task) == expected
