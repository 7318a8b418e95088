"""nvidia_driver's CUDA toolkit path on Debian 12, for real, in podman containers playing the image.

A stand-in of NVIDIA's debian12 CUDA repository (tests/cuda_standin/make_deb_repo.py: cuda-toolkit-12-3,
nsight-systems, and decoys named like Debian's non-free driver packages at NVIDIA's higher versions, signed with a
throwaway key served as 3bf863cc.pub) is served inside the container on 127.0.0.1:8080. The role's own tasks
(tasks/cuda_toolkit_Debian.yml) run through ansible-playbook: check mode on the fresh image, then the repository
(deb822 source, key, pin) and the toolkit from it, Debian's driver packages still Debian's, the repository's lists read
again when they are gone; and every error path with its message. A second run and a check run changing nothing, and
the offline bundle's collector taking the toolkit, are the site scenario's (its week-later run and `--check` after
converge, both `changed=0`; its air-gapped rebuild installs the toolkit from the bundle's package repository).
Skipped without podman or the bench image (tests/bench/build-images.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from image_hosts import image_result as _result
from image_hosts import write_inventory

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "cuda_toolkit" / "toolkit.yml"
IMAGE = os.environ.get("HPCLLM_BENCH_BASE_IMAGE", "localhost/hpcllm-bench-debian12:latest")
PREFIX = os.environ.get("HPCLLM_BENCH_PREFIX", "hpcllm")
URL = "http://127.0.0.1:8080/cuda/debian12/x86_64"
UNLABELLED = "http://127.0.0.1:8080/unlabelled"
SOURCE = "/etc/apt/sources.list.d/hpcllm-nvidia-cuda.sources"
PIN = "/etc/apt/preferences.d/hpcllm-nvidia-cuda"
KEY = "/etc/apt/keyrings/hpcllm-nvidia-cuda.asc"
ENV = {"CONTAINERS_CONF": str(REPO / "tests" / "bench" / "containers.conf")}


def _podman(*args, check=True):
    env = dict(os.environ, **ENV)
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, env=env, timeout=300)


def _have_tools():
    if any(shutil.which(tool) is None for tool in ("podman", "dpkg-deb", "dpkg-scanpackages", "gpg")):
        return False
    return _podman("image", "exists", IMAGE, check=False).returncode == 0


pytestmark = [pytest.mark.skipif(not _have_tools(), reason=f"podman, dpkg-dev, gpg or {IMAGE} missing")]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """The stand-in repository (NVIDIA's Release fields) and one whose Release does not say NVIDIA's."""
    root = tmp_path_factory.mktemp("cuda-mirror")
    make = REPO / "tests" / "cuda_standin" / "make_deb_repo.py"
    subprocess.run([sys.executable, str(make), "--out", str(root / "mirror" / "cuda" / "debian12" / "x86_64"),
                    "--manifest", str(root / "cuda.manifest"), "--nsight-manifest", str(root / "nsight.manifest")],
                   check=True)
    subprocess.run([sys.executable, str(make), "--out", str(root / "mirror" / "unlabelled"),
                    "--origin", "Example", "--label", "Example CUDA"], check=True)
    return root


@pytest.fixture
def image(mirror):
    """Start an image container serving the mirror on 127.0.0.1:8080, with non-free in its sources."""
    started = []

    def start():
        name = f"{PREFIX}-cudatk-{uuid.uuid4().hex[:6]}"
        _podman("run", "-d", "--init", "--name", name, IMAGE, "sleep", "infinity")
        started.append(name)
        _podman("cp", str(mirror / "mirror"), f"{name}:/srv/mirror")
        _podman("exec", name, "sed", "-i", r"s/^\(deb .* bookworm\) main$/\1 main contrib non-free non-free-firmware/",
                "/etc/apt/sources.list")
        _podman("exec", "-d", name, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                "/srv/mirror", "8080")
        for _attempt in range(50):
            if _podman("exec", name, "python3", "-c", "import urllib.request; urllib.request.urlopen("
                       f"'{URL}/Release')", check=False).returncode == 0:
                break
            time.sleep(0.2)
        return name

    yield start
    for name in started:
        _podman("rm", "-f", "-t", "0", name, check=False)


def _inventory(tmp_path, name, **host_vars):
    return write_inventory(tmp_path, name, **{"nvidia_driver_debian_cuda_repo_url": URL, **host_vars})


def _exists(name, path):
    return _podman("exec", name, "test", "-e", path, check=False).returncode == 0


def _installed(name, package):
    out = _podman("exec", name, "dpkg-query", "-W", "-f", "${Status}|${Version}", package, check=False).stdout
    return out.split("|")[1] if out.startswith("install ok installed") else None


def test_toolkit_from_the_pinned_repository(ansible_playbook, image, mirror, tmp_path):
    name = image()
    inventory = _inventory(tmp_path, name)

    # check mode on the fresh image: reports the repository, writes nothing, does not fail
    check = ansible_playbook(PLAYBOOK, inventory=inventory, env=ENV, check=True)
    assert check.rc == 0, check.stdout + check.stderr
    assert _result(check, "Add the repository")["changed"] is True
    assert not any(_exists(name, path) for path in (SOURCE, PIN, KEY))
    assert _installed(name, "cuda-toolkit-12-3") is None

    first = ansible_playbook(PLAYBOOK, inventory=inventory, env=ENV)
    assert first.rc == 0, first.stdout + first.stderr
    assert _result(first, "Install the CUDA toolkit")["changed"] is True
    assert _installed(name, "cuda-toolkit-12-3") == "12.3.2-1"
    assert _installed(name, "nsight-systems-2023.3.3") == "2023.3.3.42-1"
    _podman("cp", str(REPO / "tests" / "cuda_standin" / "make_tree.py"), f"{name}:/tmp/make_tree.py")
    assert _podman("exec", name, "python3", "/tmp/make_tree.py", "--manifest-of", "/usr/local/cuda-12.3").stdout \
        == (mirror / "cuda.manifest").read_text()
    assert _podman("exec", name, "python3", "/tmp/make_tree.py", "--manifest-of",
                   "/opt/nvidia/nsight-systems/2023.3.3").stdout == (mirror / "nsight.manifest").read_text()
    source = _podman("exec", name, "cat", SOURCE).stdout
    assert f"URIs: {URL}/\nSuites: /\nSigned-By: {KEY}\n" in source
    assert "Pin: release o=NVIDIA,l=NVIDIA CUDA\nPin-Priority: 100\n" in _podman("exec", name, "cat", PIN).stdout

    # Debian's non-free driver packages stay Debian's: the candidates and what apt would install are 535, never the
    # stand-in repository's 545 decoys, which apt does list (at priority 100)
    for package in ("nvidia-smi", "libcuda1", "nvidia-kernel-dkms"):
        policy = _podman("exec", name, "apt-cache", "policy", package).stdout
        assert "545.23.08-1 100" in policy, policy
        candidate = [line.split()[1] for line in policy.splitlines() if line.strip().startswith("Candidate:")]
        assert candidate and candidate[0].startswith("535."), policy
    sim = _podman("exec", name, "apt-get", "-s", "install", "--no-install-recommends",
                  "nvidia-smi", "libcuda1").stdout
    installs = [line for line in sim.splitlines() if line.startswith(("Inst nvidia-smi ", "Inst libcuda1 "))]
    assert len(installs) == 2 and all("(535." in line and "Debian:" in line for line in installs), sim
    assert not _exists(name, "/usr/share/doc/nvidia-smi-standin")

    # the repository's list gone (a run stopped between adding the repository and reading it): read again, not a stop
    _podman("exec", name, "sh", "-c", "rm -f /var/lib/apt/lists/127.0.0.1*")
    healed = ansible_playbook(PLAYBOOK, inventory=inventory, env=ENV)
    assert healed.rc == 0, healed.stdout
    assert not _result(healed, "Read the repository's package list").get("skipped")

    # a toolkit package the repository lacks: named, with the repository
    missing = ansible_playbook(PLAYBOOK, {"nvidia_driver_cuda_toolkit_package": "cuda-toolkit-12-9"},
                               inventory=inventory, env=ENV)
    assert missing.rc != 0
    msg = _result(missing, "Stop, naming the toolkit's package and where it was looked for")["msg"]
    assert msg.startswith(f"nvidia_driver_cuda_toolkit_package: cuda-toolkit-12-9 could not be installed from {URL} "
                          "(nvidia_driver_cuda_toolkit false installs none): "), msg

    # a value that is no URL stops at the door
    bad = ansible_playbook(PLAYBOOK, {"nvidia_driver_debian_cuda_repo_url": "developer.download.nvidia.com/x"},
                           inventory=inventory, env=ENV)
    assert bad.rc != 0
    msg = _result(bad, "Validate the repository settings")["msg"]
    assert msg.startswith("nvidia_driver_debian_cuda_repo_url and nvidia_driver_debian_cuda_repo_key_url must be"), msg
    assert "'developer.download.nvidia.com/x'" in msg


def test_repository_errors_name_the_setting(ansible_playbook, image, tmp_path):
    name = image()

    # the key cannot be downloaded: stops naming both URL settings, no source written
    inventory = _inventory(tmp_path, name, nvidia_driver_debian_cuda_repo_key_url=f"{URL}/missing.pub")
    run = ansible_playbook(PLAYBOOK, inventory=inventory, env=ENV)
    assert run.rc != 0
    msg = _result(run, "Stop, naming the repository settings")["msg"]
    assert msg.startswith(f"nvidia_driver_debian_cuda_repo_url ({URL}) / nvidia_driver_debian_cuda_repo_key_url "
                          f"({URL}/missing.pub): Download the repository's signing key: "), msg
    assert not _exists(name, SOURCE) and not _exists(name, PIN)

    # a repository whose Release does not say NVIDIA's fields: the pin would not hold it below Debian
    inventory = _inventory(tmp_path, name, nvidia_driver_debian_cuda_repo_url=UNLABELLED)
    run = ansible_playbook(PLAYBOOK, inventory=inventory, env=ENV)
    assert run.rc != 0
    msg = _result(run, "Stop, naming the repository settings")["msg"]
    assert f"Stop unless the pin holds the repository below Debian: nvidia_driver_debian_cuda_repo_url: apt gives " \
           f"{UNLABELLED} priority 500, not 100: its Release file must say `Origin: NVIDIA`" in msg, msg
    assert _installed(name, "cuda-toolkit-12-3") is None


def test_offline_bundle_adds_no_repository(ansible_playbook, image, tmp_path):
    """With chroot_prep_packages_repo set, nothing of NVIDIA's is added; the toolkit must come from the image's sources
    (the bundle): here Debian's, which lack it, so the run stops naming the package and the bundle."""
    name = image()
    inventory = _inventory(tmp_path, name, chroot_prep_packages_repo="/opt/bundle/compute")
    run = ansible_playbook(PLAYBOOK, inventory=inventory, env=ENV)
    assert run.rc != 0
    msg = _result(run, "Stop, naming the toolkit's package and where it was looked for")["msg"]
    assert msg.startswith("nvidia_driver_cuda_toolkit_package: cuda-toolkit-12-3 could not be installed from the "
                          "image package sources (offline bundle: chroot_prep_packages_repo)"), msg
    assert not any(_exists(name, path) for path in (SOURCE, PIN, KEY))
    assert "127.0.0.1:8080" not in _podman("exec", name, "apt-cache", "policy").stdout
