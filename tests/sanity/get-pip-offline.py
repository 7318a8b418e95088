# Stand-in for the pip bootstrap script that ansible-test downloads from
# ci-files.testing.ansible.com (not reachable here). ansible-test documents saving the
# script by hand to ~/.ansible/test/cache/get_pip_<version>.py; `make sanity` puts this
# file there. Like get-pip.py it is run with the new virtualenv's Python and the
# arguments of `pip install` plus get-pip's own --no-setuptools/--no-wheel flags: it
# seeds pip from the standard library's ensurepip, then lets that pip install the pinned
# pip and packages ansible-test asked for, from the package index pip is configured for.
"""Bootstrap pip into an empty virtual environment, as get-pip.py does."""

import os
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def main(argv):
    args = [a for a in argv if a not in GET_PIP_ONLY_FLAGS]
    env = dict(os.environ)
    env.pop("GET_PIP", None)
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], env=env)
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args, env=env)


if __name__ == "__main__":
    main(sys.argv[1:])
