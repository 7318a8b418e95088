"""warewulf_nfs (and chroot_prep's NFS step) through ansible-playbook against the wwctl test
double, for Warewulf 4.4, 4.5 and 4.6 (tests/wwctl/wwctl), on warewulf.conf files in a temp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ww_fixtures import PLAYBOOKS, VERSIONS, WarewulfDouble

CONF_FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "plugins" / "module_utils" / "fixtures" / "warewulf_nfs"
DEFAULT_CONF = {"4.4.1": "warewulf-4.4-default.conf", "4.5.8": "warewulf-4.5-default.conf", "4.6.0": "warewulf-4.6-no-opt.conf"}


@pytest.fixture(params=VERSIONS)
def ww(request, tmp_path) -> WarewulfDouble:
    return WarewulfDouble(request.param, tmp_path / "wwstate")


def _setup(tmp_path: Path, ww: WarewulfDouble, conf_fixture: str | None = None, nodes_fixture: str | None = None) -> dict:
    etc = tmp_path / "etc-warewulf"
    etc.mkdir()
    conf = etc / "warewulf.conf"
    shutil.copy(CONF_FIXTURES / (conf_fixture or DEFAULT_CONF[ww.version]), conf)
    conf.chmod(0o600)
    if nodes_fixture:
        shutil.copy(CONF_FIXTURES / nodes_fixture, etc / "nodes.conf")
    return {"ww_conf": str(conf), "ww_nodes_conf": str(etc / "nodes.conf"), "ww_overlays_dir": str(tmp_path / "overlays")}


def _opt(conf: str) -> dict:
    data = yaml.safe_load(Path(conf).read_text())
    return [entry for entry in data["nfs"]["export paths"] if entry["path"] == "/opt"][0]


def test_check_fails_with_instructions(ansible_playbook, ww, tmp_path):
    extra = _setup(tmp_path, ww, nodes_fixture="nodes-4.6-default.conf")
    before = Path(extra["ww_conf"]).read_text()
    run = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    assert run.rc != 0
    result = run.results("NFS")
    assert result["failed"] is True and result["changed"] is False
    assert result["version"].startswith(ww.version)
    msg = result["msg"]
    if ww.version.startswith("4.6"):
        assert msg.startswith("The master folder /opt is not exported over NFS and not mounted on the nodes (Warewulf 4.6.0")
        assert "add to `nfs: export paths:`" in msg and "wwctl profile edit default" in msg
        assert "- spec: warewulf:/opt" in msg
    else:
        assert msg.startswith(f"The master folder /opt is not mounted on the nodes (Warewulf {ww.version}")
        assert "change `mount: false` to `mount: true`" in msg
    assert "Then run: wwctl configure nfs && wwctl overlay build" in msg
    assert ":/opt /opt nfs defaults 0 0" in msg  # the fstab overlay alternative
    assert Path(extra["ww_conf"]).read_text() == before
    assert ww.calls() == [["version"]]


@pytest.mark.parametrize("version", ["4.4.1", "4.5.8"])
def test_present_changes_then_nothing_configure_only_on_change(ansible_playbook, tmp_path, version):
    ww = WarewulfDouble(version, tmp_path / "wwstate")
    extra = _setup(tmp_path, ww)
    extra.update(ww_state="present", ww_configure=True)
    conf = Path(extra["ww_conf"])

    check = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env, check=True, diff=True)
    assert check.rc == 0, check.stdout
    predicted = check.results("NFS")
    assert predicted["changed"] is True and predicted["mounted"] is True
    assert predicted["actions"] == [f"set mount: true for export /opt in {conf}", "wwctl configure nfs"]
    assert _opt(str(conf))["mount"] is False  # nothing written in check mode
    assert sorted(p.name for p in conf.parent.iterdir()) == ["warewulf.conf"]
    assert ["configure", "nfs"] not in ww.calls()

    first = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    assert first.rc == 0, first.stdout
    done = first.results("NFS")
    assert done["changed"] is True and done["method"] == "lines" and done["mounted_by"] == [str(conf)]
    assert _opt(str(conf))["mount"] is True
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    assert Path(done["backup_file"]).read_text() == done["diff"]["before"]
    assert "# Recorded shape" in conf.read_text()  # comments kept
    assert ww.calls().count(["configure", "nfs"]) == 1

    mark = ww.mark()
    second = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    assert second.rc == 0 and second.changed() == 0, second.stdout
    assert second.results("NFS")["actions"] == []
    assert ww.calls()[mark:] == [["version"]]
    assert ww.call_langs() == {"C"}


def test_present_without_configure_runs_no_wwctl_step(ansible_playbook, tmp_path):
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    extra = _setup(tmp_path, ww, conf_fixture="warewulf-4.5-no-opt.conf")
    extra.update(ww_state="present", ww_backup=False)
    run = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    assert run.rc == 0, run.stdout
    result = run.results("NFS")
    assert result["changed"] is True and result["backup_file"] is None
    assert _opt(extra["ww_conf"]) == {"path": "/opt", "export options": "ro,sync,no_root_squash", "mount options": "defaults", "mount": True}
    assert ww.calls() == [["version"]]


def test_present_46_adds_export_and_fails_naming_the_profile(ansible_playbook, tmp_path):
    ww = WarewulfDouble("4.6.0", tmp_path / "wwstate")
    extra = _setup(tmp_path, ww, nodes_fixture="nodes-4.6-none.conf")
    extra.update(ww_state="present", ww_configure=True)
    run = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    result = run.results("NFS")
    assert result["failed"] is True and result["changed"] is True
    assert "now exported but not mounted on the nodes" in result["msg"] and "wwctl profile edit default" in result["msg"]
    assert _opt(extra["ww_conf"]) == {"path": "/opt", "export options": "ro,sync,no_root_squash"}
    assert ["configure", "nfs"] in ww.calls()  # the export changed: /etc/exports must follow
    # once a profile mounts it, the check passes and nothing more changes
    shutil.copy(CONF_FIXTURES / "nodes-4.6-opt.conf", extra["ww_nodes_conf"])
    mark = ww.mark()
    again = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    assert again.rc == 0 and again.changed() == 0, again.stdout
    assert again.results("NFS")["mounted_by"] == ["profile:gpu", "node:n2"]
    assert ww.calls()[mark:] == [["version"]]


def test_overlay_fstab_counts(ansible_playbook, ww, tmp_path):
    extra = _setup(tmp_path, ww, conf_fixture="warewulf-4.6-default.conf" if ww.version.startswith("4.6") else None)
    target = Path(extra["ww_overlays_dir"]) / "site" / "rootfs" / "etc" / "fstab.ww"
    target.parent.mkdir(parents=True)
    shutil.copy(CONF_FIXTURES / "fstab-site.ww", target)
    run = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    assert run.rc == 0, run.stdout
    assert run.results("NFS")["mounted_by"] == [str(target)]


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "warewulf.conf does not exist (option conf)"),
        ("unparsable", "warewulf.conf (option conf): while parsing a flow sequence"),
        ("relative", "path must be an absolute path (got 'opt')"),
    ],
)
def test_errors_name_the_option(ansible_playbook, tmp_path, case, message):
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    extra = _setup(tmp_path, ww, conf_fixture="warewulf-broken.conf" if case == "unparsable" else None)
    if case == "missing":
        Path(extra["ww_conf"]).unlink()
    if case == "relative":
        extra["ww_path"] = "opt"
    run = ansible_playbook(PLAYBOOKS / "nfs.yml", extra, env=ww.env)
    result = run.results("NFS")
    assert result["failed"] is True and message in result["msg"]


def _role_vars(extra: dict, **more) -> dict:
    data = {"chroot_prep_nfs_conf": extra["ww_conf"], "chroot_prep_nfs_nodes_conf": extra["ww_nodes_conf"],
            "chroot_prep_nfs_overlays_dir": extra["ww_overlays_dir"]}
    data.update(more)
    return data


def test_role_skips_without_warewulf_conf(ansible_playbook, tmp_path):
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    extra = _setup(tmp_path, ww)
    Path(extra["ww_conf"]).unlink()
    run = ansible_playbook(PLAYBOOKS / "nfs_role.yml", _role_vars(extra), env=ww.env)
    assert run.rc == 0, run.stdout
    said = run.results("hpcllm.webui.chroot_prep : Say why the NFS check is skipped")["msg"]
    assert f"NFS check of /opt skipped: no {extra['ww_conf']}" in said
    assert run.results("hpcllm.webui.chroot_prep : Check that Warewulf exports the master's folder and mounts it on the nodes").get("skipped") is True
    assert ww.calls() == []


def test_role_checks_and_manages(ansible_playbook, tmp_path):
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    extra = _setup(tmp_path, ww)
    task = "hpcllm.webui.chroot_prep : Check that Warewulf exports the master's folder and mounts it on the nodes"
    failed = ansible_playbook(PLAYBOOKS / "nfs_role.yml", _role_vars(extra), env=ww.env)
    assert failed.rc != 0 and "change `mount: false` to `mount: true`" in failed.results(task)["msg"]
    managed = _role_vars(extra, chroot_prep_nfs_manage=True, chroot_prep_nfs_configure=True)
    check = ansible_playbook(PLAYBOOKS / "nfs_role.yml", managed, env=ww.env, check=True)
    assert check.rc == 0 and check.results(task)["changed"] is True, check.stdout
    assert _opt(extra["ww_conf"])["mount"] is False
    first = ansible_playbook(PLAYBOOKS / "nfs_role.yml", managed, env=ww.env)
    assert first.rc == 0 and first.changed() == 1, first.stdout
    assert "mounted on the nodes by " + extra["ww_conf"] in first.results("hpcllm.webui.chroot_prep : Say where the nodes' mount comes from")["msg"]
    second = ansible_playbook(PLAYBOOKS / "nfs_role.yml", managed, env=ww.env)
    assert second.rc == 0 and second.changed() == 0, second.stdout
    assert ww.calls().count(["configure", "nfs"]) == 1
