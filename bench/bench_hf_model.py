"""Benchmark of hpcllm.webui.hf_model against the local hub stand-in (tests/hubserver). Not a test.

Measured side by side in one run, against the same server on 127.0.0.1:
  1. download throughput: hf_model (through ansible-playbook) vs `hf download` (huggingface_hub's CLI)
     vs plain `curl --parallel` of the same files (4 files of 1 GiB) and vs curl followed by
     `sha256sum` of what it wrote (what hf_model guarantees), and hf_model vs curl on one file
     of 4 GiB; each timed step starts after `sync` (and, as root, with the clean page cache dropped),
     curl and hf_model alternate and the median of their runs counts (--rounds);
  2. no-op re-run time: a model of several GB (sparse files on the server side) vs a tiny one,
     with verify=size (stat only) and verify=sha256 (reads everything) for contrast;
  3. bytes on disk / model bytes after hf_model and after `hf download` (the seed's git lfs clone is measured by bench_model_disk.py).

Usage: .venv/bin/python bench/bench_hf_model.py [--quick] [--rounds N] [--workdir DIR]
Run by `make bench`; exits 0 on success. Needs curl on PATH for the curl column (skipped otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hubserver"))

from hubserver import Blob, Hub  # noqa: E402  pylint: disable=wrong-import-position

VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024


def collections_path() -> Path:
    """The checkout laid out as ansible_collections/hpcllm/webui (same link as tests/conftest.py)."""
    base = ROOT / ".build" / "collections"
    link = base / "ansible_collections" / "hpcllm" / "webui"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT)
    return base


def settle() -> bool:
    """Write out what earlier steps left dirty and, as root, drop the clean page cache: every timed step
    starts alike (no earlier tool's pages being written out beside it or reclaimed for it). True if dropped."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as fh:
            fh.write("1\n")
        return True
    except OSError:
        return False


def timed(args, env) -> float:
    settle()
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"bench: command failed: {' '.join(map(str, args))}")
    return elapsed


def disk_bytes(root: Path) -> int:
    """Allocated bytes (st_blocks) of every file under root, bookkeeping included."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


class Bench:
    def __init__(self, work: Path, hub: Hub):
        self.work = work
        self.hub = hub
        self.env = dict(os.environ)
        self.env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collections_path()),
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
            ANSIBLE_NOCOLOR="1",
            HF_HOME=str(work / "hf_home"),
            HF_ENDPOINT=hub.url,
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        self.env.pop("HF_TOKEN", None)
        self.n = 0

    def hf_model(self, repo_id: str, dest: Path, **args) -> float:
        self.n += 1
        task = {"hpcllm.webui.hf_model": dict(repo_id=repo_id, dest=str(dest), endpoint=self.hub.url, **args)}
        play = self.work / f"play{self.n}.yml"
        play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
        env = dict(self.env, HF_HOME=str(self.work / "hf_home_hf_model"))
        return timed([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)], env)

    def hf_cli(self, repo_id: str, dest: Path) -> float:
        return timed([str(VENV_BIN / "hf"), "download", repo_id, "--local-dir", str(dest)], self.env)

    def curl(self, repo_id: str, files: list[str], dest: Path) -> float | None:
        curl = shutil.which("curl")
        if curl is None:
            return None
        dest.mkdir(parents=True)
        commit = self.hub.repos[repo_id].refs["main"]
        args = [curl, "-sS", "--fail", "--parallel", "--parallel-max", "8"]
        for name in files:
            args += ["-o", str(dest / name), f"{self.hub.url}/{repo_id}/resolve/{commit}/{name}"]
        return timed(args, self.env)

    def sha256sum(self, dest: Path, files: list[str]) -> float | None:
        """coreutils' sha256sum over what curl wrote (from the page cache, as right after a download)."""
        tool = shutil.which("sha256sum")
        if tool is None:
            return None
        return timed([tool, *(str(dest / name) for name in files)], self.env)


def runs(times: list) -> str:
    return " ".join(f"{t:.2f}" for t in times)


def make_repo(hub: Hub, store: Path, repo_id: str, sizes: list[int]) -> tuple[list[str], int]:
    """A repo with config/tokenizer files and sparse safetensors shards of the given sizes."""
    hub.create_repo(repo_id)
    files: dict[str, object] = {
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "torch_dtype": "float16"}).encode(),
        "tokenizer_config.json": b'{"model_max_length": 16384}',
        "generation_config.json": b'{"bos_token_id": 1, "eos_token_id": 2}',
    }
    for i, size in enumerate(sizes, 1):
        name = f"model-{i:05d}-of-{len(sizes):05d}.safetensors"
        path = store / f"{repo_id.replace('/', '--')}--{name}"
        files[name] = Blob.sparse(str(path), size, seed=f"{repo_id}:{name}".encode())
    hub.commit(repo_id, "main", files)
    total = sum(len(v) if isinstance(v, bytes) else v.size for v in files.values())
    return sorted(files), total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run of the benchmark itself)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of curl and hf_model (default 3)")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary folder, removed afterwards)")
    opts = parser.parse_args()
    shard = (16 if opts.quick else 1024) * MIB
    big_shard = (32 if opts.quick else 768) * MIB
    one_file = (64 if opts.quick else 4096) * MIB

    work = Path(tempfile.mkdtemp(prefix="bench_hf_model.", dir=opts.workdir))
    hub = Hub().start()
    try:
        store = work / "server"
        store.mkdir()
        t0 = time.perf_counter()
        mid_files, mid_bytes = make_repo(hub, store, "Bench/Throughput", [shard] * 4)
        big_files, big_bytes = make_repo(hub, store, "Bench/Big", [big_shard] * 4)
        tiny_files, tiny_bytes = make_repo(hub, store, "Bench/Tiny", [64 * 1024])
        one_files, one_bytes = make_repo(hub, store, "Bench/One", [one_file])
        setup = time.perf_counter() - t0
        bench = Bench(work, hub)

        # 1. throughput, same files, same server: curl and hf_model alternate, the median of each counts
        # (the disk's write-back makes single runs vary by a third here); the CLI once, for reference
        t_curls, t_mods, t_sums = [], [], []
        for n in range(opts.rounds):
            t_curls.append(bench.curl("Bench/Throughput", mid_files, work / "curl"))
            # what hf_model guarantees and curl does not: every byte's sha256 checked (timed apart, after curl)
            t_sums.append(bench.sha256sum(work / "curl", mid_files) if t_curls[-1] is not None else None)
            shutil.rmtree(work / "curl", ignore_errors=True)
            if n:
                shutil.rmtree(work / "hf_model")
            t_mods.append(bench.hf_model("Bench/Throughput", work / "hf_model"))
        t_curl = None if None in t_curls else statistics.median(t_curls)
        t_curl_sum = None if t_curl is None or None in t_sums else statistics.median(c + h for c, h in zip(t_curls, t_sums))
        t_mod = statistics.median(t_mods)
        t_cli = bench.hf_cli("Bench/Throughput", work / "hf_cli")
        t_start = bench.hf_model("Bench/Tiny", work / "tiny")  # first tiny download
        t_noop_tiny = bench.hf_model("Bench/Tiny", work / "tiny")
        rows = []
        for name, secs in (("curl --parallel", t_curl), ("curl --parallel, then sha256sum", t_curl_sum),
                           ("hf download (CLI)", t_cli), ("hf_model (ansible-playbook)", t_mod)):
            if secs is not None:
                rows.append((name, secs, mid_bytes / MIB / secs))

        # 1b. one big file (one stream for either tool), alternating the same way; each result removed
        t_curl_ones, t_mod_ones = [], []
        for n in range(opts.rounds):
            t_curl_ones.append(bench.curl("Bench/One", one_files, work / "curl_one"))
            shutil.rmtree(work / "curl_one", ignore_errors=True)
            t_mod_ones.append(bench.hf_model("Bench/One", work / "one"))
            shutil.rmtree(work / "one", ignore_errors=True)
        t_curl_one = None if None in t_curl_ones else statistics.median(t_curl_ones)
        t_mod_one = statistics.median(t_mod_ones)

        # 2. no-op re-runs
        t_big_first = bench.hf_model("Bench/Big", work / "big")
        hub.clear()
        t_noop_big = bench.hf_model("Bench/Big", work / "big")
        gets_noop = len(hub.requests("GET", "/resolve/"))
        t_noop_big_sha = bench.hf_model("Bench/Big", work / "big", verify="sha256")

        # 3. disk usage
        disk_mod = disk_bytes(work / "hf_model") / mid_bytes
        disk_cli = disk_bytes(work / "hf_cli") / mid_bytes
        disk_big = disk_bytes(work / "big") / big_bytes
        home_cli = sum(len(f) for _d, _s, f in os.walk(work / "hf_home"))
        home_mod = sum(len(f) for _d, _s, f in os.walk(work / "hf_home_hf_model"))

        print(f"hf_model benchmark: local hub stand-in on {hub.url}, {os.cpu_count()} CPUs, setup {setup:.1f}s")
        print()
        print(f"1. Download throughput, {len(mid_files)} files, {mid_bytes / MIB:.0f} MiB (same server; curl and hf_model:"
              f" median of {opts.rounds} alternating runs, the CLI once)")
        print(f"   {'tool':32} {'seconds':>8} {'MiB/s':>8} {'vs curl':>8} {'vs hf':>8}")
        ref_curl = t_curl
        for name, secs, rate in rows:
            vs_curl = f"{ref_curl / secs:8.2f}" if ref_curl else "     n/a"
            print(f"   {name:32} {secs:8.2f} {rate:8.0f} {vs_curl} {t_cli / secs:8.2f}")
        if ref_curl is None:
            print("   (curl not found on PATH: curl column skipped)")
        print(f"   (ratios are speed relative to that tool; hf_model includes ansible-playbook startup,"
              f" {t_noop_tiny:.2f}s for a no-op)")
        if ref_curl:
            print(f"   hf_model vs curl without that start-up (hf_model's time less the no-op run's):"
                  f" {ref_curl / max(t_mod - t_noop_tiny, 1e-3):.2f}")
            print(f"   runs: curl {runs(t_curls)}; sha256sum after it {runs(t_sums)}; hf_model {runs(t_mods)}")
            if t_curl_sum:
                print(f"   hf_model vs curl then sha256sum (the same guarantee: every byte checked): {t_curl_sum / t_mod:.2f}")
        print()
        one_size = f"{one_bytes / MIB / 1024:.2f} GiB" if one_bytes >= 1024 * MIB else f"{one_bytes / MIB:.0f} MiB"
        print(f"1b. One file of {one_size} (one stream each, same server, median of {opts.rounds} alternating runs)")
        if t_curl_one is not None:
            print(f"   curl                             {t_curl_one:8.2f} {one_bytes / MIB / t_curl_one:8.0f}")
        print(f"   hf_model (ansible-playbook)      {t_mod_one:8.2f} {one_bytes / MIB / t_mod_one:8.0f}"
              + (f"   vs curl {t_curl_one / t_mod_one:.2f}, without start-up"
                 f" {t_curl_one / max(t_mod_one - t_noop_tiny, 1e-3):.2f}" if t_curl_one else ""))
        if t_curl_one:
            print(f"   runs: curl {runs(t_curl_ones)}; hf_model {runs(t_mod_ones)}")
        print()
        print("2. No-op re-run time (ansible-playbook wall clock)")
        print(f"   tiny model, {len(tiny_files)} files, {tiny_bytes / 1024:.0f} KiB, verify=size      {t_noop_tiny:6.2f}s")
        print(f"   big model, {len(big_files)} files, {big_bytes / MIB / 1024:.2f} GiB, verify=size    {t_noop_big:6.2f}s"
              f"   ratio big/tiny {t_noop_big / t_noop_tiny:.2f}  (file GETs: {gets_noop})")
        print(f"   big model, verify=sha256 (reads every byte)      {t_noop_big_sha:6.2f}s"
              f"   ratio big/tiny {t_noop_big_sha / t_noop_tiny:.2f}")
        print(f"   (first download of the big model took {t_big_first:.2f}s,"
              f" {big_bytes / MIB / t_big_first:.0f} MiB/s; first tiny run {t_start:.2f}s)")
        print()
        print("3. Bytes on disk / model bytes")
        print(f"   hf_model                      {disk_mod:6.3f}")
        print(f"   hf_model, big model           {disk_big:6.3f}")
        print(f"   hf download --local-dir       {disk_cli:6.3f}")
        print("   git lfs clone (seed recipe)    measured side by side in bench/bench_model_disk.py")
        print(f"   files written under HF_HOME: hf_model runs {home_mod}, hf download {home_cli}")
        return 0
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
