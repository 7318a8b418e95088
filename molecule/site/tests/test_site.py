"""Testinfra checks of the full-stack bench after site.yml ran twice inside the master."""

import json
import re
import time
from shlex import quote

import pytest

CHROOTS = "/var/lib/warewulf/chroots"
ROOTFS = f"{CHROOTS}/compute/rootfs"
LITE = f"{CHROOTS}/compute-lite/rootfs"
ROOT = "/opt/ai_apps/webui_llama2"
WEBUI = f"{ROOT}/text-generation-webui"
CHECKOUT = "/root/hpcllm-webui"
SECRETS = ("hf_benchtoken_9c1d",)
USER_DIR = "/home/test/.local/share/hpcllm-webui/opt_ai_apps_webui_llama2"
KEYS = f"{USER_DIR}/.hpcllm-webui-keys.conf"


def image_kernels(host, rootfs):
    return sorted(host.check_output(f"ls {rootfs}/lib/modules").split())


def test_nvidia_module_built_for_the_image_kernel_not_the_masters(host):
    kernels = image_kernels(host, ROOTFS)
    assert kernels, "no kernel in the image"
    running = host.check_output("uname -r")
    assert running not in kernels
    for kver in kernels:
        ko = f"{ROOTFS}/lib/modules/{kver}/updates/dkms/nvidia-current.ko"
        assert host.file(ko).exists, ko
        vermagic = host.check_output(f"modinfo -F vermagic {ko}")
        assert vermagic.split()[0] == kver


def in_image(host, cmd, rootfs=ROOTFS):
    return host.run(f"chroot {rootfs} sh -c {quote(cmd)}")


def test_depmod_and_modprobe_resolve_the_module_in_the_image(host):
    for kver in image_kernels(host, ROOTFS):
        dep = host.file(f"{ROOTFS}/lib/modules/{kver}/modules.dep").content_string
        assert "updates/dkms/nvidia-current.ko:" in dep
        out = in_image(host, f"/sbin/modprobe -S {kver} --show-depends nvidia")
        assert out.rc == 0 and "nvidia-current" in out.stdout, out.stdout + out.stderr
        # the build link is absolute inside the image: resolve it there
        assert in_image(host, f"test -e /lib/modules/{kver}/build/Makefile").rc == 0, "headers missing"


def test_nouveau_blacklisted_persistenced_enabled_multi_user(host):
    conf = in_image(host, "cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf 2>/dev/null").stdout
    assert "blacklist nouveau" in conf
    out = in_image(host, "SYSTEMD_OFFLINE=1 systemctl is-enabled nvidia-persistenced.service")
    assert out.stdout.strip() == "enabled", out.stdout + out.stderr
    assert host.check_output(f"readlink {ROOTFS}/etc/systemd/system/default.target") == "/lib/systemd/system/multi-user.target"


@pytest.mark.parametrize("pkg", ["g++", "wget", "curl", "libpciaccess0", "nvme-cli", "numad", "numatop",
                                 "linux-headers-amd64", "nvidia-smi", "libcuda1", "firmware-misc-nonfree", "systemd",
                                 "nginx", "openssl"])
def test_image_packages(host, pkg):
    out = in_image(host, f"dpkg-query -W -f='${{Status}}' {pkg}")
    assert out.stdout == "install ok installed", pkg


@pytest.mark.parametrize("rootfs", [ROOTFS, LITE])
def test_images_have_the_proxy_and_no_nginx_service(host, rootfs):
    """webui_access proxy: every image with the web UI has nginx and openssl for the launchers' own
    proxies; Debian's nginx.service (a default site on port 80 of every node) is not enabled."""
    for pkg in ("nginx", "openssl"):
        assert in_image(host, f"dpkg-query -W -f='${{Status}}' {pkg}", rootfs).stdout == "install ok installed", pkg
    # the unit is there, its [Install] link is not (compute-lite has no systemd to ask: no system step)
    assert host.file(f"{rootfs}/lib/systemd/system/nginx.service").exists
    assert not host.file(f"{rootfs}/etc/systemd/system/multi-user.target.wants/nginx.service").exists
    if rootfs == ROOTFS:
        assert in_image(host, "SYSTEMD_OFFLINE=1 systemctl is-enabled nginx.service").stdout.strip() == "disabled"


def test_image_has_no_x_and_no_package_caches(host):
    assert in_image(host, "dpkg-query -W -f='${Status}' xserver-xorg-video-nvidia").stdout != "install ok installed"
    assert host.check_output(f"find {ROOTFS}/var/cache/apt -type f \\( -name '*.deb' -o -name '*.bin' \\)") == ""


def test_second_image_has_no_driver_and_no_cuda(host):
    assert not host.file(f"{LITE}/usr/local/cuda-12.3").exists
    assert host.run(f"ls {LITE}/lib/modules/*/updates/dkms/nvidia-current.ko").rc != 0


def test_cuda_moved_to_opt_and_linked_back_intact(host):
    link = host.file(f"{ROOTFS}/usr/local/cuda-12.3")
    assert link.is_symlink
    assert link.linked_to == "/opt/cuda/cuda-12.3"
    moved = host.check_output("python3 /srv/bench/make_tree.py --manifest-of /opt/cuda/cuda-12.3")
    assert moved == host.file("/srv/bench/cuda-12.3.manifest").content_string.strip()


def test_cuda_toolkit_came_from_the_pinned_nvidia_repository(host):
    # installed by nvidia_driver from the mirror's stand-in of NVIDIA's debian12 repository (nothing planted)
    for pkg, version in (("cuda-toolkit-12-3", "12.3.2-1"), ("nsight-systems-2023.3.3", "2023.3.3.42-1")):
        out = in_image(host, f"dpkg-query -W -f='${{Status}} ${{Version}}' {pkg}").stdout
        assert out == f"install ok installed {version}", pkg
    assert "Pin: release o=NVIDIA,l=NVIDIA CUDA\nPin-Priority: 100" in \
        host.file(f"{ROOTFS}/etc/apt/preferences.d/hpcllm-nvidia-cuda").content_string
    assert "URIs: http://127.0.0.1:8080/cuda/debian12/x86_64/" in \
        host.file(f"{ROOTFS}/etc/apt/sources.list.d/hpcllm-nvidia-cuda.sources").content_string
    # Debian's driver, not the repository's 545 decoys of the same names
    for pkg in ("nvidia-smi", "libcuda1", "nvidia-kernel-dkms"):
        version = in_image(host, f"dpkg-query -W -f='${{Version}}' {pkg}").stdout
        assert version.startswith("535."), (pkg, version)
    assert host.run(f"ls -d {ROOTFS}/usr/share/doc/*-standin").rc != 0


def test_nsight_on_the_masters_opt_not_in_the_image(host):
    moved = host.check_output("python3 /srv/bench/make_tree.py --manifest-of /opt/nvidia/nsight-systems/2023.3.3")
    assert moved == host.file("/srv/bench/nsight-systems.manifest").content_string.strip()
    assert not host.file(f"{ROOTFS}/opt/nvidia/nsight-systems/2023.3.3").exists


def test_python_built_from_the_mirror_and_working(host):
    py = f"{ROOT}/python_3.11.2/bin/python3.11"
    out = host.check_output(f"{py} -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, uuid, sys; print(sys.version.split()[0])'")
    assert out == "3.11.2"
    record = json.loads(host.file(f"{ROOT}/python_3.11.2/.hpcllm-build.json").content_string)
    assert record["sha256"] == "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"


def test_webui_at_the_pinned_commit(host):
    pinned = host.file(f"{CHECKOUT}/inventories/bench/group_vars/all/zz-bench-webui.yml").content_string
    commit = re.search(r"webui_version: ([0-9a-f]{40})", pinned).group(1)
    head = host.check_output(f"GIT_OPTIONAL_LOCKS=0 git -c safe.directory='*' -C {WEBUI} rev-parse HEAD")
    assert head == commit
    dirty = host.check_output(f"GIT_OPTIONAL_LOCKS=0 git -c safe.directory='*' -C {WEBUI} status --porcelain --untracked-files=no")
    assert dirty == ""


def test_webui_venv_installed_from_the_lock(host):
    out = host.check_output(f"{ROOT}/venv/bin/python -c 'import yaml, markdown, websockets, six; print(yaml.__version__)'")
    assert out == "6.0.1"


# The seed's launchers (DESIGN.md), written out here independently of the role's catalog:
# launcher -> (repo, revision, load flags). The folder is owner_name[_revision].
LAUNCHERS = {
    "run_wizard_13b_8bit_code.sh": ("WizardLM/WizardCoder-Python-13B-V1.0", "main", ["--load-in-8bit"]),
    "run_wizard_7b_16bit_code.sh": ("WizardLM/WizardCoder-Python-7B-V1.0", "main", []),
    "run_wizard_13b_4bit_code.sh": ("TheBloke/WizardCoder-Python-13B-V1.0-GPTQ", "gptq-4bit-32g-actorder_True", []),
    "run_wizard_7b_4bit_code.sh": ("TheBloke/WizardCoder-Python-7B-V1.0-GPTQ", "main", ["--no_inject_fused_attention"]),
    "run_wizard_1b_32bit_code.sh": ("WizardLM/WizardCoder-1B-V1.0", "main", []),
}


def folder_of(repo, revision):
    return repo.replace("/", "_") + ("" if revision == "main" else f"_{revision}")


def hub_expected(host):
    return json.loads(host.file("/srv/bench/hub-expected.json").content_string)


def test_every_model_at_the_expected_commit_with_correct_files_and_link(host):
    expected = hub_expected(host)
    for repo, revision, _flags in LAUNCHERS.values():
        name = folder_of(repo, revision)
        want = expected[repo][revision]
        folder = f"{ROOT}/models/{name}"
        manifest = json.loads(host.file(f"{folder}/.hf_model.json").content_string)
        assert manifest["commit"] == want["commit"], name
        for path, sha in want["files"].items():
            got = host.check_output(f"sha256sum {folder}/{path}").split()[0]
            assert got == sha, f"{name}/{path}"
        link = host.file(f"{WEBUI}/models/{name}")
        assert link.is_symlink
        assert link.linked_to == folder


def test_the_install_root_is_roots_writable_by_nobody_else_and_readable(host):
    """After the side effects (the seed's handover to test, a planted file refused, the tree given
    back to root and run again): root's, no group or world write, everything readable."""
    assert host.check_output(f"find {ROOT} ! -user root -print") == ""
    assert host.check_output(f"find {ROOT} ! -type l -perm /022 -print") == ""
    assert host.check_output(f"find {ROOT} -path {ROOT}/.hpcllm -prune -o ! -type l ! -perm -0444 -print") == ""
    assert not host.file(f"{ROOT}/webui/gradio-auth.txt").exists
    assert not host.file("/var/tmp/hpcllm-planted-ran-as-root").exists


def test_secrets_never_in_the_runs_output(host):
    log = host.file("/root/site-runs.log").content_string
    assert "PLAY RECAP" in log
    for secret in SECRETS:
        assert secret not in log


def test_images_built_with_nothing_mounted(host):
    mounts = host.check_output("findmnt --raw --noheadings --output TARGET").splitlines()
    assert [m for m in mounts if m.startswith(CHROOTS)] == []
    for image in ("compute", "compute-lite"):
        assert host.file(f"/var/lib/warewulf/provision/container/{image}.img").exists
        listing = host.file(f"/var/lib/warewulf/provision/container/{image}.img").content_string
        # the built image holds the image's /opt mount point, never the master's /opt contents
        assert "opt/ai_apps" not in listing
    calls = host.file("/var/lib/warewulf/calls.log").content_string.splitlines()
    assert any('"build"' in c for c in calls)


def test_nodes_mount_opt_from_the_master(host):
    conf = host.file("/etc/warewulf/warewulf.conf").content_string
    assert re.search(r"path: /opt\s+export options: [^\n]+\s+mount options: [^\n]+\s+mount: true", conf), conf


def launchers(host):
    names = host.check_output(f"ls {ROOT}").split()
    return sorted(n for n in names if n.startswith("run_wizard_") and n.endswith(".sh"))


def test_five_model_launchers(host):
    assert launchers(host) == sorted(LAUNCHERS)


# The launchers run where a site runs them: on a node, here the compute-lite image (no NVIDIA driver:
# the CPU path) with its own nginx, openssl and tools, through the bench's hpcllm-node-run
# (molecule/site/node-run.sh: a private mount namespace with what a booted node has; nothing of it
# lands in the image).
def node_start(host, launcher, log):
    return int(host.check_output(
        f"setsid hpcllm-node-run compute-lite test {ROOT}/{launcher} > {log} 2>&1 < /dev/null & echo $!"))


def node_stop(host, pid):
    """TERM to the launcher (it stops its proxy and server), KILL after 5 s."""
    host.run(f"kill {pid}; timeout 5 tail --pid={pid} -f /dev/null || kill -9 {pid}")


def reach(host, pid, log):
    """URL and certificate the launcher printed once its proxy listened."""
    out = ""
    for _attempt in range(150):
        out = host.run(f"cat {log}").stdout
        if "hpcllm-webui: health: " in out:
            break
        if host.run(f"kill -0 {pid}").rc != 0:
            break
        time.sleep(0.2)
    url = re.search(r"web UI on node \S+: (https://[^/]+)/ ", out)
    cert = re.search(r"hpcllm-webui: TLS certificate (\S+) ", out)
    assert url and cert, out
    return url.group(1), cert.group(1)


def ui_state(host, url, cert):
    """The stand-in's state through the proxy, logged in with test's own UI login (read from test's keys
    file by the client, never put on a command line)."""
    code = (
        "import base64, json, re, ssl, sys, urllib.request\n"
        "login = re.search(r'^# login: (\\S+) (\\S+)$', open(sys.argv[3]).read(), re.M).groups()\n"
        "req = urllib.request.Request(sys.argv[1] + '/standin/state')\n"
        "req.add_header('Authorization', 'Basic ' + base64.b64encode(':'.join(login).encode()).decode())\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
        "print(urllib.request.urlopen(req, timeout=5, context=ctx).read().decode())\n")
    out = host.run(f"python3 -c {quote(code)} {url} {cert} {KEYS}")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_launcher_starts_its_own_model_on_a_node_behind_its_proxy_and_answers_the_health_check(host, launcher):
    repo, revision, flags = LAUNCHERS[launcher]
    name = folder_of(repo, revision)
    log = f"/tmp/{launcher}.log"
    pid = node_start(host, launcher, log)
    try:
        url, cert = reach(host, pid, log)
        health = None
        for _attempt in range(80):
            health = host.run(f"runuser -u test -- {ROOT}/webui_health.sh --url {url} --cacert {cert}")
            if health.rc == 0:
                break
            time.sleep(0.5)
        assert health.rc == 0, health.stdout + health.stderr + host.run(f"cat {log}").stdout
        got = ui_state(host, url, cert)
        assert got["model"] == name
        assert got["model_path"] == f"{ROOT}/models/{name}"
        for flag in flags:
            assert flag in got["argv"], got["argv"]
        # behind the proxy: no --listen, ports on 127.0.0.1 picked at launch; no GPU on this node: --cpu
        assert "--listen" not in got["argv"] and "--api" in got["argv"] and "--cpu" in got["argv"]
        assert got["settings"]["max_new_tokens"] == 2048
        assert got["uid"] == int(host.check_output("id -u test"))
        # started from the user's own folder, which shows the web UI's server.py
        assert got["cwd"] == USER_DIR
        assert host.file(f"{got['cwd']}/server.py").exists
        assert got["authorization_seen"] == []
    finally:
        node_stop(host, pid)


def test_the_run_wrote_the_deployment_lock(host):
    """R/hpcllm-lock.json: what bundle_export carries and an air-gapped rebuild must reproduce."""
    lock_file = host.file(f"{ROOT}/hpcllm-lock.json")
    assert lock_file.user == "root" and lock_file.group == "root" and lock_file.mode == 0o644
    lock = json.loads(lock_file.content_string)
    pinned = host.file(f"{CHECKOUT}/inventories/bench/group_vars/all/zz-bench-webui.yml").content_string
    assert lock["webui"]["commit"] == re.search(r"webui_version: ([0-9a-f]{40})", pinned).group(1)
    assert lock["webui"]["repo"] == "http://127.0.0.1:8080/text-generation-webui.git"
    # the lock installed (the stand-in's, webui_lock_file), no extra index, a venv without torch
    assert lock["webui"]["lock"] == "lock.txt" and lock["webui"]["extra_index_url"] is None
    assert lock["webui"]["torch"] == {"version": None, "cuda": None, "archs": []}
    assert lock["python"]["version"] == "3.11.2"
    assert lock["python"]["sha256"] == "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
    # every package of the venv but pip (ensurepip) came from the wheelhouse, with the wheel's sha256
    wheels = {p["name"]: p for p in lock["packages"].values() if p["source"] == "wheelhouse"}
    assert wheels and all(len(sha) == 64 for p in wheels.values() for sha in p["files"].values())
    assert {p["source"] for p in lock["packages"].values()} <= {"wheelhouse", "ensurepip"}
    assert len([k for k in lock["models"] if k.startswith("models/")]) == 5
    assert all(len(m["commit"]) == 40 and m["files"] for m in lock["models"].values())
    dkms = host.check_output(f"chroot {ROOTFS} dpkg-query -W -f '${{Version}}' nvidia-kernel-dkms")
    assert lock["images"]["compute"]["packages"]["nvidia-kernel-dkms"] == dkms
    assert lock["images"]["compute"]["kernels"] and "nvidia-kernel-dkms" not in lock["images"]["compute-lite"]["packages"]
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", json.dumps(lock))  # no time stamps: equal deployments, equal bytes


def test_the_ui_login_and_keys_are_the_run_users_own(host):
    """Made by test's first launch (the launcher tests above) in test's own folder: 0600, test's; no other user can read it."""
    keys = host.file(KEYS)
    assert keys.mode == 0o600
    assert keys.user == "test"
    assert host.file(USER_DIR).mode == 0o700
    assert re.search(r"^# key: hpk-[A-Za-z0-9]{40}$", keys.content_string, re.M)
