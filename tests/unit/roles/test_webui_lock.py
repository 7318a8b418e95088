"""The webui role's shipped locks (8466cf2, CPython 3.11, x86_64 Linux: cu117 and cu118) and
their wheel URLs.

The PyPI part is resolved against the real PyPI with pip's resolver for the target
platform (no GPU and no install needed): this test needs the network. The cu118 lock's
torch, torchvision and torchaudio come from PyTorch's index, which is not reachable here:
a local stand-in index serves wheels named, tagged and with the requirements of PyTorch's
2.0.1+cu118 builds (empty otherwise), given to pip as the extra index the role gives it. pip runs with
--isolated and PIP_CONFIG_FILE=/dev/null and without PIP_* variables, so a host's own
pip configuration (local find-links, extra indexes, constraints) cannot stand in for
PyPI. The GitHub-release wheels cannot be downloaded here (GitHub is not reachable):
their URLs are checked for form, tags and agreement with the lock's pins only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lock_hashes as lock_hashes_tool  # noqa: E402 (beside this file)

ROLE = Path(__file__).resolve().parents[3] / "roles" / "webui"
SHIPPED = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))["_webui_shipped_locks"]
LOCKS = sorted(SHIPPED)
PYTHON_VERSION = "3.11.4"  # python_build's default, what the venv is made with
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIP_INDEX = os.environ.get("HPCLLM_TEST_PYPI", "https://pypi.org/simple")
# Upstream publishes no sha256 for these GitHub release assets (2023 releases; no hash in
# upstream's requirements.txt or release notes): they are fetched unpinned by hash.
WHEELS_WITHOUT_SHA256 = {"auto-gptq", "exllama", "gptq-for-llama", "llama-cpp-python-cuda", "ctransformers"}


# Requires-Dist of PyTorch's 2.0.1+cu118 wheels (cp311, linux_x86_64) as published in their
# METADATA: the CUDA libraries are inside torch, so no nvidia-* requirement
PYTORCH_INDEX_WHEELS = {
    ("torch", "2.0.1+cu118"): ["filelock", "typing-extensions", "sympy", "networkx", "jinja2",
                               'triton (==2.0.0) ; platform_system == "Linux" and platform_machine == "x86_64"'],
    ("torchvision", "0.15.2+cu118"): ["numpy", "requests", "torch (==2.0.1)", "pillow (!=8.3.*,>=5.3.0)"],
    ("torchaudio", "2.0.2+cu118"): ["torch (==2.0.1)"],
}

# what pip accepts for --platform manylinux2014_x86_64 --python-version 3.11 (PEP 599/600)
_PLATFORMS = ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"] + [
    f"manylinux_2_{minor}_x86_64" for minor in range(17, 4, -1)]
TARGET_TAGS = frozenset(cpython_tags((3, 11), platforms=_PLATFORMS)) | frozenset(
    compatible_tags((3, 11), "cp311", platforms=_PLATFORMS))


def lock_path(lock: str) -> Path:
    return ROLE / "files" / "locks" / SHIPPED[lock]["file"]


def lock_pins(lock: str) -> dict[str, str]:
    path = lock_path(lock)
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!]*)( --hash=sha256:[0-9a-f]{64})*", line)
        assert match, f"{path.name}:{number}: not a 'name==version' pin: {raw!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{path.name}:{number}: {name} pinned twice"
        pins[name] = match.group(2)
    return pins


def lock_hashes(lock: str) -> dict[str, list[str]]:
    """{canonical name: [sha256 of its --hash options]} of every pin of the lock."""
    out = {}
    for raw in lock_path(lock).read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out[canonicalize_name(line.split("==", 1)[0])] = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
    return out


def wheel_urls(lock: str) -> list[dict]:
    return SHIPPED[lock]["wheel_urls"]


def url_wheels(lock: str) -> dict[str, tuple[str, tuple, dict]]:
    out = {}
    for entry in wheel_urls(lock):
        filename = unquote(urlsplit(entry["url"]).path.rsplit("/", 1)[-1])
        name, version, _build, tags = parse_wheel_filename(filename)
        out[str(name)] = (str(version), tags, entry)
    return out


def test_defaults_follow_webui_lock():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert defaults["webui_lock"] == "cu117", "the seed's lock stays the default"
    assert "_webui_shipped_locks.get(webui_lock, {})" in defaults["webui_lock_file"]
    assert "_webui_shipped_locks.get(webui_lock, {})" in defaults["webui_wheel_urls"]
    assert "_webui_shipped_locks.get(webui_lock, {})" in defaults["webui_pip_extra_index_url"]
    assert SHIPPED["cu117"]["extra_index_url"] == ""
    assert SHIPPED["cu118"]["extra_index_url"] == "https://download.pytorch.org/whl/cu118"


def test_the_two_locks_differ_only_in_the_cuda_build():
    """Same web UI, same Python packages: only the torch family, the CUDA runtime wheels and the
    GitHub-release wheels' CUDA build differ."""
    cu117, cu118 = lock_pins("cu117"), lock_pins("cu118")
    cuda_family = {"torch", "torchvision", "torchaudio"}
    same = {n for n in cu117 if not n.startswith("nvidia-") and n not in cuda_family and n not in url_wheels("cu117")}
    assert {n: cu117[n] for n in same} == {n: cu118[n] for n in same}
    assert {n: cu118[n] for n in cuda_family} == {"torch": "2.0.1+cu118", "torchvision": "0.15.2+cu118", "torchaudio": "2.0.2+cu118"}
    assert {n for n in cu118 if n.startswith("nvidia-")} == {"nvidia-cuda-runtime-cu11", "nvidia-cublas-cu11"}
    assert cu118["nvidia-cuda-runtime-cu11"].startswith("11.8.")
    for name, version in cu117.items():
        if "+cu117" in version:
            assert cu118[name] == version.replace("+cu117", "+cu118")
    assert set(cu118) - set(cu117) == set()


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_pins_every_line(lock):
    pins = lock_pins(lock)
    assert len(pins) > 150
    assert Version(pins["torch"]).public == "2.0.1"
    assert Version(pins["transformers"]).release[:2] == (4, 33)
    assert pins["gradio"] == "3.33.1"
    # start-up pins on 3.11 today (FACTS.md)
    assert Version(pins["setuptools"]) < Version("82"), "setuptools 82 removed pkg_resources (gradio 3.33.1 imports it)"
    for name, version in {"datasets": "2.14.5", "pyarrow": "13.0.0", "jinja2": "3.1.2",
                          "sentence-transformers": "2.3.1", "speechrecognition": "3.10.0",
                          "tiktoken": "0.5.1"}.items():
        assert pins[name] == version, name


@pytest.mark.parametrize("lock", LOCKS)
def test_wheel_urls_are_well_formed_and_pinned_by_the_lock(lock):
    pins = lock_pins(lock)
    wheels = url_wheels(lock)
    assert len(wheels) == len(wheel_urls(lock)) == 5, "two URLs name the same project"
    for name, (version, tags, entry) in wheels.items():
        url = urlsplit(entry["url"])
        assert url.scheme == "https" and url.netloc == "github.com", entry["url"]
        assert url.path.endswith(".whl") and not url.query, entry["url"]
        assert "/releases/download/" in url.path, entry["url"]
        for tag in tags:
            assert tag.interpreter in {"cp311", "py3"}, f"{entry['url']}: {tag}"
            assert tag.abi in {"cp311", "none"}, f"{entry['url']}: {tag}"
            assert tag.platform in {"linux_x86_64", "any"}, f"{entry['url']}: {tag}"
        assert pins.get(name) == version, f"the lock must pin {name}=={version} (from {entry['url']})"
        assert f"+{lock}" in version, f"{name}: the lock's CUDA build ({lock}), like its torch"
        if "sha256" in entry:
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry
        else:
            assert name in WHEELS_WITHOUT_SHA256, f"{name}: give its sha256"
    # every pin with a local version label comes from a URL or PyTorch's index (PyPI has none)
    from_pytorch = {name for name, _version in PYTORCH_INDEX_WHEELS} if SHIPPED[lock]["extra_index_url"] else set()
    assert {n for n, v in pins.items() if "+" in v} == set(wheels) | from_pytorch


def pytorch_index_standin(root: Path) -> Path:
    """A PEP 503 index (file://) serving wheels named and tagged like PyTorch's cu118 builds, with
    their requirements in METADATA and nothing else inside."""
    simple = root / "simple"
    for (name, version), requires in PYTORCH_INDEX_WHEELS.items():
        filename = f"{name}-{version}-cp311-cp311-linux_x86_64.whl"
        folder = simple / name
        folder.mkdir(parents=True)
        dist_info = f"{name}-{version}.dist-info"
        metadata = "Metadata-Version: 2.1\nName: %s\nVersion: %s\nRequires-Python: >=3.8.0\n%s" % (
            name, version, "".join(f"Requires-Dist: {r}\n" for r in requires))
        wheel = "Wheel-Version: 1.0\nGenerator: hpcllm-test\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n"
        with zipfile.ZipFile(folder / filename, "w") as whl:
            whl.writestr(f"{dist_info}/METADATA", metadata)
            whl.writestr(f"{dist_info}/WHEEL", wheel)
            whl.writestr(f"{dist_info}/RECORD", "")
        (folder / "index.html").write_text(f'<html><body><a href="{filename}">{filename}</a></body></html>\n')
    (simple / "index.html").write_text("<html><body>%s</body></html>\n" % "".join(
        f'<a href="{name}/">{name}</a>' for name, _version in PYTORCH_INDEX_WHEELS))
    return simple


def _pip_resolve_cmd(lock, tmp):
    """pip's dry-run install of the lock's index part for the target platform (report in tmp)."""
    wheels = url_wheels(lock)
    part = tmp / "pypi-part.txt"
    part.write_text("".join(f"{n}=={v}\n" for n, v in lock_pins(lock).items() if n not in wheels), encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--quiet",
           "--ignore-installed", "--report", str(tmp / "report.json"), "--target", str(tmp / "t"),
           "--index-url", PIP_INDEX,
           "--platform", "manylinux2014_x86_64", "--python-version", PYTHON_VERSION,
           "--implementation", "cp", "--only-binary=:all:", "--requirement", str(part)]
    if SHIPPED[lock]["extra_index_url"]:
        # the role's --extra-index-url, here the stand-in; PyTorch tags its wheels linux_x86_64
        cmd += ["--extra-index-url", pytorch_index_standin(tmp / "pytorch").as_uri(), "--platform", "linux_x86_64"]
    if Path(HOST_CA_BUNDLE).is_file():  # the host's CA bundle (HTTPS here may need it)
        cmd[5:5] = ["--cert", HOST_CA_BUNDLE]
    return cmd


@pytest.fixture(scope="module")
def pypi_reports(tmp_path_factory):
    """{lock: (pip's exit code, its stderr, its install report)}: every lock resolved at once
    (pip mostly waits for the index: side by side the resolutions take the time of the longest)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    running = {}
    for lock in LOCKS:
        tmp = tmp_path_factory.mktemp(f"lock-{lock}")
        errors = (tmp / "stderr.txt").open("w+", encoding="utf-8")
        running[lock] = (tmp, errors, subprocess.Popen(_pip_resolve_cmd(lock, tmp), env=env, text=True,
                                                       stdout=subprocess.DEVNULL, stderr=errors))
    reports = {}
    for lock, (tmp, errors, proc) in running.items():
        try:
            code = proc.wait(timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        errors.seek(0)
        report = tmp / "report.json"
        reports[lock] = (code, errors.read(), json.loads(report.read_text(encoding="utf-8")) if code == 0 else None)
        errors.close()
    return reports


@pytest.fixture(params=LOCKS)
def pypi_report(request, pypi_reports):
    """(lock, pip's install report for the lock's index part, resolved for the target platform)."""
    lock = request.param
    code, stderr, report = pypi_reports[lock]
    assert code == 0, f"pip could not resolve the {lock} lock against {PIP_INDEX}:\n{stderr[-3000:]}"
    return lock, report


def test_pypi_part_resolves_to_exactly_the_lock(pypi_report):
    lock, report = pypi_report
    wheels = url_wheels(lock)
    wanted = {n: v for n, v in lock_pins(lock).items() if n not in wheels}
    got = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}
    extra = {n: v for n, v in got.items() if n not in wanted}
    assert not extra, f"pip pulls packages the lock does not pin: {extra}"
    differ = {n: (v, wanted[n]) for n, v in got.items() if wanted[n] != v}
    assert not differ, differ
    assert set(got) == set(wanted)


def test_pypi_part_is_wheels_for_the_target(pypi_report):
    lock, report = pypi_report
    standin = {name for name, _version in PYTORCH_INDEX_WHEELS} if SHIPPED[lock]["extra_index_url"] else set()
    for item in report["install"]:
        url = item["download_info"]["url"]
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        assert filename.endswith(".whl"), filename
        name, _v, _b, tags = parse_wheel_filename(filename)
        if name in standin:
            assert url.startswith("file:") and tags == frozenset(cpython_tags((3, 11), platforms=["linux_x86_64"])) & tags
            continue
        assert url.startswith(PIP_INDEX.rsplit("/simple", 1)[0]) or "pythonhosted.org" in url, url
        assert tags & TARGET_TAGS, f"{filename} does not install on CPython 3.11 manylinux2014 x86_64"
        digest = item["download_info"]["archive_info"].get("hashes", {}).get("sha256")
        assert digest in lock_hashes(lock)[canonicalize_name(name)], f"{filename}: sha256 {digest} not in the lock"


@pytest.mark.parametrize("lock", LOCKS)
def test_pypi_pins_carry_the_index_hashes(lock):
    """--require-hashes: every pin the index serves carries the sha256 of each of its wheels that install on the
    nodes (as the index's JSON simple page lists them); only the pins from elsewhere (GitHub release wheels,
    PyTorch's index) have none, and those the role hashes on first fetch."""
    hashes = lock_hashes(lock)
    elsewhere = set(url_wheels(lock)) | {n for n, v in lock_pins(lock).items() if "+" in v}
    assert {n for n, h in hashes.items() if not h} == elsewhere
    pins = {n: v for n, v in lock_pins(lock).items() if n not in elsewhere}
    from_index = lock_hashes_tool.all_hashes(pins)
    differ = {n: (hashes[n], h) for n, h in from_index.items() if sorted(hashes[n]) != h}
    assert not differ, f"lock != index (write them with tests/unit/roles/lock_hashes.py --write): {differ}"


def test_torch_is_the_locks_cuda_build(pypi_report):
    lock, report = pypi_report
    torch = next(i for i in report["install"] if i["metadata"]["name"] == "torch")
    requires = [Requirement(r) for r in torch["metadata"].get("requires_dist", [])]
    cuda = {str(r.name): str(r.specifier) for r in requires if r.name.startswith("nvidia-")}
    installed = {i["metadata"]["name"].lower() for i in report["install"]}
    if lock == "cu117":  # PyPI's build: the CUDA 11.7 libraries come as nvidia-*-cu11 wheels
        assert torch["metadata"]["version"] == "2.0.1"
        assert cuda["nvidia-cuda-runtime-cu11"] == "==11.7.99"
        assert cuda["nvidia-cudnn-cu11"] == "==8.5.0.96"
        assert {n.lower() for n in cuda} <= installed
    else:  # PyTorch's build carries them; the runtime and cuBLAS wheels are the lock's own, CUDA 11.8
        assert torch["metadata"]["version"] == "2.0.1+cu118" and cuda == {}
        runtime = next(i for i in report["install"] if i["metadata"]["name"] == "nvidia-cuda-runtime-cu11")
        assert runtime["metadata"]["version"].startswith("11.8.")
