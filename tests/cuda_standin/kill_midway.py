# Test helper (not shipped behaviour): runs the cuda_relocate module and SIGKILLs it mid-copy.
"""Run plugins/modules/cuda_relocate.py as Ansible would (arguments in a JSON file), watch for a
file to appear in `<dest>.partial`, and SIGKILL the module's whole process group at that moment,
as a power cut or an OOM kill would. Prints one JSON line with what was left on disk; exits 1 if
the module finished (or failed) before it could be killed.

    python3 kill_midway.py --module M.py --pythonpath DIR --src S --dest D [--link L] --trigger REL
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", required=True)
    parser.add_argument("--pythonpath", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--link")
    parser.add_argument("--trigger", required=True, help="path relative to the tree whose copy triggers the kill")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)

    module_args = {"src": args.src, "dest": args.dest}
    if args.link:
        module_args["link"] = args.link
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": module_args}, handle)
        args_file = handle.name
    env = dict(os.environ, PYTHONPATH=args.pythonpath, LANG="C")
    trigger = os.path.join(args.dest + ".partial", args.trigger)
    proc = subprocess.Popen([sys.executable, args.module, args_file], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = False
    deadline = time.monotonic() + args.timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if os.path.lexists(trigger):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.0005)
    out, err = proc.communicate()
    os.unlink(args_file)
    marker = os.path.join(os.path.dirname(args.dest), "." + os.path.basename(args.dest) + ".cuda_relocate")
    report = {
        "killed": killed,
        "returncode": proc.returncode,
        "partial_exists": os.path.isdir(args.dest + ".partial"),
        "dest_exists": os.path.lexists(args.dest),
        "src_is_dir": os.path.isdir(args.src) and not os.path.islink(args.src),
        "marker": open(marker).read() if os.path.exists(marker) else None,
        "module_stdout": out.decode("utf-8", "replace")[-2000:],
        "module_stderr": err.decode("utf-8", "replace")[-2000:],
    }
    print(json.dumps(report, sort_keys=True))
    return 0 if killed else 1


if __name__ == "__main__":
    sys.exit(main())
