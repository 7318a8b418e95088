"""chroot_prep image_packages_collect / image_packages_source on real Debian 12 containers (podman).

A connected container (the "image") installs hello from deb.debian.org, collects every installed package into a
folder (twice: the second run changes nothing, and the image's files outside /tmp keep their ctimes); the folder is
copied into a second container started with --network none, which points apt at it and installs hello offline at
exactly the collected version. Skipped without podman or the bench image (tests/bench/build-images.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from image_hosts import image_result as _result
from image_hosts import write_inventory as _inventory

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks" / "os_packages"
IMAGE = os.environ.get("HPCLLM_BENCH_BASE_IMAGE", "localhost/hpcllm-bench-debian12:latest")
DEST = "/tmp/bundle/compute"
OFFLINE_REPO = "/opt/bundle/compute"
# Changes outside these count as changes of the image.
PRUNE = ["/tmp", "/proc", "/sys", "/dev", "/run"]


def _podman(*args, check=True):
    env = dict(os.environ, CONTAINERS_CONF=str(REPO / "tests" / "bench" / "containers.conf"))
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, env=env, timeout=300)


def _have_image():
    if shutil.which("podman") is None:
        return False
    return _podman("image", "exists", IMAGE, check=False).returncode == 0


pytestmark = [
    pytest.mark.skipif(not _have_image(), reason=f"podman or {IMAGE} missing"),
]


@pytest.fixture
def containers():
    """Start containers on demand (name -> extra podman run args); remove them all afterwards."""
    started = []

    def start(role, *extra):
        name = f"hpcllm-ospkgs-{role}-{uuid.uuid4().hex[:6]}"
        _podman("run", "-d", "--name", name, *extra, IMAGE, "sleep", "infinity")
        started.append(name)
        return name

    yield start
    for name in started:
        _podman("rm", "-f", "-t", "0", name, check=False)


def _changed_since_marker(name):
    prune = " -o ".join(f"-path {p}" for p in PRUNE)
    script = f"find / -xdev \\( {prune} \\) -prune -o -cnewer /tmp/marker -print"
    return _podman("exec", name, "sh", "-c", script).stdout.split()


def test_collect_then_install_offline(ansible_playbook, containers, tmp_path):
    env = {"CONTAINERS_CONF": str(REPO / "tests" / "bench" / "containers.conf")}
    online = containers("online")
    inventory = _inventory(tmp_path, online, chroot_prep_collect_dest=DEST)
    run = ansible_playbook(PLAYBOOKS / "install.yml", inventory=inventory, env=env)
    assert run.rc == 0, run.stdout + run.stderr
    version = _result(run, "Read hello's version")["stdout"]
    assert version

    _podman("exec", online, "sh", "-c", "sleep 1.1 && touch /tmp/marker && sleep 1.1")
    first = ansible_playbook(PLAYBOOKS / "collect.yml", inventory=inventory, env=env)
    assert first.rc == 0, first.stdout + first.stderr
    result = _result(first, "Collect and index the image's installed packages")
    assert result["changed"] is True and f"hello_{version}_amd64.deb" in result["downloaded"]
    # epoch packages of the base image (bsdutils 1:2.38...) are named as apt-get download names them
    assert any("%3a" in name for name in result["downloaded"])
    assert _changed_since_marker(online) == []

    second = ansible_playbook(PLAYBOOKS / "collect.yml", inventory=inventory, env=env)
    assert second.rc == 0 and second.changed("image") == 0, second.stdout
    assert _changed_since_marker(online) == []
    _podman("exec", online, "touch", "/var/cache/apt")  # the check sees a change when there is one
    assert _changed_since_marker(online) == ["/var/cache/apt"]

    bundle = tmp_path / "bundle"
    _podman("cp", f"{online}:{DEST}", str(bundle))
    names = sorted(p.name for p in bundle.iterdir())
    assert "Packages" in names and "Packages.gz" in names and f"hello_{version}_amd64.deb" in names
    installed = _podman("exec", online, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}\\n").stdout.split("\n")
    assert len([n for n in names if n.endswith(".deb")]) == len([s for s in installed if s.startswith("ii")])

    offline = containers("offline", "--network", "none")
    _podman("exec", offline, "mkdir", "-p", "/opt/bundle")
    inventory = _inventory(tmp_path, offline, chroot_prep_packages_repo=OFFLINE_REPO)
    apt_before = _apt_state(offline)

    # nothing there yet: clear failure naming the variable, nothing written
    missing = ansible_playbook(PLAYBOOKS / "source.yml", inventory=inventory, env=env)
    assert missing.rc != 0
    msg = _result(missing, "Fail before changing anything when the repository is missing")["msg"]
    assert msg.startswith(f"chroot_prep_packages_repo: {OFFLINE_REPO}/Packages does not exist")
    assert _apt_state(offline) == apt_before

    # the sources live in the scratch /tmp: without it bound, they would be the image's
    no_scratch = ansible_playbook(PLAYBOOKS / "source.yml", {"chroot_prep_bind_tmp": False}, inventory=inventory, env=env)
    assert no_scratch.rc != 0
    msg = _result(no_scratch, "Refuse to keep the sources in the image")["msg"]
    assert msg.startswith("chroot_prep_packages_repo needs chroot_prep_bind_tmp"), msg

    _podman("cp", str(bundle), f"{offline}:{OFFLINE_REPO}")
    # what version 0.4 left in an image: removed by the next run
    _podman("exec", offline, "sh", "-c", "mkdir /etc/apt/hpcllm-bundle.list.d && "
            f"echo 'deb [trusted=yes] file:{OFFLINE_REPO} ./' > /etc/apt/hpcllm-bundle.list && "
            "echo 'Dir::Etc::SourceList \"/etc/apt/hpcllm-bundle.list\";' > /etc/apt/apt.conf.d/00hpcllm-bundle")
    check = ansible_playbook(PLAYBOOKS / "source.yml", {"install_hello": False}, inventory=inventory, env=env,
                             check=True)
    assert check.rc == 0, check.stdout + check.stderr
    offline_run = ansible_playbook(PLAYBOOKS / "source.yml", inventory=inventory, env=env)
    assert offline_run.rc == 0, offline_run.stdout + offline_run.stderr
    # no network: hello can only have come from the bundle
    assert _result(offline_run, "Install hello offline")["changed"] is True
    got = _podman("exec", offline, "dpkg-query", "-W", "-f", "${Version}", "hello").stdout
    assert got == version
    # what apt read during the run: the bundle's source and nothing else
    policy = _result(offline_run, "Check that apt lists the repository's packages and no other source")["stdout"]
    assert f"file:{OFFLINE_REPO} ./ Packages" in policy and "deb.debian.org" not in policy
    # after it: the image's apt is as it was (its own sources, no trusted bundle source anywhere in /etc/apt)
    apt_after = _apt_state(offline)
    assert apt_after == apt_before, (sorted(set(apt_before) - set(apt_after)), sorted(set(apt_after) - set(apt_before)))
    dump = _podman("exec", offline, "apt-config", "dump").stdout.splitlines()
    assert {'Dir::Etc::sourcelist "sources.list";', 'Dir::Etc::sourceparts "sources.list.d";',
            'Dir::State::lists "lists/";'} <= set(dump), dump
    assert not [line for line in dump if "hpcllm" in line], dump
    grep = _podman("exec", offline, "grep", "-rl", "-e", "trusted=yes", "-e", OFFLINE_REPO, "/etc/apt", check=False)
    assert grep.returncode == 1 and grep.stdout == "", grep.stdout
    again = ansible_playbook(PLAYBOOKS / "source.yml", inventory=inventory, env=env)
    assert again.rc == 0 and again.changed("image") == 0, again.stdout


def _apt_state(name):
    """apt's configuration as the image has it: every entry below /etc/apt and the lists folder (type, mode) and each
    file's checksum."""
    script = ("find /etc/apt /var/lib/apt/lists -printf '%p %y %m\\n'; "
              "find /etc/apt /var/lib/apt/lists -type f -exec md5sum {} +")
    return sorted(_podman("exec", name, "sh", "-c", script).stdout.splitlines())
