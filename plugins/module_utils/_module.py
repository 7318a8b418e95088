# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection's modules run and fail.

A module's ``main()`` is its argument spec and ``run_module(module, Logic)``. ``Logic.from_module(module)``
reads what it needs from the module (parameters, check and diff mode, a command runner) and
may refuse bad input; ``.run()`` returns the result. Every failure a module reports is a
``ModuleFailure`` (each module family's error class derives from it): its message and the
result fields it carries (the command and its output, what was done before the failure ...)
go to ``fail_json``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleFailure(Exception):
    """A failure to report through fail_json: msg plus the result fields it carries."""

    def __init__(self, msg, **result):
        super(ModuleFailure, self).__init__(msg)
        self.msg = msg
        self.result = result

    def __str__(self):
        return self.msg

    def as_result(self):
        failed = dict(self.result)
        failed['msg'] = self.msg
        return failed


def run_module(module, logic, prefix=None):
    """Run logic.from_module(module).run() and exit with its result, or fail with the failure's fields.

    prefix: put before every failure message (the module's name, where its messages always had it).
    An OSError (a file that cannot be read or written) fails with its message. Warnings (a
    `warnings` list of the logic object or of the result) are shown either way.
    """
    instance = None
    try:
        instance = logic.from_module(module)
        result = instance.run()
        failed = False
    except ModuleFailure as exc:
        result = exc.as_result()
        failed = True
    except (IOError, OSError) as exc:
        # a file that cannot be read or written: its message names it
        result = {'msg': str(exc)}
        failed = True
    if failed and prefix:
        result['msg'] = '%s: %s' % (prefix, result['msg'])
    for warning in list(getattr(instance, 'warnings', None) or []) + list(result.pop('warnings', None) or []):
        module.warn(warning)
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)
