"""The webui role's shipped lock (8466cf2, CPython 3.11, x86_64 Linux) and its wheel URLs.

The PyPI part is resolved against the real PyPI with pip's resolver for the target
platform (no GPU and no install needed): this test needs the network. pip runs with
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
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROLE = Path(__file__).resolve().parents[3] / "roles" / "webui"
LOCK = ROLE / "files" / "locks" / "8466cf2-py311-x86_64.txt"
PYTHON_VERSION = "3.11.4"  # python_build's default, what the venv is made with
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIP_INDEX = os.environ.get("HPCLLM_TEST_PYPI", "https://pypi.org/simple")
# Upstream publishes no sha256 for these GitHub release assets (2023 releases; no hash in
# upstream's requirements.txt or release notes): they are fetched unpinned by hash.
WHEELS_WITHOUT_SHA256 = {"auto-gptq", "exllama", "gptq-for-llama", "llama-cpp-python-cuda", "ctransformers"}


# what pip accepts for --platform manylinux2014_x86_64 --python-version 3.11 (PEP 599/600)
_PLATFORMS = ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"] + [
    f"manylinux_2_{minor}_x86_64" for minor in range(17, 4, -1)]
TARGET_TAGS = frozenset(cpython_tags((3, 11), platforms=_PLATFORMS)) | frozenset(
    compatible_tags((3, 11), "cp311", platforms=_PLATFORMS))


def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, raw in enumerate(LOCK.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!]*)", line)
        assert match, f"{LOCK.name}:{number}: not a 'name==version' pin: {raw!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{LOCK.name}:{number}: {name} pinned twice"
        pins[name] = match.group(2)
    return pins


def wheel_urls() -> list[dict]:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    return defaults["webui_wheel_urls"]


def url_wheels() -> dict[str, tuple[str, tuple, dict]]:
    out = {}
    for entry in wheel_urls():
        filename = unquote(urlsplit(entry["url"]).path.rsplit("/", 1)[-1])
        name, version, _build, tags = parse_wheel_filename(filename)
        out[str(name)] = (str(version), tags, entry)
    return out


def test_lock_pins_every_line():
    pins = lock_pins()
    assert len(pins) > 150
    assert pins["torch"] == "2.0.1"
    assert Version(pins["transformers"]).release[:2] == (4, 33)
    assert pins["gradio"] == "3.33.1"
    # start-up pins on 3.11 today (FACTS.md)
    assert Version(pins["setuptools"]) < Version("82"), "setuptools 82 removed pkg_resources (gradio 3.33.1 imports it)"
    for name, version in {"datasets": "2.14.5", "pyarrow": "13.0.0", "jinja2": "3.1.2",
                          "sentence-transformers": "2.3.1", "speechrecognition": "3.10.0",
                          "tiktoken": "0.5.1"}.items():
        assert pins[name] == version, name


def test_wheel_urls_are_well_formed_and_pinned_by_the_lock():
    pins = lock_pins()
    wheels = url_wheels()
    assert len(wheels) == len(wheel_urls()), "two URLs name the same project"
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
        assert "+cu117" in version, f"{name}: a CUDA 11.7 build like torch 2.0.1's wheels"
        if "sha256" in entry:
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry
        else:
            assert name in WHEELS_WITHOUT_SHA256, f"{name}: give its sha256"
    # every pin with a local version label comes from a URL (PyPI has no such versions)
    assert {n for n, v in pins.items() if "+" in v} == set(wheels)


@pytest.fixture(scope="module")
def pypi_report(tmp_path_factory):
    """pip's install report for the PyPI part of the lock, resolved for the target platform."""
    tmp = tmp_path_factory.mktemp("lock")
    wheels = url_wheels()
    part = tmp / "pypi-part.txt"
    part.write_text("".join(f"{n}=={v}\n" for n, v in lock_pins().items() if n not in wheels), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--quiet",
           "--ignore-installed", "--report", str(tmp / "report.json"), "--target", str(tmp / "t"),
           "--index-url", PIP_INDEX,
           "--platform", "manylinux2014_x86_64", "--python-version", PYTHON_VERSION,
           "--implementation", "cp", "--only-binary=:all:", "--requirement", str(part)]
    if Path(HOST_CA_BUNDLE).is_file():  # the host's CA bundle (HTTPS here may need it)
        cmd[5:5] = ["--cert", HOST_CA_BUNDLE]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"pip could not resolve the lock against {PIP_INDEX}:\n{proc.stderr[-3000:]}"
    return json.loads((tmp / "report.json").read_text(encoding="utf-8"))


def test_pypi_part_resolves_to_exactly_the_lock(pypi_report):
    wheels = url_wheels()
    wanted = {n: v for n, v in lock_pins().items() if n not in wheels}
    got = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in pypi_report["install"]}
    extra = {n: v for n, v in got.items() if n not in wanted}
    assert not extra, f"pip pulls packages the lock does not pin: {extra}"
    differ = {n: (v, wanted[n]) for n, v in got.items() if wanted[n] != v}
    assert not differ, differ
    assert set(got) == set(wanted)


def test_pypi_part_is_wheels_for_the_target(pypi_report):
    for item in pypi_report["install"]:
        filename = unquote(urlsplit(item["download_info"]["url"]).path.rsplit("/", 1)[-1])
        assert filename.endswith(".whl"), filename
        _n, _v, _b, tags = parse_wheel_filename(filename)
        assert tags & TARGET_TAGS, f"{filename} does not install on CPython 3.11 manylinux2014 x86_64"
        assert "sha256" in item["download_info"]["archive_info"].get("hashes", {}), filename


def test_torch_is_the_cuda_11_7_build(pypi_report):
    torch = next(i for i in pypi_report["install"] if i["metadata"]["name"] == "torch")
    requires = [Requirement(r) for r in torch["metadata"]["requires_dist"]]
    cuda = {str(r.name): str(r.specifier) for r in requires if r.name.startswith("nvidia-")}
    assert cuda["nvidia-cuda-runtime-cu11"] == "==11.7.99"
    assert cuda["nvidia-cudnn-cu11"] == "==8.5.0.96"
    installed = {i["metadata"]["name"].lower() for i in pypi_report["install"]}
    assert {n.lower() for n in cuda} <= installed
