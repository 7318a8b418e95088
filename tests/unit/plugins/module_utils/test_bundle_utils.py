"""Tests of module_utils._bundle_* on tmp trees with real git and tar: export, import, failures, resume."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils import _bundle_archive, _bundle_export
from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_archive import (
    GIT_BUNDLE,
    GIT_MIRROR,
    BundleError,
    safe_relpath,
)
from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_export import BundleExport
from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_import import BundleImport
from ansible_collections.hpcllm.webui.plugins.module_utils._bundle_verify import BundleVerify
from ansible_collections.hpcllm.webui.plugins.module_utils._deploy_lock import DeployLock
from lock_tree import git, make_root, sha256


def local_run(argv, cwd=None):
    """The logic classes' run(argv, cwd): here a plain subprocess (the modules give them community.general's CmdRunner)."""
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"), check=False)
    return proc.returncode, proc.stdout, proc.stderr


def export_logic(params, check_mode=False):
    return BundleExport(params, check_mode, local_run)


def import_logic(params, check_mode=False):
    return BundleImport(params, check_mode, local_run)


def verify_logic(params, check_mode=False):
    return BundleVerify(params, check_mode, local_run)


def _export_params(tree, dest, **extra):
    params = {"lock": str(tree.root / "hpcllm-lock.json"), "dest": str(dest), "python_tarball": str(tree.tarball),
              "wheelhouse": None, "webui_repo": None, "models": False, "os_packages": None, "force": False}
    params.update(extra)
    return params


@pytest.fixture
def tree(tmp_path):
    made = make_root(tmp_path / "site")
    DeployLock({"install_root": str(made.root)}).run()
    return made


def _members(path: Path) -> dict:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def _rewrite(src: Path, dest: Path, drop: str | None = None, change: str | None = None, add: str | None = None):
    """Copy a bundle, dropping one member, flipping a byte in one, or adding one."""
    with tarfile.open(src) as reader, tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as writer:
        for member in reader.getmembers():
            if member.name == drop:
                continue
            data = reader.extractfile(member).read()
            if member.name == change:
                data = bytes([data[0] ^ 1]) + data[1:]
            writer.addfile(member, io.BytesIO(data))
        if add:
            info = tarfile.TarInfo(add)
            info.size = 1
            writer.addfile(info, io.BytesIO(b"x"))


@pytest.mark.parametrize("path, ok", [("a/b", True), ("a", True), ("/a", False), ("../a", False), ("a/../../b", False),
                                      ("a/./b", False), ("", False), ("a\\b", False), (".", False)])
def test_safe_relpath(path, ok):
    assert safe_relpath(path) is ok


def test_export_contents_and_idempotence(tree, tmp_path):
    dest = tmp_path / "bundle.tar"
    params = _export_params(tree, dest, models=True, os_packages=str(tree.os_packages))
    check = export_logic(params, check_mode=True).run()
    assert check["changed"] is True and not dest.exists() and not Path(str(dest) + ".partial").exists()
    first = export_logic(params).run()
    assert first["changed"] is True and dest.exists() and not Path(str(dest) + ".partial").exists()
    members = _members(dest)
    manifest = json.loads(members["bundle.json"])
    assert set(members) == set(manifest["artifacts"]) | {"bundle.json", "SHA256SUMS"}
    for rel, entry in manifest["artifacts"].items():
        assert hashlib.sha256(members[rel]).hexdigest() == entry["sha256"] and len(members[rel]) == entry["size"]
    assert members["python/Python-3.11.2.tgz"] == tree.tarball.read_bytes()
    assert {r.split("/", 1)[1] for r in manifest["artifacts"] if r.startswith("wheelhouse/")} == \
        {w for w in tree.wheels if not w.startswith("pip-")}  # pip comes with CPython (ensurepip)
    assert "models/WizardLM_WizardCoder-1B-V1.0/sub/config.json" in manifest["artifacts"]
    assert "packages/deb/nvidia-kernel-dkms_535.261.03-1_amd64.deb" in manifest["artifacts"]
    assert members["SHA256SUMS"].decode().splitlines()[0].endswith("  " + sorted(manifest["artifacts"])[0])
    assert manifest["webui"]["commit"] == tree.commit and manifest["lock_sha256"] == first["lock_sha256"]
    # the web UI's installed lock, under the name it was deployed with (webui_lock's file)
    lock_entry = manifest["artifacts"]["webui/8466cf2-py311-x86_64-cu118.txt"]
    assert lock_entry["kind"] == "webui-lock" and lock_entry["sha256"] == sha256(b"PyYAML==6.0.1\n")
    before = dest.stat().st_mtime_ns
    second = export_logic(params).run()
    assert second["changed"] is False and dest.stat().st_mtime_ns == before
    # a changed OS package makes the bundle stale
    (tree.os_packages / "Packages").write_text("Package: other\n")
    assert export_logic(params).run()["changed"] is True


def test_roundtrip_same_sha256(tree, tmp_path):
    dest = tmp_path / "bundle.tar"
    export_logic(_export_params(tree, dest, models=True)).run()
    mirror = tmp_path / "mirror"
    check = import_logic({"src": str(dest), "dest": str(mirror), "checksum": None}, check_mode=True).run()
    assert check["changed"] is True and not mirror.exists()
    result = import_logic({"src": str(dest), "dest": str(mirror), "checksum": _bundle_archive.sha256_file(str(dest))}).run()
    assert result["changed"] is True and result["webui_commit"] == tree.commit
    assert (mirror / "python" / "Python-3.11.2.tgz").read_bytes() == tree.tarball.read_bytes()
    for wheel, digest in tree.wheels.items():
        if not wheel.startswith("pip-"):
            assert sha256((mirror / "wheelhouse" / wheel).read_bytes()) == digest
    model = "models/WizardLM_WizardCoder-1B-V1.0"
    for rel in ("model.safetensors", "sub/config.json", ".hf_model.json"):
        assert (mirror / model / rel).read_bytes() == (tree.root / model / rel).read_bytes()
    assert (mirror / "hpcllm-lock.json").read_bytes() == (tree.root / "hpcllm-lock.json").read_bytes()
    assert result["webui_lock_file"] == str(mirror / "webui" / "8466cf2-py311-x86_64-cu118.txt")
    assert Path(result["webui_lock_file"]).read_bytes() == (tree.root / "webui" / "lock.txt").read_bytes()
    assert result["models"] == ["loras/hpcllm-test_LoRA", model]
    # the bare repository serves the commit and the version's tag; a clone through it checks out the lock's commit
    bare = mirror / GIT_MIRROR
    assert (bare / "info" / "refs").exists()  # update-server-info ran (dumb HTTP)
    assert git("-C", str(bare), "rev-parse", "refs/tags/v0.0-standin^{commit}") == tree.commit
    clone = tmp_path / "clone"
    git("clone", "-q", str(bare), str(clone))
    assert git("-C", str(clone), "rev-parse", "HEAD") == tree.commit
    assert import_logic({"src": str(dest), "dest": str(mirror), "checksum": None}).run()["changed"] is False


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_export_of_a_checkout_owned_by_the_run_user(tree, tmp_path):
    """After finalize the checkout belongs to the run user; git refuses such a repository to root by default."""
    for path in [tree.root / "text-generation-webui", *(tree.root / "text-generation-webui").rglob("*")]:
        os.lchown(path, 65534, 65534)
    dest = tmp_path / "bundle.tar"
    result = export_logic(_export_params(tree, dest)).run()
    assert result["changed"] is True and GIT_BUNDLE in result["copied"]


@pytest.mark.parametrize("victim", ["python/Python-3.11.2.tgz", GIT_BUNDLE, "hpcllm-lock.json",
                                    "wheelhouse/Markdown-3.4.4-py3-none-any.whl"])
def test_corrupt_artifact_fails_naming_it_nothing_unpacked(tree, tmp_path, victim):
    good = tmp_path / "bundle.tar"
    export_logic(_export_params(tree, good)).run()
    bad = tmp_path / "bad.tar"
    _rewrite(good, bad, change=victim)
    mirror = tmp_path / "mirror"
    with pytest.raises(BundleError, match=r"artifact %s has sha256 [0-9a-f]{64} .* the bundle is corrupt; nothing was imported"
                       % victim.replace(".", r"\.")):
        import_logic({"src": str(bad), "dest": str(mirror), "checksum": None}).run()
    assert not mirror.exists() and not Path(str(mirror) + ".partial").exists()


def test_corrupt_bundle_leaves_a_previous_import_alone(tree, tmp_path):
    good = tmp_path / "bundle.tar"
    export_logic(_export_params(tree, good)).run()
    mirror = tmp_path / "mirror"
    import_logic({"src": str(good), "dest": str(mirror), "checksum": None}).run()
    listing = sorted(str(p.relative_to(mirror)) for p in mirror.rglob("*"))
    (tree.root / "hpcllm-lock.json").write_text((tree.root / "hpcllm-lock.json").read_text().replace('"format"', '"format" ', 1))
    other = tmp_path / "other.tar"
    export_logic(_export_params(tree, other)).run()
    bad = tmp_path / "bad.tar"
    _rewrite(other, bad, change="python/Python-3.11.2.tgz")
    with pytest.raises(BundleError, match="artifact python/Python-3.11.2.tgz has sha256"):
        import_logic({"src": str(bad), "dest": str(mirror), "checksum": None}).run()
    assert sorted(str(p.relative_to(mirror)) for p in mirror.rglob("*")) == listing


@pytest.mark.parametrize("change, message", [
    ({"drop": "wheelhouse/Markdown-3.4.4-py3-none-any.whl"}, "artifact wheelhouse/Markdown-3.4.4-py3-none-any.whl is missing from the archive"),
    ({"drop": "bundle.json"}, "it has no bundle.json"),
    ({"add": "extra/file"}, "extra/file is in the archive but not in bundle.json"),
])
def test_missing_or_unexpected_member_fails_before_writing(tree, tmp_path, change, message):
    good = tmp_path / "bundle.tar"
    export_logic(_export_params(tree, good)).run()
    bad = tmp_path / "bad.tar"
    _rewrite(good, bad, **change)
    mirror = tmp_path / "mirror"
    with pytest.raises(BundleError, match=message.replace(".", r"\.") + ".*nothing was imported"):
        import_logic({"src": str(bad), "dest": str(mirror), "checksum": None}).run()
    assert not mirror.exists() and not Path(str(mirror) + ".partial").exists()


def test_checksum_of_the_archive(tree, tmp_path):
    good = tmp_path / "bundle.tar"
    export_logic(_export_params(tree, good)).run()
    with pytest.raises(BundleError, match="the archive has sha256 [0-9a-f]{64}, not " + "0" * 64):
        import_logic({"src": str(good), "dest": str(tmp_path / "m"), "checksum": "0" * 64}).run()
    assert not (tmp_path / "m").exists()


def test_interrupted_export_resumes(tree, tmp_path, monkeypatch):
    dest = tmp_path / "bundle.tar"
    params = _export_params(tree, dest, models=True)
    real_copy = _bundle_export.copy_hashed
    calls = []

    def dying_copy(src, staged):
        calls.append(staged)
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real_copy(src, staged)

    monkeypatch.setattr(_bundle_export, "copy_hashed", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        export_logic(params).run()
    assert not dest.exists()
    staging = Path(str(dest) + ".partial")
    staged = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    assert len(staged) == 3
    # a half-written file under its final name (killed during a rename-less copy) must be replaced
    half = staging / "wheelhouse" / "Markdown-3.4.4-py3-none-any.whl"
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_bytes(b"trunc")
    copied_again = []

    def counting_copy(src, staged_path):
        copied_again.append(os.path.relpath(staged_path, staging))
        return real_copy(src, staged_path)

    monkeypatch.setattr(_bundle_export, "copy_hashed", counting_copy)
    result = export_logic(params).run()
    assert result["changed"] is True
    assert set(staged) <= set(result["kept"]) and not set(staged) & set(copied_again)
    assert "wheelhouse/Markdown-3.4.4-py3-none-any.whl" in result["copied"] and copied_again
    assert not staging.exists()
    members = _members(dest)
    manifest = json.loads(members["bundle.json"])
    for rel, entry in manifest["artifacts"].items():
        assert hashlib.sha256(members[rel]).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("breakage, message", [
    ("tarball", r"python/Python-3\.11\.2\.tgz: .* has sha256 [0-9a-f]{64}, the lock says"),
    ("wheel", r"wheelhouse/Markdown-3\.4\.4-py3-none-any\.whl: .* does not exist"),
    ("commit", r"git/text-generation-webui\.bundle: the web UI repository .* does not hold commit"),
    ("unhashed", r"packages without a file in the wheelhouse.*torch==2\.0\.1"),
    ("no_tarball", r"python_tarball is required"),
    ("webui_lock", r"webui/8466cf2-py311-x86_64-cu118\.txt: .*/webui/lock\.txt has sha256 [0-9a-f]{64}, the lock says"),
    ("lock_name", r"the lock names the web UI lock '\.\./x\.txt', which is not a file name"),
])
def test_export_refuses_what_does_not_match_the_lock(tmp_path, breakage, message):
    made = make_root(tmp_path / "site", untracked_package=breakage == "unhashed")
    DeployLock({"install_root": str(made.root)}).run()
    params = _export_params(made, tmp_path / "bundle.tar")
    if breakage == "tarball":
        made.tarball.write_bytes(b"another tarball")
    elif breakage == "wheel":
        os.unlink(made.root / "wheelhouse" / "Markdown-3.4.4-py3-none-any.whl")
    elif breakage == "commit":
        lock = json.loads((made.root / "hpcllm-lock.json").read_text())
        lock["webui"]["commit"] = "1" * 40
        (made.root / "hpcllm-lock.json").write_text(json.dumps(lock))
    elif breakage == "no_tarball":
        params["python_tarball"] = None
    elif breakage == "webui_lock":  # the installed lock changed after the deployment lock was written
        (made.root / "webui" / "lock.txt").write_text("PyYAML==6.0.2\n")
    elif breakage == "lock_name":
        lock = json.loads((made.root / "hpcllm-lock.json").read_text())
        lock["webui"]["lock"] = "../x.txt"
        (made.root / "hpcllm-lock.json").write_text(json.dumps(lock))
    with pytest.raises(BundleError, match=message):
        export_logic(params).run()
    assert not (tmp_path / "bundle.tar").exists()


# --------------------------------------------------------------------------- BundleVerify
@pytest.fixture
def mirror(tree, tmp_path):
    dest = tmp_path / "bundle.tar"
    export_logic(_export_params(tree, dest, models=True, os_packages=str(tree.os_packages))).run()
    unpacked = tmp_path / "mirror"
    import_logic({"src": str(dest), "dest": str(unpacked), "checksum": None}).run()
    return unpacked


def _listing(folder: Path) -> list:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*"))


@pytest.mark.parametrize("verify", ["size", "sha256"])
def test_verify_describes_the_sources_and_changes_nothing(tree, mirror, verify):
    before = _listing(mirror)
    result = verify_logic({"path": str(mirror), "verify": verify}).run()
    assert result["changed"] is False and result["verified"] == verify
    assert result["webui_commit"] == tree.commit and result["python_version"] == "3.11.2"
    assert result["python_tarball"] == str(mirror / "python" / "Python-3.11.2.tgz")
    assert result["webui_repo"] == str(mirror / GIT_MIRROR) and result["wheelhouse"] == str(mirror / "wheelhouse")
    assert result["lock_content"] == json.loads((tree.root / "hpcllm-lock.json").read_text())
    assert result["package_folders"] == ["deb"] and result["models"][-1] == "models/WizardLM_WizardCoder-1B-V1.0"
    assert _listing(mirror) == before


@pytest.mark.parametrize("damage, verify, message", [
    ("remove", "size", "artifact wheelhouse/Markdown-3.4.4-py3-none-any.whl is missing"),
    ("truncate", "size", "artifact wheelhouse/Markdown-3.4.4-py3-none-any.whl has [0-9]+ bytes, the manifest says [0-9]+"),
    ("flip", "sha256", "artifact wheelhouse/Markdown-3.4.4-py3-none-any.whl has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}"),
])
def test_verify_fails_naming_the_artifact(mirror, damage, verify, message):
    victim = mirror / "wheelhouse" / "Markdown-3.4.4-py3-none-any.whl"
    data = victim.read_bytes()
    if damage == "remove":
        victim.unlink()
    elif damage == "truncate":
        victim.write_bytes(data[:-1])
    else:
        victim.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    before = _listing(mirror)
    with pytest.raises(BundleError, match="bundle %s: %s; nothing was changed" % (mirror, message)):
        verify_logic({"path": str(mirror), "verify": verify}).run()
    assert _listing(mirror) == before


def test_verify_size_does_not_read_the_files(mirror):
    """A flipped byte passes verify=size (that is what sha256 is for): size never hashes."""
    victim = mirror / "python" / "Python-3.11.2.tgz"
    data = victim.read_bytes()
    victim.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    assert verify_logic({"path": str(mirror), "verify": "size"}).run()["verified"] == "size"


@pytest.mark.parametrize("breakage, message", [
    ("no-folder", "the folder does not exist"),
    ("no-record", r"\.hpcllm-bundle\.json is missing: this is not a bundle unpacked by bundle_import"),
    ("no-git", "the web UI repository git/text-generation-webui.git is missing"),
])
def test_verify_refuses_what_is_not_an_unpacked_bundle(mirror, tmp_path, breakage, message):
    path = mirror
    if breakage == "no-folder":
        path = tmp_path / "nowhere"
    elif breakage == "no-record":
        (mirror / ".hpcllm-bundle.json").unlink()
    else:
        shutil.rmtree(mirror / GIT_MIRROR)
    with pytest.raises(BundleError, match=message + ".*nothing was changed"):
        verify_logic({"path": str(path), "verify": "size"}).run()


def test_export_carries_each_image_packages_in_its_folder(tree, tmp_path):
    lite = tmp_path / "lite-packages"
    lite.mkdir()
    (lite / "Packages").write_text("Package: hello\n")
    dest = tmp_path / "bundle.tar"
    params = _export_params(tree, dest, image_packages={"compute": str(tree.os_packages), "compute-lite": str(lite)})
    manifest = export_logic(params).run()["manifest"]
    assert manifest["contents"]["os_packages"] is True
    assert {rel for rel in manifest["artifacts"] if rel.startswith("packages/")} == {
        "packages/compute/Packages", "packages/compute/deb/nvidia-kernel-dkms_535.261.03-1_amd64.deb", "packages/compute-lite/Packages"}
    mirror = tmp_path / "mirror"
    import_logic({"src": str(dest), "dest": str(mirror), "checksum": None}).run()
    assert verify_logic({"path": str(mirror), "verify": "sha256"}).run()["package_folders"] == ["compute", "compute-lite"]


@pytest.mark.parametrize("extra, message", [
    ({"image_packages": {"../x": "/tmp"}}, r"image_packages: '\.\./x' is not a usable image name"),
    ({"image_packages": {"compute": "/nonexistent"}}, r"image_packages\[compute\] /nonexistent is not a folder"),
])
def test_export_refuses_bad_image_packages(tree, tmp_path, extra, message):
    with pytest.raises(BundleError, match=message):
        export_logic(_export_params(tree, tmp_path / "b.tar", **extra)).run()
