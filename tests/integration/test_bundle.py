"""deploy_lock, the lock role and the bundle playbooks (playbooks/bundle_export.yml, bundle_import.yml)
through ansible-playbook on install roots laid out in tmp folders (tests/lock_tree.py): roundtrip with equal
sha256 sums, a corrupt or missing artifact fails naming it with nothing unpacked, an interrupted export resumes."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from lock_tree import make_root

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks" / "bundle"
EXPORT = REPO / "playbooks" / "bundle_export.yml"
IMPORT = REPO / "playbooks" / "bundle_import.yml"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_sums(folder: Path) -> dict:
    return {str(p.relative_to(folder)): _sha(p) for p in folder.rglob("*") if p.is_file()}


INVENTORY = "---\nwarewulf_master:\n  hosts:\n    localhost:\n      ansible_connection: local\n"


@pytest.fixture
def inventory(tmp_path) -> str:
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return str(path)


def test_deploy_lock_check_write_idempotent(ansible_playbook, tmp_path):
    tree = make_root(tmp_path / "site")
    lock = tree.root / "hpcllm-lock.json"
    image = {"packages": {"nvidia-kernel-dkms": "535.261.03-1"}, "kernels": ["6.1.0-56-amd64"]}
    extra = {"lock_root": str(tree.root), "lock_images_arg": {"compute": image}}
    check = ansible_playbook(PLAYBOOKS / "lock.yml", extra, check=True, diff=True)
    assert check.rc == 0, check.stdout
    assert check.results("Lock")["changed"] is True and not lock.exists()
    first = ansible_playbook(PLAYBOOKS / "lock.yml", extra)
    assert first.rc == 0, first.stdout
    result = first.results("Lock")
    assert result["changed"] is True and result["sha256"] == _sha(lock)
    data = json.loads(lock.read_text())
    assert data["webui"]["commit"] == tree.commit and data["python"]["sha256"] == tree.tarball_sha256
    assert data["images"]["compute"]["kernels"] == ["6.1.0-56-amd64"]
    assert data["packages"]["pyyaml"]["files"]
    second = ansible_playbook(PLAYBOOKS / "lock.yml", extra)
    assert second.rc == 0 and second.changed() == 0
    broken = ansible_playbook(PLAYBOOKS / "lock.yml", {"lock_root": str(tmp_path / "nowhere")})
    assert broken.rc != 0 and broken.results("Lock")["msg"] == f"deploy_lock: install root {tmp_path / 'nowhere'} does not exist"


def test_lock_role_records_the_image(ansible_playbook, tmp_path):
    if not shutil.which("dpkg-query"):
        pytest.skip("needs dpkg-query (Debian host)")
    tree = make_root(tmp_path / "site")
    run = ansible_playbook(PLAYBOOKS / "lock_role.yml", {"hpcllm_install_root": str(tree.root)})
    assert run.rc == 0, run.stdout
    data = json.loads((tree.root / "hpcllm-lock.json").read_text())
    packages = data["images"]["localhost"]["packages"]
    assert list(packages) == ["dpkg"] and packages["dpkg"][0].isdigit()
    again = ansible_playbook(PLAYBOOKS / "lock_role.yml", {"hpcllm_install_root": str(tree.root)})
    assert again.rc == 0 and again.changed() == 0


def _export(ansible_playbook, inventory, tree, dest, **extra):
    # no Warewulf images here: the OS packages come as one folder (bundle_os_packages), not collected from images
    variables = {"bundle_dest": str(dest), "bundle_install_root": str(tree.root), "bundle_python_tarball": str(tree.tarball),
                 "bundle_image_packages": False}
    variables.update(extra)
    return ansible_playbook(EXPORT, variables, inventory=inventory)


def _import(ansible_playbook, inventory, src, mirror, **extra):
    variables = {"bundle_src": str(src), "bundle_mirror_dir": str(mirror)}
    variables.update(extra)
    return ansible_playbook(IMPORT, variables, inventory=inventory)


# one export for the module: the tests that take it only read the archive and the tree (a
# broken copy is written elsewhere), so it is made once rather than before each of them
@pytest.fixture(scope="module")
def exported(module_ansible_playbook, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exported")
    ansible_playbook = module_ansible_playbook
    inventory = tmp / "hosts.yml"
    inventory.write_text(INVENTORY)
    tree = make_root(tmp / "site")
    lock = ansible_playbook(PLAYBOOKS / "lock.yml", {"lock_root": str(tree.root)})
    assert lock.rc == 0, lock.stdout
    dest = tmp / "out" / "bundle.tar"
    dest.parent.mkdir()
    run = _export(ansible_playbook, str(inventory), tree, dest, bundle_models=True, bundle_os_packages=str(tree.os_packages))
    assert run.rc == 0, run.stdout
    return tree, dest, run


def test_roundtrip_equal_sha256(ansible_playbook, inventory, tmp_path, exported):
    tree, dest, run = exported
    checksum = _sha(dest)
    assert checksum in run.results("Say what to carry to the air-gapped site")["msg"]
    again = _export(ansible_playbook, inventory, tree, dest, bundle_models=True, bundle_os_packages=str(tree.os_packages))
    assert again.rc == 0 and again.changed() == 0 and _sha(dest) == checksum
    mirror = tmp_path / "mirror"
    imported = _import(ansible_playbook, inventory, dest, mirror, bundle_checksum=checksum)
    assert imported.rc == 0, imported.stdout
    result = imported.results("Verify and unpack the bundle")
    assert result["changed"] is True and result["webui_commit"] == tree.commit
    sums = _tree_sums(mirror)
    assert sums["python/Python-3.11.2.tgz"] == tree.tarball_sha256
    assert sums["hpcllm-lock.json"] == _sha(tree.root / "hpcllm-lock.json")
    for rel, digest in _tree_sums(tree.root / "wheelhouse").items():
        if rel in tree.wheels:
            assert sums[f"wheelhouse/{rel}"] == digest
    for kind in ("models", "loras"):
        for rel, digest in _tree_sums(tree.root / kind).items():
            assert sums[f"{kind}/{rel}"] == digest
    for rel, digest in _tree_sums(tree.os_packages).items():
        assert sums[f"packages/{rel}"] == digest
    assert "git/text-generation-webui.git/info/refs" in sums
    twice = _import(ansible_playbook, inventory, dest, mirror, bundle_checksum=checksum)
    assert twice.rc == 0 and twice.changed() == 0


def _rewrite(src: Path, dest: Path, drop: str | None = None, change: str | None = None):
    with tarfile.open(src) as reader, tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as writer:
        for member in reader.getmembers():
            if member.name == drop:
                continue
            data = reader.extractfile(member).read()
            if member.name == change:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            writer.addfile(member, io.BytesIO(data))


def test_corrupt_artifact_fails_nothing_unpacked(ansible_playbook, inventory, tmp_path, exported):
    dummy, dest, dummy2 = exported
    bad = tmp_path / "bad.tar"
    victim = "models/WizardLM_WizardCoder-1B-V1.0/model.safetensors"
    _rewrite(dest, bad, change=victim)
    mirror = tmp_path / "mirror"
    run = _import(ansible_playbook, inventory, bad, mirror)
    assert run.rc != 0
    msg = run.results("Verify and unpack the bundle")["msg"]
    assert msg.startswith(f"bundle_import: bundle {bad}: artifact {victim} has sha256 ")
    assert msg.endswith("the bundle is corrupt; nothing was imported")
    assert not mirror.exists() and not Path(f"{mirror}.partial").exists()
    # the published checksum catches it first
    run = _import(ansible_playbook, inventory, bad, mirror, bundle_checksum=_sha(dest))
    assert run.rc != 0 and f"the archive has sha256 {_sha(bad)}, not {_sha(dest)}" in run.results("Verify and unpack the bundle")["msg"]


def test_missing_artifact_fails_naming_it(ansible_playbook, inventory, tmp_path, exported):
    dummy, dest, dummy2 = exported
    bad = tmp_path / "bad.tar"
    _rewrite(dest, bad, drop="python/Python-3.11.2.tgz")
    mirror = tmp_path / "mirror"
    run = _import(ansible_playbook, inventory, bad, mirror)
    assert run.rc != 0
    assert run.results("Verify and unpack the bundle")["msg"] == (
        f"bundle_import: bundle {bad}: artifact python/Python-3.11.2.tgz is missing from the archive; nothing was imported")
    assert not mirror.exists() and not Path(f"{mirror}.partial").exists()


def test_interrupted_export_resumes(ansible_playbook, inventory, tmp_path):
    tree = make_root(tmp_path / "site")
    assert ansible_playbook(PLAYBOOKS / "lock.yml", {"lock_root": str(tree.root)}).rc == 0
    dest = tmp_path / "bundle.tar"
    staging = Path(f"{dest}.partial")
    # what a killed export leaves: some artifacts staged whole, one cut short, one temporary file
    (staging / "python").mkdir(parents=True)
    shutil.copy(tree.tarball, staging / "python" / "Python-3.11.2.tgz")
    (staging / "wheelhouse").mkdir()
    markdown = "Markdown-3.4.4-py3-none-any.whl"
    (staging / "wheelhouse" / markdown).write_bytes((tree.root / "wheelhouse" / markdown).read_bytes()[:10])
    (staging / "wheelhouse" / "PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.tmp").write_bytes(b"x")
    run = _export(ansible_playbook, inventory, tree, dest)
    assert run.rc == 0, run.stdout
    result = run.results("Gather the artifacts into the archive")
    assert "python/Python-3.11.2.tgz" in result["kept"] and "python/Python-3.11.2.tgz" not in result["copied"]
    assert f"wheelhouse/{markdown}" in result["copied"]
    assert not staging.exists()
    with tarfile.open(dest) as archive:
        manifest = json.loads(archive.extractfile("bundle.json").read())
        for rel, entry in manifest["artifacts"].items():
            assert hashlib.sha256(archive.extractfile(rel).read()).hexdigest() == entry["sha256"]
        assert not [n for n in archive.getnames() if n.endswith(".tmp")]


def test_export_without_lock_says_what_to_do(ansible_playbook, inventory, tmp_path):
    tree = make_root(tmp_path / "site")
    run = _export(ansible_playbook, inventory, tree, tmp_path / "bundle.tar")
    assert run.rc != 0
    assert run.results("Stop when there is no lock")["msg"] == (
        f"{tree.root}/hpcllm-lock.json does not exist: run site.yml (it writes the lock at the end) before exporting")


SITE_BUNDLE = PLAYBOOKS / "site_bundle.yml"


def test_site_takes_every_source_from_the_bundle(ansible_playbook, inventory, tmp_path, exported):
    """site.yml's prepare play with hpcllm_bundle: checked first, then every image's sources point into it."""
    tree, dest, dummy = exported
    opt = tmp_path / "opt"
    opt.mkdir()
    mirror = opt / "hpcllm-mirror"
    assert _import(ansible_playbook, inventory, dest, mirror).rc == 0
    lock = json.loads((tree.root / "hpcllm-lock.json").read_text())
    # the bundle's OS packages are one folder named "deb" here: an image of that name has its repository
    # the site's inventory names other sources: the bundle outranks it (facts; only -e would outrank them)
    site_inventory = tmp_path / "site.yml"
    site_inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {}}, "vars": {
        "webui_repo": "https://elsewhere.example/webui.git", "python_build_version": "3.12.0",
        "webui_wheelhouse": "/opt/wheelhouse", "webui_pip_no_index": False}}}))
    good = {"hpcllm_bundle": str(mirror), "chroot_prep_opt_path": str(opt), "chroot_prep_images": [{"name": "deb"}]}
    run = ansible_playbook(SITE_BUNDLE, good, check=True, inventory=str(site_inventory))
    assert run.rc == 0, run.stdout
    assert "Every source from the bundle %s (size checked)" % mirror in run.stdout
    got = run.results("Sources", host="deb")["msg"]
    assert got == {
        "python_build_source_url": "file://%s/python/Python-3.11.2.tgz" % mirror,
        "python_build_version": "3.11.2",
        # the identity the lock recorded, not the inventory's: the rebuilt checkout and lock are the exported ones
        "webui_repo": lock["webui"]["repo"],
        "webui_repo_mirror": str(mirror / "git" / "text-generation-webui.git"),
        "webui_version": lock["webui"]["version"],
        "webui_wheelhouse": str(mirror / "wheelhouse"),
        "webui_pip_no_index": True,
        "models_source_dir": str(mirror),
        "chroot_prep_packages_repo": str(mirror / "packages" / "deb"),
    }


@pytest.mark.parametrize("breakage, message", [
    ("relative", "hpcllm_bundle must be the absolute path of a bundle unpacked by bundle_import (got opt/hpcllm-mirror)"),
    ("verify", "hpcllm_bundle_verify one of size, sha256 (got md5)"),
    ("wheel", "bundle {mirror}: artifact wheelhouse/Markdown-3.4.4-py3-none-any.whl is missing; nothing was changed"),
    ("image", "hpcllm_bundle {mirror}: artifact packages/compute is missing: the bundle carries OS packages, but not for these images"),
    ("outside", "hpcllm_bundle {mirror}: it must lie inside the shared folder chroot_prep_opt_path"),
])
def test_site_refuses_a_bundle_it_cannot_use(ansible_playbook, inventory, tmp_path, exported, breakage, message):
    dummy, dest, dummy2 = exported
    opt = tmp_path / "opt"
    opt.mkdir()
    mirror = opt / "hpcllm-mirror"
    assert _import(ansible_playbook, inventory, dest, mirror).rc == 0
    variables = {"hpcllm_bundle": str(mirror), "chroot_prep_opt_path": str(opt), "chroot_prep_images": [{"name": "deb"}]}
    if breakage == "relative":
        variables["hpcllm_bundle"] = "opt/hpcllm-mirror"
    elif breakage == "verify":
        variables["hpcllm_bundle_verify"] = "md5"
    elif breakage == "wheel":
        (mirror / "wheelhouse" / "Markdown-3.4.4-py3-none-any.whl").unlink()
    elif breakage == "image":
        variables["chroot_prep_images"] = [{"name": "deb"}, {"name": "compute"}]
    else:
        variables["chroot_prep_opt_path"] = str(tmp_path / "elsewhere")
    run = ansible_playbook(SITE_BUNDLE, variables)
    assert run.rc != 0
    assert message.format(mirror=mirror) in run.stdout, run.stdout
    assert "Take every source from the bundle" not in run.stdout


def test_export_refuses_a_package_folder_and_image_collection_together(ansible_playbook, inventory, tmp_path):
    """bundle_os_packages and the default bundle_image_packages both fill packages/: refused before anything is mounted."""
    run = ansible_playbook(EXPORT, {"bundle_dest": str(tmp_path / "b.tar"), "bundle_os_packages": str(tmp_path)}, inventory=inventory)
    assert run.rc != 0
    assert "bundle_os_packages needs bundle_image_packages: false (both fill packages/)" in run.stdout, run.stdout
    assert "Mount and add the images" not in run.stdout and not (tmp_path / "b.tar").exists()
