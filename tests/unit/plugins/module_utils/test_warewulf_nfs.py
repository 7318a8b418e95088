"""Table-driven tests of module_utils._warewulf_nfs on recorded warewulf.conf / nodes.conf /
overlay fstab variants of Warewulf 4.4, 4.5 and 4.6: the analysis, the line edits, the
instructions, and the module logic against a scripted wwctl."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf_nfs import (
    NfsNotReady,
    WarewulfNfs,
    analyse,
    fstab_line_mounts,
    fstab_mounts,
    load_yaml,
    nodes_conf_sources,
    overlay_sources,
    plan_change,
)
from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf import WarewulfError

FIXTURES = Path(__file__).parent / "fixtures" / "warewulf_nfs"
CONF = "/etc/warewulf/warewulf.conf"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def data(name: str) -> dict:
    return yaml.safe_load(text(name))


# ---------------------------------------------------------------------------------------
# Analysis of warewulf.conf (+ other sources)


@pytest.mark.parametrize(
    "conf, is_46, nodes, overlays, exported, mounted_by",
    [
        ("warewulf-4.5-default.conf", False, [], [], True, []),
        ("warewulf-4.4-default.conf", False, [], [], True, []),
        ("warewulf-4.5-no-opt.conf", False, [], [], False, []),
        ("warewulf-4.5-nfs-disabled.conf", False, [], [], False, []),  # mount: true, but nfs is off
        ("warewulf-4.5-mount-true.conf", False, [], [], True, [CONF]),
        ("warewulf-4.5-no-nfs.conf", False, [], [], False, []),
        ("warewulf-4.5-default.conf", False, [], ["/ov/site/rootfs/etc/fstab.ww"], True, ["/ov/site/rootfs/etc/fstab.ww"]),
        ("warewulf-4.5-mount-true.conf", True, [], [], True, []),  # 4.6 ignores mount keys
        ("warewulf-4.6-default.conf", True, [], [], True, []),
        ("warewulf-4.6-default.conf", True, ["profile:gpu"], [], True, ["profile:gpu"]),
        ("warewulf-4.6-no-opt.conf", True, ["profile:gpu"], [], False, ["profile:gpu"]),
    ],
    ids=["4.5-default", "4.4-default", "4.5-no-opt", "4.5-nfs-disabled", "4.5-mount-true", "4.5-no-nfs",
         "4.5-overlay", "4.6-ignores-mount-key", "4.6-default", "4.6-profile", "4.6-profile-not-exported"],
)
def test_analyse(conf, is_46, nodes, overlays, exported, mounted_by):
    result = analyse(data(conf), "/opt", is_46, CONF, overlays=overlays, nodes=nodes)
    assert result["exported"] is exported
    assert result["mounted_by"] == mounted_by
    assert result["mounted"] is (exported and bool(mounted_by))


def test_mount_key_absent_means_mounted_on_45():
    """Warewulf 4.5's NFSExportConf defaults mount to true: /home without a mount key is mounted."""
    assert analyse(data("warewulf-4.5-mount-true.conf"), "/home", False, CONF)["mounted_by"] == [CONF]


def test_trailing_slash_in_conf_matches():
    conf = data("warewulf-4.5-nfs-disabled.conf")
    conf["nfs"]["enabled"] = True
    assert analyse(conf, "/opt", False, CONF)["mounted"] is True


# ---------------------------------------------------------------------------------------
# fstab lines, overlays, nodes.conf


@pytest.mark.parametrize(
    "line, mounts",
    [
        ("10.0.0.1:/opt /opt nfs defaults 0 0", True),
        ("master:/opt/ /opt nfs4 ro", True),
        ("{{ .Ipaddr }}:/opt /opt nfs defaults 0 0", True),  # fstab.ww template
        ("{{ $IP }}:/opt /opt nfs", True),
        ("[fd00::1]:/opt /opt nfs defaults 0 0", True),
        ("10.0.0.1:/opt /opt nfs noauto,x-systemd.automount 0 0", True),
        ("10.0.0.1:/opt /opt nfs noauto,ro 0 0", False),
        ("10.0.0.1:/opt /srv/opt nfs defaults 0 0", False),
        ("10.0.0.1:/srv /opt nfs defaults 0 0", False),
        ("10.0.0.1:/opt /opt ext4 defaults 0 0", False),
        ("/dev/sda1 /opt nfs defaults 0 0", False),
        ("# 10.0.0.1:/opt /opt nfs defaults 0 0", False),
        ("{{- if .Nfs.Enabled }}", False),
        ("", False),
    ],
)
def test_fstab_line(line, mounts):
    assert fstab_line_mounts(line, "/opt") is mounts


def test_fstab_files():
    assert fstab_mounts(text("fstab-site.ww"), "/opt") is True
    assert fstab_mounts(text("fstab-noauto"), "/opt") is False


def test_overlay_sources(tmp_path):
    overlays = tmp_path / "overlays"
    for overlay, rel, source in [("site", "rootfs/etc/fstab.ww", "fstab-site.ww"), ("other", "rootfs/etc/fstab", "fstab-noauto"),
                                 ("old", "etc/fstab", "fstab-site.ww")]:
        target = overlays / overlay / rel
        target.parent.mkdir(parents=True)
        shutil.copy(FIXTURES / source, target)
    (overlays / "empty").mkdir()
    assert overlay_sources(str(overlays), "/opt") == [str(overlays / "old/etc/fstab"), str(overlays / "site/rootfs/etc/fstab.ww")]
    assert overlay_sources(str(tmp_path / "missing"), "/opt") == []


@pytest.mark.parametrize(
    "nodes, sources",
    [
        ("nodes-4.6-default.conf", []),  # /opt is noauto in the 4.6 default profile
        ("nodes-4.6-opt.conf", ["profile:gpu", "node:n2"]),
        ("nodes-4.6-none.conf", []),
    ],
)
def test_nodes_conf_sources(nodes, sources):
    assert nodes_conf_sources(data(nodes), "/opt") == sources


def test_nodes_conf_home_is_mounted_by_default_profile():
    assert nodes_conf_sources(data("nodes-4.6-default.conf"), "/home") == ["profile:default"]


# ---------------------------------------------------------------------------------------
# Parse errors name the file and the option


@pytest.mark.parametrize(
    "content, message",
    [
        (text("warewulf-broken.conf"), "cannot parse /x/warewulf.conf (option conf): while parsing a flow sequence"),
        ("- a\n- b\n", "cannot parse /x/warewulf.conf (option conf): the file is not a YAML mapping"),
    ],
)
def test_load_yaml_errors(content, message):
    with pytest.raises(WarewulfError) as err:
        load_yaml(content, "/x/warewulf.conf", "conf")
    assert err.value.msg.startswith(message)


def test_empty_file_is_an_empty_mapping():
    assert load_yaml("", "/x", "conf") == {}


# ---------------------------------------------------------------------------------------
# Changes: line edits that keep comments, verified; rewrite only when needed


@pytest.mark.parametrize(
    "conf, is_46, mount, method, expect_lines",
    [
        ("warewulf-4.5-default.conf", False, True, "lines", ["    mount: true # site: not yet"]),
        ("warewulf-4.4-default.conf", False, True, "lines", ["      mount: true"]),
        ("warewulf-4.5-no-opt.conf", False, True, "lines",
         ["  - path: /opt\n    export options: ro,sync,no_root_squash\n    mount options: defaults\n    mount: true\n  systemd name: nfs-server"]),
        ("warewulf-4.5-no-opt.conf", False, False, "lines",
         ["  - path: /opt\n    export options: ro,sync,no_root_squash\n    mount options: defaults\n    mount: false\n"]),
        ("warewulf-4.5-nfs-disabled.conf", False, True, "lines", ["  enabled: true"]),
        ("warewulf-4.5-no-nfs.conf", False, True, "lines", ["network: 10.0.0.0\nnfs:\n  enabled: true\n  export paths:\n  - path: /opt\n"]),
        ("warewulf-4.5-flow.conf", False, True, "rewrite", ["- path: /opt"]),
        ("warewulf-4.6-no-opt.conf", True, True, "lines",
         ["  - path: /opt\n    export options: ro,sync,no_root_squash\n  systemd name: nfs-server"]),
        ("warewulf-4.6-default.conf", True, True, "none", []),
        ("warewulf-4.5-mount-true.conf", False, True, "none", []),
    ],
    ids=["4.5-mount-false", "4.4-indented", "4.5-add-entry", "4.5-add-entry-no-mount", "4.5-enable", "4.5-add-section",
         "flow-rewrite", "4.6-add-export", "4.6-nothing", "4.5-nothing"],
)
def test_plan_change(conf, is_46, mount, method, expect_lines):
    before = text(conf)
    after, how = plan_change(before, yaml.safe_load(before), "/opt", is_46, mount, "ro,sync,no_root_squash", "defaults")
    assert how == method
    for snippet in expect_lines:
        assert snippet in after
    parsed = yaml.safe_load(after)
    result = analyse(parsed, "/opt", is_46, CONF)
    assert result["exported"] is True
    if not is_46:
        assert bool(result["mounted_by"]) is mount or how == "none"
    if how == "lines":
        # every comment and every other line stays
        for line in before.splitlines():
            if "mount: false" in line or "enabled: false" in line:
                continue
            assert line in after.splitlines()
        assert len(after.splitlines()) >= len(before.splitlines())
    if how == "none":
        assert after == before
    # the rest of the configuration is untouched
    old = yaml.safe_load(before)
    for key in old:
        if key != "nfs":
            assert parsed[key] == old[key]


def test_plan_change_only_touches_the_opt_entry():
    before = text("warewulf-4.5-default.conf")
    after, dummy = plan_change(before, yaml.safe_load(before), "/opt", False, True, "ro", "defaults")
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [("    mount: false # site: not yet", "    mount: true # site: not yet")]


# ---------------------------------------------------------------------------------------
# Module logic against a scripted wwctl


class FakeModule:
    def __init__(self, params, version="4.5.8", check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.version = version
        self.calls = []
        self.backups = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/bin/" + name

    def run_command(self, cmd, environ_update=None, **kwargs):
        # through community.general's CmdRunner: an argument list, never localized
        assert environ_update["LC_ALL"] == environ_update["LANG"] == "C" and isinstance(cmd, list)
        self.calls.append(cmd[1:])
        if cmd[1:] == ["version"]:
            return 0, "wwctl version:\t {0}-1.el9\n".format(self.version), ""
        return 0, "", ""

    def backup_local(self, path):
        backup = path + ".bak~"
        shutil.copy2(path, backup)
        self.backups.append(backup)
        return backup

    @staticmethod
    def atomic_move(src, dest, unsafe_writes=False):
        mode = os.stat(dest).st_mode if os.path.exists(dest) else None
        os.rename(src, dest)
        if mode is not None:
            os.chmod(dest, mode)


def params(tmp_path, conf_fixture, **extra):
    conf = tmp_path / "warewulf.conf"
    if conf_fixture:
        shutil.copy(FIXTURES / conf_fixture, conf)
        conf.chmod(0o640)
    values = dict(path="/opt", state="checked", conf=str(conf), nodes_conf=str(tmp_path / "nodes.conf"),
                  overlays_dir=str(tmp_path / "overlays"), export_options="ro,sync,no_root_squash",
                  mount_options="defaults", configure=False, overlay_build=False, backup=True)
    values.update(extra)
    return values


def test_checked_fails_with_instructions_45(tmp_path):
    module = FakeModule(params(tmp_path, "warewulf-4.5-default.conf"))
    with pytest.raises(NfsNotReady) as err:
        WarewulfNfs(module).run()
    msg = err.value.msg
    assert msg.startswith("The master folder /opt is not mounted on the nodes (Warewulf 4.5.8-1.el9")
    assert "change `mount: false` to `mount: true` in the `- path: /opt` entry" in msg
    assert "wwctl configure nfs && wwctl overlay build" in msg
    assert "10.0.0.1:/opt /opt nfs defaults 0 0" in msg  # the fstab overlay alternative, with the master's ipaddr
    assert err.value.result["exported"] is True and err.value.result["mounted"] is False
    assert module.calls == [["version"]]


def test_checked_fails_with_instructions_missing_export(tmp_path):
    module = FakeModule(params(tmp_path, "warewulf-4.5-nfs-disabled.conf"))
    with pytest.raises(NfsNotReady) as err:
        WarewulfNfs(module).run()
    msg = err.value.msg
    assert "is not exported over NFS and not mounted on the nodes" in msg
    assert "set `enabled: true` under `nfs:`" in msg


def test_checked_46_names_the_profile_resource(tmp_path):
    shutil.copy(FIXTURES / "nodes-4.6-default.conf", tmp_path / "nodes.conf")
    module = FakeModule(params(tmp_path, "warewulf-4.6-default.conf"), version="4.6.0")
    with pytest.raises(NfsNotReady) as err:
        WarewulfNfs(module).run()
    assert "wwctl profile edit default" in err.value.msg
    assert "- spec: warewulf:/opt" in err.value.msg
    assert "mount: true" not in err.value.msg


@pytest.mark.parametrize(
    "version, conf, nodes, overlay, mounted_by",
    [
        ("4.5.8", "warewulf-4.5-mount-true.conf", None, False, ["warewulf.conf"]),
        ("4.5.8", "warewulf-4.5-default.conf", None, True, ["overlays/site/rootfs/etc/fstab.ww"]),
        ("4.6.0", "warewulf-4.6-default.conf", "nodes-4.6-opt.conf", False, ["profile:gpu", "node:n2"]),
        ("4.4.1", "warewulf-4.4-default.conf", None, True, ["overlays/site/rootfs/etc/fstab.ww"]),
    ],
)
def test_checked_passes(tmp_path, version, conf, nodes, overlay, mounted_by):
    if nodes:
        shutil.copy(FIXTURES / nodes, tmp_path / "nodes.conf")
    if overlay:
        target = tmp_path / "overlays" / "site" / "rootfs" / "etc" / "fstab.ww"
        target.parent.mkdir(parents=True)
        shutil.copy(FIXTURES / "fstab-site.ww", target)
    result = WarewulfNfs(FakeModule(params(tmp_path, conf), version=version)).run()
    assert result["changed"] is False and result["exported"] and result["mounted"]
    assert result["mounted_by"] == [m if m.startswith(("profile:", "node:")) else str(tmp_path / m) for m in mounted_by]


def test_present_writes_keeps_mode_backs_up_and_configures(tmp_path):
    module = FakeModule(params(tmp_path, "warewulf-4.5-default.conf", state="present", configure=True))
    result = WarewulfNfs(module).run()
    conf = tmp_path / "warewulf.conf"
    assert result["changed"] is True and result["method"] == "lines"
    assert result["mounted_by"] == [str(conf)]
    assert result["actions"] == [f"set mount: true for export /opt in {conf}", "wwctl configure nfs"]
    assert "mount: true # site: not yet" in conf.read_text()
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    assert module.backups and "mount: false # site: not yet" in Path(module.backups[0]).read_text()
    assert result["diff"]["before"] != result["diff"]["after"] == conf.read_text()
    assert ["configure", "nfs"] in module.calls
    # a second run changes nothing and runs no wwctl step
    module2 = FakeModule(params(tmp_path, None, state="present", configure=True))
    again = WarewulfNfs(module2).run()
    assert again["changed"] is False and again["actions"] == [] and module2.calls == [["version"]]


def test_present_check_mode_writes_nothing(tmp_path):
    module = FakeModule(params(tmp_path, "warewulf-4.5-no-opt.conf", state="present", configure=True), check_mode=True)
    before = (tmp_path / "warewulf.conf").read_text()
    result = WarewulfNfs(module).run()
    assert result["changed"] is True and result["mounted"] is True
    assert result["actions"][-1] == "wwctl configure nfs"
    assert "- path: /opt" in result["diff"]["after"]
    assert (tmp_path / "warewulf.conf").read_text() == before
    assert module.calls == [["version"]] and module.backups == []
    assert sorted(os.listdir(tmp_path)) == ["warewulf.conf"]  # no temporary file left


def test_present_with_overlay_mount_adds_export_without_mount(tmp_path):
    target = tmp_path / "overlays" / "site" / "rootfs" / "etc" / "fstab.ww"
    target.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "fstab-site.ww", target)
    module = FakeModule(params(tmp_path, "warewulf-4.5-no-opt.conf", state="present"))
    result = WarewulfNfs(module).run()
    assert result["changed"] is True
    assert "add export /opt (mount: false)" in result["actions"][0]
    assert result["mounted_by"] == [str(target)]
    assert find_opt(tmp_path)["mount"] is False


def find_opt(tmp_path):
    conf = yaml.safe_load((tmp_path / "warewulf.conf").read_text())
    return [entry for entry in conf["nfs"]["export paths"] if entry["path"] == "/opt"][0]


def test_present_46_adds_export_then_fails_naming_the_profile(tmp_path):
    shutil.copy(FIXTURES / "nodes-4.6-none.conf", tmp_path / "nodes.conf")
    module = FakeModule(params(tmp_path, "warewulf-4.6-no-opt.conf", state="present"), version="4.6.0")
    with pytest.raises(NfsNotReady) as err:
        WarewulfNfs(module).run()
    assert err.value.msg.startswith("The master folder /opt is now exported but not mounted on the nodes (Warewulf 4.6.0")
    assert "wwctl profile edit default" in err.value.msg
    assert err.value.result["changed"] is True
    assert find_opt(tmp_path) == {"path": "/opt", "export options": "ro,sync,no_root_squash"}


def test_present_flow_style_rewrites_and_warns(tmp_path):
    module = FakeModule(params(tmp_path, "warewulf-4.5-flow.conf", state="present"))
    logic = WarewulfNfs(module)
    result = logic.run()
    assert result["method"] == "rewrite"
    assert "comments and layout are gone" in logic.warnings[0] and "the backup keeps them" in logic.warnings[0]
    assert find_opt(tmp_path)["mount"] is True


@pytest.mark.parametrize(
    "extra, fixture, message",
    [
        ({}, None, "/warewulf.conf does not exist (option conf)"),
        ({}, "warewulf-broken.conf", "/warewulf.conf (option conf): while parsing a flow sequence"),
        ({"path": "opt"}, "warewulf-4.5-default.conf", "path must be an absolute path (got 'opt')"),
        ({"path": ""}, "warewulf-4.5-default.conf", "path must be an absolute path (got '')"),
    ],
    ids=["missing", "unparsable", "relative-path", "empty-path"],
)
def test_errors(tmp_path, extra, fixture, message):
    module = FakeModule(params(tmp_path, fixture, **extra))
    with pytest.raises(WarewulfError) as err:
        WarewulfNfs(module).run()
    assert message in err.value.msg
    assert not isinstance(err.value, NfsNotReady)


def test_unparsable_nodes_conf_names_option(tmp_path):
    (tmp_path / "nodes.conf").write_text("nodeprofiles: [\n")
    module = FakeModule(params(tmp_path, "warewulf-4.6-default.conf"), version="4.6.0")
    with pytest.raises(WarewulfError) as err:
        WarewulfNfs(module).run()
    assert f"cannot parse {tmp_path}/nodes.conf (option nodes_conf)" in err.value.msg


def test_not_ready_result_carries_the_facts(tmp_path):
    module = FakeModule(params(tmp_path, "warewulf-4.5-no-opt.conf"))
    with pytest.raises(NfsNotReady) as err:
        WarewulfNfs(module).run()
    failed = err.value.as_result()
    assert failed["msg"] == err.value.msg
    assert failed["exported"] is False and failed["mounted"] is False and failed["changed"] is False
    assert failed["instructions"][0] == f"In {tmp_path}/warewulf.conf, add to `nfs: export paths:`:"
