"""InstallTree on real trees (root runs the tests, as CI does): what is trusted, what the record
accepts, what a planted or changed file looks like, what `owned` sets, links never followed."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._install_tree import (
    InstallTree,
    InstallTreeError,
    ancestors_offending,
)

OTHER = 4242  # an account that is not root (need not exist)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")


def tree(tmp_path):
    root = tmp_path / "webui_llama2"
    (root / "venv/lib/python3.11/site-packages").mkdir(parents=True)
    (root / "venv/bin").mkdir()
    (root / "venv/bin/python").write_text("#!/bin/sh\n")
    (root / "venv/bin/python").chmod(0o700)
    (root / "text-generation-webui/.git").mkdir(parents=True)
    (root / "text-generation-webui/.git/config").write_text("[core]\n")
    (root / "text-generation-webui/.git/config").chmod(0o600)
    (root / "run_wizard.sh").write_text("#!/bin/sh\n")
    (root / "run_wizard.sh").chmod(0o755)
    os.symlink("/etc/shadow", root / "shadow-link")
    return root


def plant(path, uid=OTHER, text="import os\n"):
    path.write_text(text)
    os.chown(path, uid, uid)


def test_a_root_tree_is_trusted_without_a_record(tmp_path):
    root = tree(tmp_path)
    assert InstallTree(str(root)).check()["offenders"] == []


def test_a_missing_root_is_nothing_to_check_or_own(tmp_path):
    assert InstallTree(str(tmp_path / "none")).check()["changed"] is False
    assert InstallTree(str(tmp_path / "none")).own() == {
        "changed": False, "root": str(tmp_path / "none"), "offenders": [], "actions": []}


def test_a_planted_file_of_another_account_is_refused_naming_it(tmp_path):
    root = tree(tmp_path)
    pth = root / "venv/lib/python3.11/site-packages/zz.pth"
    plant(pth)
    with pytest.raises(InstallTreeError) as exc:
        InstallTree(str(root)).check()
    assert f"{pth} (owner 4242, mode 0644: no record of the last run)" in exc.value.msg
    assert "nothing was run in it" in exc.value.msg
    assert f"chown -R -h root:root {root}" in exc.value.msg
    assert len(exc.value.offenders) == 1


@pytest.mark.parametrize(("mode", "gid"), [(0o664, OTHER), (0o646, 0)])
def test_a_root_file_others_can_write_is_refused(tmp_path, mode, gid):
    root = tree(tmp_path)
    (root / "run_wizard.sh").chmod(mode)
    os.chown(root / "run_wizard.sh", 0, gid)
    with pytest.raises(InstallTreeError) as exc:
        InstallTree(str(root)).check()
    assert exc.value.offenders == [f"{root}/run_wizard.sh (owner root, mode {mode:04o}: no record of the last run)"]


def test_group_write_for_roots_own_group_is_roots_alone(tmp_path):
    root = tree(tmp_path)
    (root / "run_wizard.sh").chmod(0o775)
    InstallTree(str(root)).check()


def test_at_most_ten_are_named_and_the_rest_counted(tmp_path):
    root = tree(tmp_path)
    for i in range(12):
        plant(root / f"planted{i:02d}")
    with pytest.raises(InstallTreeError) as exc:
        InstallTree(str(root)).check()
    assert len(exc.value.offenders) == 12
    assert "planted09" in exc.value.msg and "planted10" not in exc.value.msg
    assert "(and 2 more)" in exc.value.msg


def test_owned_by_root_sets_modes_and_leaves_no_record(tmp_path):
    root = tree(tmp_path)
    (root / "run_wizard.sh").chmod(0o775)
    os.chown(root / "run_wizard.sh", OTHER, OTHER)
    (root / "venv").chmod(0o700)
    # a tree with a foreign file is refused first; an admin who checked it gives it back
    with pytest.raises(InstallTreeError):
        InstallTree(str(root)).own()
    os.chown(root / "run_wizard.sh", 0, 0)
    result = InstallTree(str(root)).own()
    assert result["changed"] is True
    assert result["actions"] == [f"set the modes of 4 entries of {root} (no write for group and others, readable by all)"]
    assert stat.S_IMODE((root / "run_wizard.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "venv").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "venv/bin/python").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "text-generation-webui/.git/config").stat().st_mode) == 0o644
    assert not (root / ".hpcllm/tree.json").exists()
    assert stat.S_IMODE((root / ".hpcllm").stat().st_mode) == 0o700
    # the link's target was never touched
    assert stat.S_IMODE(os.stat("/etc/shadow").st_mode) in (0o640, 0o600, 0o000)
    assert InstallTree(str(root)).own()["changed"] is False


def test_owned_for_a_group_only(tmp_path):
    root = tree(tmp_path)
    (root / "run_wizard.sh").chmod(0o757)
    result = InstallTree(str(root), group_gid=OTHER, world_readable=False).own()
    assert result["changed"] is True
    st = (root / "run_wizard.sh").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, OTHER, 0o750)
    assert stat.S_IMODE((root / "text-generation-webui/.git/config").stat().st_mode) == 0o640
    assert os.lstat(root / "shadow-link").st_gid == OTHER
    # the group never writes: root's entries stay trusted, no record needed
    InstallTree(str(root)).check()
    assert not (root / ".hpcllm/tree.json").exists()


def test_check_mode_reports_and_changes_nothing(tmp_path):
    root = tree(tmp_path)
    before = {p: (p.lstat().st_uid, p.lstat().st_mode) for p in root.rglob("*")}
    result = InstallTree(str(root), owner_uid=OTHER, group_gid=OTHER, check_mode=True).own()
    assert result["changed"] is True
    assert result["actions"][0] == f"give 12 entries of {root} to uid 4242, gid 4242"
    assert {p: (p.lstat().st_uid, p.lstat().st_mode) for p in root.rglob("*")} == before
    assert not (root / ".hpcllm").exists()


def seed_mode(tmp_path):
    """The seed's choice: the tree handed to the run user, recorded."""
    root = tree(tmp_path)
    result = InstallTree(str(root), owner_uid=OTHER, group_gid=OTHER).own()
    assert result["changed"] is True
    return root


def test_a_handed_over_tree_passes_while_unchanged(tmp_path):
    root = seed_mode(tmp_path)
    assert os.lstat(root / "shadow-link").st_uid == OTHER
    record = root / ".hpcllm/tree.json"
    st = record.lstat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert len(json.loads(record.read_text())["entries"]) == 12  # the root and its 11 entries
    InstallTree(str(root)).check()
    # a second pass changes nothing and keeps the tree acceptable
    assert InstallTree(str(root), owner_uid=OTHER, group_gid=OTHER).own()["changed"] is False
    InstallTree(str(root)).check()


@pytest.mark.parametrize("how", ["pth", "fsmonitor", "launcher", "hook"])
def test_what_the_run_user_plants_after_the_handover_is_refused(tmp_path, how):
    root = seed_mode(tmp_path)
    if how == "pth":
        target = root / "venv/lib/python3.11/site-packages/zz.pth"
        plant(target)
        why = "not in the record of the last run"
    elif how == "fsmonitor":
        target = root / "text-generation-webui/.git/config"
        with open(target, "a") as handle:
            handle.write("[core]\n\tfsmonitor = /tmp/evil\n")
        why = "changed since the last run"
    elif how == "launcher":
        target = root / "run_wizard.sh"
        tmp = root / "run_wizard.sh.new"
        plant(tmp, text="#!/bin/sh\nid\n")
        os.rename(tmp, target)
        why = "changed since the last run"  # another inode under the recorded name
    else:
        (root / "text-generation-webui/.git/hooks").mkdir()
        os.chown(root / "text-generation-webui/.git/hooks", OTHER, OTHER)
        target = root / "text-generation-webui/.git/hooks"
        why = "not in the record of the last run"
    with pytest.raises(InstallTreeError) as exc:
        InstallTree(str(root)).check()
    assert any(o.startswith(f"{target} (owner 4242") and o.endswith(f"{why})") for o in exc.value.offenders), exc.value.offenders
    # and the owned pass refuses it too: what was planted is never adopted into the record
    with pytest.raises(InstallTreeError):
        InstallTree(str(root), owner_uid=OTHER, group_gid=OTHER).own()


@pytest.mark.parametrize("forge", ["link", "foreign", "writable", "folder"])
def test_a_record_the_run_user_could_write_is_no_record(tmp_path, forge):
    root = seed_mode(tmp_path)
    plant(root / "venv/lib/python3.11/site-packages/zz.pth")
    record = root / ".hpcllm/tree.json"
    # the run user writes a record that would accept the planted file
    forged = InstallTree(str(root))
    entries = {rel: [st.st_ino, st.st_ctime_ns, st.st_uid, stat.S_IMODE(st.st_mode)]
               for rel, st in __import__("ansible_collections.hpcllm.webui.plugins.module_utils._install_tree",
                                         fromlist=["walk"]).walk(str(root))}
    data = json.dumps({"version": 1, "root": forged.root, "entries": entries})
    if forge == "link":
        (tmp_path / "forged.json").write_text(data)
        record.unlink()
        os.symlink(tmp_path / "forged.json", record)
    elif forge == "foreign":
        record.write_text(data)
        os.chown(record, OTHER, OTHER)
    elif forge == "writable":
        record.write_text(data)
        record.chmod(0o666)
    else:
        (root / ".hpcllm").chmod(0o777)
        record.write_text(data)
    with pytest.raises(InstallTreeError) as exc:
        InstallTree(str(root)).check()
    assert any("zz.pth" in o for o in exc.value.offenders)


def test_folders_above_the_root(tmp_path):
    parent = tmp_path / "ai_apps"
    parent.mkdir()
    root = parent / "webui_llama2"
    root.mkdir()
    assert ancestors_offending(str(root)) == []
    parent.chmod(0o777)
    assert ancestors_offending(str(root)) == [
        f"{parent} (owner root, mode 0777: a folder above the install root that another account can change)"]
    parent.chmod(0o1777)  # sticky, as /tmp: others cannot move root's folder
    assert ancestors_offending(str(root)) == []
    parent.chmod(0o755)
    os.chown(parent, OTHER, 0)
    with pytest.raises(InstallTreeError) as exc:
        InstallTree(str(root)).check()
    assert f"{parent} (owner 4242, mode 0755" in exc.value.msg


def test_a_root_that_is_a_link_is_refused(tmp_path):
    real = tree(tmp_path)
    link = tmp_path / "linked"
    os.symlink(real, link)
    with pytest.raises(InstallTreeError) as exc:
        InstallTree(str(link)).check()
    assert f"{link} (not a folder)" in exc.value.msg
