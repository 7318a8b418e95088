"""Benchmark of the whole deployment on the full-stack bench (molecule scenario `site`). Not a test.

Measured side by side in one run, in one fresh bench master: the wall time of the first
`ansible-playbook -i inventories/bench site.yml` (everything built and downloaded) and of
the second one (nothing to do), then of a third in check mode, their `changed` counts from the recap, and the ratio
second / first (and check / second). The second run must report changed=0 everywhere or the benchmark fails.

Usage: .venv/bin/python bench/bench_site_rerun.py [--keep]
Run by `make bench` (about 15-25 minutes on two cores: the first run builds the NVIDIA
module and CPython). The container is the scenario's (`$HPCLLM_BENCH_PREFIX-site`,
prefix `hpcllm-bench` here so it does not replace a demo); it is destroyed at the end
unless --keep. The first run compiles with an empty compiler cache of its own (a site's
first run has none: the bench's shared cache would make the first run look cheaper).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def molecule(*args: str, env: dict) -> None:
    subprocess.run([str(VENV_BIN / "molecule"), *args, "-s", "site"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def site_run(container: str, *extra: str) -> tuple[float, dict[str, int], str]:
    """One inner run of site.yml (extra: more ansible-playbook arguments); returns (seconds, {host: changed}, output)."""
    cmd = ["podman", "exec", "-e", "ANSIBLE_NOCOLOR=1", "-e", "WWCTL_DOUBLE_STATE=/var/lib/warewulf",
           "-e", "WWCTL_DOUBLE_VERSION=4.5.8", "-w", "/root/hpcllm-webui", container,
           "ansible-playbook", "-i", "inventories/bench", "site.yml", *extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"site.yml failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    changed = {m.group(1): int(m.group(2))
               for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", proc.stdout, re.MULTILINE)}
    return elapsed, changed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the bench master afterwards")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("HPCLLM_BENCH_PREFIX", "hpcllm-bench")
    env.setdefault("CONTAINERS_CONF", str(ROOT / "tests" / "bench" / "containers.conf"))
    container = f"{env['HPCLLM_BENCH_PREFIX']}-site"
    # an empty compiler cache, root's (the roles refuse one others can write to)
    cold_cache = tempfile.mkdtemp(prefix="hpcllm-bench-ccache.", dir="/var/tmp")
    os.chmod(cold_cache, 0o755)
    env["HPCLLM_BENCH_CCACHE"] = cold_cache
    molecule("destroy", env=env)
    try:
        molecule("create", env=env)
        molecule("prepare", env=env)
        first, changed1, _out1 = site_run(container)
        second, changed2, out2 = site_run(container)
        check, changed3, _out3 = site_run(container, "--check")
    finally:
        if not args.keep:
            molecule("destroy", env=env)
            # prepare keeps an image of the master for the scenario's air-gapped side effect
            subprocess.run(["podman", "rmi", "--ignore", f"localhost/{container}-offline-base:latest"], env=env, check=False,
                           capture_output=True)
        shutil.rmtree(cold_cache, ignore_errors=True)
    print("whole deployment on the bench (site.yml inside the master, same container, back to back)")
    print(f"  first run : {first:8.1f} s  changed={changed1}")
    print(f"  second run: {second:8.1f} s  changed={changed2}")
    print(f"  --check   : {check:8.1f} s  changed={changed3}")
    print(f"  second / first = {second / first:.3f}   --check / second = {check / second:.3f}")
    if any(changed2.values()):
        print(out2[-6000:])
        print("FAIL: the second run changed something")
        return 1
    if any(changed3.values()):
        print("FAIL: check mode after converge reports a change")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
