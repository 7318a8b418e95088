"""Table-driven tests of module_utils._deploy_lock on install roots laid out in tmp folders."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._deploy_lock import (
    DeployLock,
    DeployLockError,
    build_lock,
    image_entries,
    normalize_name,
    parse_dist_filename,
    render,
)
from lock_tree import CONFIG_BYTES, LFS_BYTES, PY_VERSION, make_root, sha256


@pytest.mark.parametrize(
    "filename, expected",
    [
        ("PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.whl", ("pyyaml", "6.0.1")),
        ("auto_gptq-0.4.2+cu117-cp311-cp311-linux_x86_64.whl", ("auto-gptq", "0.4.2+cu117")),
        ("torch-2.0.1-1-cp311-cp311-linux_x86_64.whl", ("torch", "2.0.1")),  # build tag
        ("flash-attn-2.3.0.tar.gz", ("flash-attn", "2.3.0")),
        ("Zope.Interface-6.0.zip", ("zope-interface", "6.0")),
        ("broken.whl", None),
        ("README", None),
        ("noversion.tar.gz", None),
    ],
)
def test_parse_dist_filename(filename, expected):
    assert parse_dist_filename(filename) == expected


@pytest.mark.parametrize("name, norm", [("PyYAML", "pyyaml"), ("auto_gptq", "auto-gptq"), ("Zope.Interface", "zope-interface"),
                                        ("a__b--c", "a-b-c")])
def test_normalize_name(name, norm):
    assert normalize_name(name) == norm


def test_lock_records_everything(tmp_path):
    tree = make_root(tmp_path)
    images = {"compute": {"packages": {"nvidia-kernel-dkms": "535.261.03-1"}, "kernels": ["6.1.0-56-amd64", "6.1.0-56-amd64"]}}
    lock, unhashed = build_lock(str(tree.root), images=images)
    assert unhashed == []
    assert lock["webui"] == {"repo": "http://mirror.invalid/git/text-generation-webui.git", "version": "v0.0-standin",
                             "commit": tree.commit, "lock_sha256": sha256(b"PyYAML==6.0.1\n"),
                             "lock": "8466cf2-py311-x86_64-cu118.txt", "extra_index_url": "https://download.pytorch.org/whl/cu118",
                             "torch": {"version": "2.0.1+cu118", "cuda": "11.8",
                                       "archs": ["sm_37", "sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]}}
    assert lock["python"]["version"] == PY_VERSION and lock["python"]["sha256"] == tree.tarball_sha256
    assert lock["python"]["tarball"] == f"Python-{PY_VERSION}.tgz" and lock["os_release"] == "Debian 12"
    pkgs = lock["packages"]
    assert sorted(pkgs) == ["auto-gptq", "markdown", "pip", "pyyaml"]
    assert pkgs["pyyaml"]["source"] == "wheelhouse" and pkgs["pyyaml"]["version"] == "6.0.1"
    # only the wheel of the installed version, not PyYAML-5.4
    assert pkgs["pyyaml"]["files"] == {w: s for w, s in tree.wheels.items() if w.startswith("PyYAML-6.0.1")}
    assert list(pkgs["auto-gptq"]["files"]) == ["auto_gptq-0.4.2+cu117-cp311-cp311-linux_x86_64.whl"]
    assert pkgs["pip"]["source"] == "ensurepip"
    model = lock["models"]["models/WizardLM_WizardCoder-1B-V1.0"]
    assert model["repo"] == "WizardLM/WizardCoder-1B-V1.0" and model["commit"] == "c" * 40 and model["revision"] == "main"
    # LFS sha256 from the manifest, the git-stored file hashed on disk
    assert model["files"] == {"model.safetensors": {"size": len(LFS_BYTES), "sha256": sha256(LFS_BYTES)},
                              "sub/config.json": {"size": len(CONFIG_BYTES), "sha256": sha256(CONFIG_BYTES)}}
    assert "loras/hpcllm-test_LoRA" in lock["models"]
    assert lock["images"] == {"compute": {"packages": {"nvidia-kernel-dkms": "535.261.03-1"}, "kernels": ["6.1.0-56-amd64"]}}


def test_render_is_deterministic_and_has_no_time(tmp_path):
    first = make_root(tmp_path / "a")
    second = make_root(tmp_path / "b")
    text_a = render(build_lock(str(first.root))[0])
    text_b = render(build_lock(str(second.root))[0])
    # the same records in two places (same commit: fixed dates): only the install root differs
    assert text_a.replace(str(first.root), "R") == text_b.replace(str(second.root), "R")
    assert text_a == render(json.loads(text_a))  # sorted keys, stable
    assert "time" not in text_a and "date" not in text_a


def test_unhashed_package_is_reported(tmp_path):
    tree = make_root(tmp_path, untracked_package=True)
    lock, unhashed = build_lock(str(tree.root))
    assert unhashed == ["torch==2.0.1"]
    assert lock["packages"]["torch"] == {"name": "torch", "version": "2.0.1", "source": "none", "files": {}}


def _drop(path):
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: _drop(r / "webui" / "checkout.json"), "cannot read web UI checkout record"),
        (lambda r: (r / "webui" / "checkout.json").write_text("{"), "is not valid JSON"),
        (lambda r: (r / "webui" / "checkout.json").write_text('{"repo": "x", "version": "y"}'), "has no commit"),
        (lambda r: _drop(r / f"python_{PY_VERSION}" / ".hpcllm-build.json"), "no CPython build record"),
        (lambda r: (r / f"python_{PY_VERSION}" / ".hpcllm-build.json").write_text('{"version": "3.11.2", "sha256": "xyz"}'),
         "is not 64 hex digits"),
        (lambda r: _drop(r / "venv" / "lib"), "has no lib/python*/site-packages"),
        (lambda r: _drop(r / "models" / "WizardLM_WizardCoder-1B-V1.0" / "sub" / "config.json"),
         "models/WizardLM_WizardCoder-1B-V1.0: sub/config.json is listed in .hf_model.json but missing on disk"),
        (lambda r: (r / "venv" / "lib" / "python3.11" / "site-packages" / "pip-23.0.1.dist-info" / "METADATA").write_text("Name: pip\n"),
         "has no Name or Version header"),
    ],
)
def test_broken_roots_fail_naming_the_record(tmp_path, breakage, message):
    tree = make_root(tmp_path)
    breakage(tree.root)
    with pytest.raises(DeployLockError, match=message.replace("*", r"\*").replace(".", r"\.")):
        build_lock(str(tree.root))


def test_several_builds_need_the_venv_or_python_version(tmp_path):
    tree = make_root(tmp_path)
    other = tree.root / "python_3.11.4"
    other.mkdir()
    (other / ".hpcllm-build.json").write_text(json.dumps({"version": "3.11.4", "sha256": "a" * 64}))
    assert build_lock(str(tree.root))[0]["python"]["version"] == PY_VERSION  # from pyvenv.cfg home
    (tree.root / "venv" / "pyvenv.cfg").write_text("version = 3.11.2\n")
    with pytest.raises(DeployLockError, match="several CPython builds .* set python_version"):
        build_lock(str(tree.root))
    assert build_lock(str(tree.root), python_version="3.11.4")[0]["python"]["sha256"] == "a" * 64
    with pytest.raises(DeployLockError, match="python_version 3.9.9: .* does not exist"):
        build_lock(str(tree.root), python_version="3.9.9")


@pytest.mark.parametrize(
    "images, message",
    [
        ([], "images must be a dict"),
        ({"a": {"pkgs": {}}}, "images.a may only have the keys packages and kernels"),
        ({"a": {"packages": ["x"]}}, r"images.a.packages must be a dict"),
        ({"a": {"kernels": "6.1"}}, r"images.a.kernels must be a list"),
    ],
)
def test_bad_images(images, message):
    with pytest.raises(DeployLockError, match=message):
        image_entries(images)


def test_write_check_mode_diff_and_idempotence(tmp_path):
    tree = make_root(tmp_path)
    dest = tree.root / "hpcllm-lock.json"
    params = {"install_root": str(tree.root)}
    check = DeployLock(params, check_mode=True, diff_mode=True).run()
    assert check["changed"] is True and not dest.exists()
    assert check["diff"]["before"] == "" and json.loads(check["diff"]["after"]) == check["lock"]
    moved = []

    def mover(src, dst):
        moved.append(dst)
        os.rename(src, dst)

    first = DeployLock(params, mover=mover).run()
    assert first["changed"] is True and moved == [str(dest)]
    assert first["sha256"] == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tree.root.iterdir() if p.name.startswith(".hpcllm-lock")) == []  # no temp left
    second = DeployLock(params, mover=mover).run()
    assert second["changed"] is False and moved == [str(dest)] and second["actions"] == []
    # a new model revision changes the lock
    manifest = tree.root / "models" / "WizardLM_WizardCoder-1B-V1.0" / ".hf_model.json"
    data = json.loads(manifest.read_text())
    data["commit"] = "d" * 40
    manifest.write_text(json.dumps(data))
    third = DeployLock(params, diff_mode=True, mover=mover).run()
    assert third["changed"] is True and "d" * 40 in dest.read_text() and "c" * 40 in third["diff"]["before"]


def test_a_run_over_some_images_keeps_the_others_records(tmp_path):
    """chroot_prep_images narrowed to one image (a partial run) must not drop the records of the others."""
    tree = make_root(tmp_path)
    dest = tree.root / "hpcllm-lock.json"
    both = {"compute": {"packages": {"nvidia-kernel-dkms": "535.261.03-1"}, "kernels": ["6.1.0-50-amd64"]},
            "compute-lite": {"packages": {}, "kernels": []}}
    DeployLock({"install_root": str(tree.root), "images": both, "keep_other_images": True}).run()
    full = dest.read_bytes()
    partial = DeployLock({"install_root": str(tree.root), "images": {"compute": both["compute"]}, "keep_other_images": True}).run()
    assert partial["changed"] is False and partial["kept_images"] == ["compute-lite"] and dest.read_bytes() == full
    newer = {"compute": {"packages": {"nvidia-kernel-dkms": "535.261.03-2"}, "kernels": ["6.1.0-50-amd64"]}}
    updated = DeployLock({"install_root": str(tree.root), "images": newer, "keep_other_images": True}).run()
    assert updated["changed"] is True and updated["lock"]["images"]["compute"] == newer["compute"]
    assert updated["lock"]["images"]["compute-lite"] == both["compute-lite"]
    # without the option the lock holds exactly the images given
    only = DeployLock({"install_root": str(tree.root), "images": newer}).run()
    assert only["changed"] is True and sorted(only["lock"]["images"]) == ["compute"] and only["kept_images"] == []
