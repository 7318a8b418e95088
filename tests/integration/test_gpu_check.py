"""The launchers' GPU check (roles/models/files/webui_gpu_check.sh) with the stand-in nvidia-smi
(tests/gpu_standin), and the record it reads, taken from a real torch by the webui role's probe
(roles/webui/files/torch_gpu_record.py).

The decisions: a GPU the venv's torch has no code for stops the launch naming the GPU, its
capability, the torch build and the lock; CUDA_VISIBLE_DEVICES restricts the GPUs as CUDA does;
no GPU runs on the CPU (--cpu) or stops, as models_no_gpu says; a failing nvidia-smi is "no
GPU" on a node without an NVIDIA device and a broken driver on one with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "roles" / "models" / "files" / "webui_gpu_check.sh"
PROBE = REPO / "roles" / "webui" / "files" / "torch_gpu_record.py"
STANDIN = REPO / "tests" / "gpu_standin"
LOCK = "8466cf2-py311-x86_64.txt"
# torch 2.0.1+cu117 (PyPI) and 2.0.1+cu118 (PyTorch's index): TORCH_CUDA_ARCH_LIST of their builds
CU117 = {"TORCH_VERSION": "2.0.1+cu117", "TORCH_CUDA": "11.7", "TORCH_ARCHS": "sm_37 sm_50 sm_60 sm_70 sm_75 sm_80 sm_86"}
CU118 = {"TORCH_VERSION": "2.0.1+cu118", "TORCH_CUDA": "11.8", "TORCH_ARCHS": "sm_37 sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90"}
H100 = {"index": 0, "uuid": "GPU-5a7f1c2e-0b1d-4c3e-9f00-111111111111", "name": "NVIDIA H100 80GB HBM3", "compute_cap": "9.0"}
A100 = {"index": 0, "uuid": "GPU-8932f937-d72c-4106-c12f-222222222222", "name": "NVIDIA A100-SXM4-80GB", "compute_cap": "8.0"}
L40 = {"index": 0, "uuid": "GPU-0c1d2e3f-4a5b-6c7d-8e9f-333333333333", "name": "NVIDIA L40", "compute_cap": "8.9"}


def record(tmp_path: Path, torch: dict | None, lock: str = LOCK) -> Path:
    path = tmp_path / "torch-gpu.txt"
    fields = torch or {"TORCH_VERSION": "", "TORCH_CUDA": "", "TORCH_ARCHS": ""}
    path.write_text("# a comment\nWEBUI_LOCK=%s\n%s\n" % (lock, "\n".join(f"{k}={v}" for k, v in fields.items())))
    return path


def sysfs(tmp_path: Path, nvidia: bool) -> Path:
    """A sysfs with one PCI device: an NVIDIA 3D controller, or an Intel host bridge."""
    root = tmp_path / "sys"
    dev = root / "bus" / "pci" / "devices" / "0000:00:00.0"
    dev.mkdir(parents=True, exist_ok=True)
    (dev / "vendor").write_text("0x10de\n" if nvidia else "0x8086\n")
    (dev / "class").write_text("0x030200\n" if nvidia else "0x060000\n")
    return root


def check(tmp_path, torch, gpus=None, no_gpu="cpu", visible=None, fail=None, nvidia_smi=True, nvidia_on_pci=False,
          rec=None):
    env = {"PATH": (f"{STANDIN}:" if nvidia_smi else "") + "/usr/bin:/bin", "LANG": "C",
           "HPCLLM_SYSFS_ROOT": str(sysfs(tmp_path, nvidia_on_pci))}
    if gpus is not None:
        env["HPCLLM_STANDIN_GPUS"] = ";".join(f"{g['index']}|{g['uuid']}|{g['name']}|{g['compute_cap']}" for g in gpus)
    if fail is not None:
        env["HPCLLM_STANDIN_NVSMI_FAIL"] = str(fail)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    path = rec if rec is not None else record(tmp_path, torch)
    return subprocess.run(["bash", str(CHECK), str(path), no_gpu], env=env, capture_output=True, text=True, check=False)


def stopped(result, *parts):
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    for part in parts:
        assert part in result.stderr, result.stderr
    assert "Nothing was loaded." in result.stderr


def goes_on(result, *, cpu=False):
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("--cpu\n" if cpu else "")


def test_hopper_with_the_cu117_lock_stops_naming_gpu_capability_and_lock(tmp_path):
    stopped(check(tmp_path, CU117, [H100]),
            "GPU 0 (NVIDIA H100 80GB HBM3, GPU-5a7f1c2e-0b1d-4c3e-9f00-111111111111) has compute capability 9.0",
            "torch 2.0.1+cu117 (CUDA 11.7, built for sm_37 sm_50 sm_60 sm_70 sm_75 sm_80 sm_86; lock 8466cf2-py311-x86_64.txt)",
            "webui_lock: cu118 adds 9.0", "webui_lock_file", "CUDA_VISIBLE_DEVICES")


def test_hopper_with_a_cu118_build_goes_on(tmp_path):
    result = check(tmp_path, CU118, [H100])
    goes_on(result)
    assert "torch 2.0.1+cu118 (CUDA 11.8) runs on the visible GPU(s) (0: 9.0)" in result.stderr


@pytest.mark.parametrize("gpu", [A100, L40], ids=["A100-8.0", "L40-8.9-runs-sm_86"])
def test_ampere_and_ada_with_the_cu117_lock_go_on(tmp_path, gpu):
    goes_on(check(tmp_path, CU117, [gpu]))


def test_two_gpus_one_unsupported_and_cuda_visible_devices(tmp_path):
    gpus = [A100, dict(H100, index=1)]
    stopped(check(tmp_path, CU117, gpus), "GPU 1 (NVIDIA H100 80GB HBM3")
    goes_on(check(tmp_path, CU117, gpus, visible="0"))
    stopped(check(tmp_path, CU117, gpus, visible="1,0"), "GPU 1 (")
    stopped(check(tmp_path, CU117, gpus, visible="GPU-5a7f1c2e"), "GPU 1 (")  # a UUID prefix, as CUDA takes it
    goes_on(check(tmp_path, CU117, gpus, visible="GPU-8932f937,GPU-ffff,1"))  # CUDA stops at the first unknown entry
    result = check(tmp_path, CU117, gpus, visible="")
    goes_on(result, cpu=True)
    assert "CUDA_VISIBLE_DEVICES='' selects none of the 2 GPUs nvidia-smi lists" in result.stderr
    goes_on(check(tmp_path, CU117, gpus, visible="-1"), cpu=True)


@pytest.mark.parametrize("archs, cap, ok", [
    ("compute_80", "9.0", True),  # PTX is compiled by the driver for newer GPUs
    ("compute_90", "8.0", False),
    ("sm_90a", "9.0", True),
    ("sm_90a", "10.0", False),  # arch-specific code runs on that capability only
    ("sm_86", "8.0", False),  # a cubin runs on its own major with the same or a higher minor
    ("sm_100 sm_120", "12.0", True),
])
def test_what_runs_where(tmp_path, archs, cap, ok):
    torch = {"TORCH_VERSION": "9.9.9+cuXY", "TORCH_CUDA": "12.8", "TORCH_ARCHS": archs}
    result = check(tmp_path, torch, [dict(H100, compute_cap=cap)])
    assert result.returncode == (0 if ok else 1), result.stderr


def test_no_gpu_runs_on_the_cpu_or_stops_as_the_site_chose(tmp_path):
    result = check(tmp_path, CU117, [])  # nvidia-smi: "No devices were found", exit 6
    goes_on(result, cpu=True)
    assert "no NVIDIA GPU on this node (nvidia-smi exit 6: No devices were found): the web UI runs on the CPU" in result.stderr
    stopped(check(tmp_path, CU117, [], no_gpu="stop"), "no NVIDIA GPU on this node", "models_no_gpu: stop")
    result = check(tmp_path, CU117, nvidia_smi=False)
    goes_on(result, cpu=True)
    assert "no nvidia-smi on this node" in result.stderr


def test_failing_nvidia_smi_without_and_with_an_nvidia_device(tmp_path):
    """A CPU node booted from the GPU image has nvidia-smi but no driver loaded: CPU. On a node with
    an NVIDIA device on the PCI bus the same failure is a broken driver: stop."""
    message = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    result = check(tmp_path, CU117, fail=9)
    goes_on(result, cpu=True)
    assert f"nvidia-smi exit 9: {message}" in result.stderr
    stopped(check(tmp_path, CU117, fail=9, nvidia_on_pci=True),
            "an NVIDIA GPU is on this node's PCI bus but nvidia-smi fails (exit 9: " + message,
            "the driver is not working")


def test_a_venv_without_torch_is_not_checked(tmp_path):
    result = check(tmp_path, None, [H100])
    goes_on(result)
    assert f"the venv has no torch (lock {LOCK}): its GPU support is not checked" in result.stderr


def test_usage_errors_name_what_is_wrong(tmp_path):
    result = check(tmp_path, CU117, [A100], no_gpu="maybe")
    assert result.returncode == 1 and "NO_GPU must be cpu or stop (got 'maybe')" in result.stderr
    missing = tmp_path / "absent" / "torch-gpu.txt"
    result = check(tmp_path, CU117, [A100], rec=missing)
    assert result.returncode == 1 and f"{missing} not found: the webui role writes it" in result.stderr


@pytest.fixture(scope="module")
def torch_venv(tmp_path_factory) -> Path:
    """A venv with the real CPU torch (pip finds torch 2.13.0+cpu as it does on this machine)."""
    venv = tmp_path_factory.mktemp("torch") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "torch==2.13.0"],
                         capture_output=True, text=True, check=False)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


def test_record_from_the_real_cpu_torch_says_cpu_only(tmp_path, torch_venv):
    """The webui role's probe against a real torch (the CPU build): no CUDA, no architecture; the check
    then refuses a GPU as 'CPU only' instead of letting it through."""
    probe = subprocess.run([str(torch_venv / "bin" / "python"), "-c", PROBE.read_text()],
                           capture_output=True, text=True, check=True, env={**os.environ, "LANG": "C"})
    lines = probe.stdout.splitlines()
    assert lines[0].startswith("TORCH_VERSION=2.13.0") and lines[1:] == ["TORCH_CUDA=", "TORCH_ARCHS="]
    rec = tmp_path / "torch-gpu.txt"
    rec.write_text("WEBUI_LOCK=cpu-lock.txt\n" + probe.stdout)
    stopped(check(tmp_path, None, [H100], rec=rec),
            "GPU 0 (NVIDIA H100 80GB HBM3", "but the venv's torch 2.13.0", "is CPU only (lock cpu-lock.txt)")
    goes_on(check(tmp_path, None, [], rec=rec), cpu=True)


def test_record_of_a_venv_without_torch(tmp_path):
    probe = subprocess.run([sys.executable, "-I", "-c", PROBE.read_text()], capture_output=True, text=True, check=True)
    assert probe.stdout.splitlines() == ["TORCH_VERSION=", "TORCH_CUDA=", "TORCH_ARCHS="]
