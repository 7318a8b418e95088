"""module_utils._module: the one way the modules run and fail (run_module, ModuleFailure)."""

from __future__ import annotations

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._module import ModuleFailure, run_module


class Exit(Exception):
    """exit_json or fail_json was called (as AnsibleModule's end the process)."""


class FakeModule:
    def __init__(self):
        self.params = {"value": 1}
        self.warned = []
        self.ended = None

    def warn(self, text):
        self.warned.append(text)

    def exit_json(self, **result):
        self.ended = ("exit", result)
        raise Exit()

    def fail_json(self, **result):
        self.ended = ("fail", result)
        raise Exit()


class Logic:
    """A logic class as the modules have: from_module, run, warnings."""

    def __init__(self, outcome, warnings=()):
        self.outcome = outcome
        self.warnings = list(warnings)

    @classmethod
    def make(cls, outcome, warnings=(), refuse=None):
        class Bound(cls):
            @classmethod
            def from_module(cls, module):
                if refuse is not None:
                    raise refuse
                return cls(outcome, warnings)
        return Bound

    def run(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return dict(self.outcome)


def run(logic, prefix=None):
    module = FakeModule()
    with pytest.raises(Exit):
        run_module(module, logic, prefix=prefix)
    return module


@pytest.mark.parametrize("outcome, prefix, ended", [
    ({"changed": True, "x": 1}, None, ("exit", {"changed": True, "x": 1})),
    (ModuleFailure("broken", cmd=["wwctl"], rc=2), None, ("fail", {"msg": "broken", "cmd": ["wwctl"], "rc": 2})),
    (ModuleFailure("broken"), "bundle_import", ("fail", {"msg": "bundle_import: broken"})),
    (OSError(28, "No space left on device", "/opt/x"), "deploy_lock",
     ("fail", {"msg": "deploy_lock: [Errno 28] No space left on device: '/opt/x'"})),
])
def test_the_result_or_the_failure_with_its_fields(outcome, prefix, ended):
    assert run(Logic.make(outcome), prefix).ended == ended


def test_a_refusal_in_from_module_fails_with_its_message():
    module = run(Logic.make({"changed": False}, refuse=ModuleFailure("timeout must be 0 or more seconds (got -1)")))
    assert module.ended == ("fail", {"msg": "timeout must be 0 or more seconds (got -1)"})


@pytest.mark.parametrize("outcome", [{"changed": False, "warnings": ["from the result"]}, ModuleFailure("broken")])
def test_warnings_are_shown_whether_it_passes_or_fails(outcome):
    module = run(Logic.make(outcome, warnings=["from the logic"]))
    expected = ["from the logic"] + (["from the result"] if isinstance(outcome, dict) else [])
    assert module.warned == expected
    assert "warnings" not in module.ended[1]


def test_an_unexpected_error_is_not_swallowed():
    module = FakeModule()
    with pytest.raises(KeyError):
        run_module(module, Logic.make(KeyError("bug")))
    assert module.ended is None


def test_a_failure_prints_as_its_message():
    assert str(ModuleFailure("broken", rc=1)) == "broken"
    assert ModuleFailure("broken", rc=1).as_result() == {"msg": "broken", "rc": 1}
