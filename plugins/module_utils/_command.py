# -*- coding: utf-8 -*-
# Copyright (c) 2026, hpcllm.webui developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection's modules run a command: community.general's CmdRunner.

Each program gets a CmdRunner: found with ``get_bin_path`` (a missing program fails the module
naming it), run as an argument list through the module's ``run_command`` with ``LANG`` and ``LC_ALL`` C
(output is parsed: never localized). The collection's commands are built from data, not from
the module's options (wwctl's verbs differ by version, git's and dpkg's arguments come from the
work at hand), so each runner has one argument, ``args``: the list after the program.

The logic classes take ``run(argv, cwd=None) -> (rc, stdout, stderr)`` (``argv_runner``), so
that unit tests can give them recorded output instead of a module.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.community.general.plugins.module_utils import cmd_runner_fmt
from ansible_collections.community.general.plugins.module_utils.cmd_runner import CmdRunner


def command_runner(module, program, environ_update=None):
    """A CmdRunner for program (a name looked up on PATH, or a path)."""
    # CmdRunner's force_lang sets LC_ALL and LANGUAGE; LANG too, as STYLE asks
    environ = dict(LANG='C')
    environ.update(environ_update or {})
    return CmdRunner(module, program, arg_formats=dict(args=cmd_runner_fmt.as_list()), force_lang='C',
                     environ_update=environ)


def run(runner, args, cwd=None):
    """(rc, stdout, stderr) of runner's program with args, from cwd when given."""
    extra = {'cwd': cwd} if cwd else {}
    with runner('args', **extra) as ctx:
        return ctx.run(args=list(args))


def argv_runner(module, environ_update=None):
    """run(argv, cwd=None) -> (rc, stdout, stderr): argv[0] the program, one CmdRunner per program."""
    runners = {}

    def run_argv(argv, cwd=None):
        program = argv[0]
        if program not in runners:
            runners[program] = command_runner(module, program, environ_update)
        return run(runners[program], argv[1:], cwd)
    return run_argv
