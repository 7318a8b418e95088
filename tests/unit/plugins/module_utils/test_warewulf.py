"""Table-driven tests of module_utils.warewulf: parsers on recorded outputs, argument lists
per version, and the image/kernel logic against a scripted wwctl."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._warewulf import (
    WarewulfCommands,
    WarewulfError,
    WarewulfImage,
    WarewulfInfo,
    WarewulfKernel,
    WarewulfRunner,
    build_skipped,
    error_lines,
    failure_message,
    kernel_import_done,
    parse_image_list,
    parse_kernel_list,
    parse_show,
    parse_version,
)

FIXTURES = Path(__file__).parent / "fixtures" / "warewulf"
V44, V45, V46 = (4, 4, 1), (4, 5, 8), (4, 6, 0)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# ---------------------------------------------------------------------------------------
# wwctl version


@pytest.mark.parametrize(
    "stdout, full, numbers",
    [
        ("wwctl version:\t 4.4.1-1.git_afc8b2b.el8\n", "4.4.1-1.git_afc8b2b.el8", (4, 4, 1)),
        ("wwctl version:\t 4.5.8-1.el9\nrpc version: 4.5.8-1.el9\n", "4.5.8-1.el9", (4, 5, 8)),
        ("wwctl version:\t 4.6.0-1.el9\n", "4.6.0-1.el9", (4, 6, 0)),
        ("wwctl version: v4.6.1-1\n", "4.6.1-1", (4, 6, 1)),
        ("wwctl version:\t 4.6.0rc2-1.el9\n", "4.6.0rc2-1.el9", (4, 6, 0)),
    ],
)
def test_parse_version(stdout, full, numbers):
    assert parse_version(stdout) == (full, numbers)


@pytest.mark.parametrize("stdout", ["", "Error: unknown flag: --version\n", "version 4.5.8\n"])
def test_parse_version_fails(stdout):
    with pytest.raises(WarewulfError, match="could not read the Warewulf version"):
        parse_version(stdout)


# ---------------------------------------------------------------------------------------
# list / show / build / kernel list


@pytest.mark.parametrize(
    "stdout, names",
    [
        (fixture("list-4.4.1.txt"), ["debian-12", "rocky-8"]),
        (fixture("list-4.5.8.txt"), ["debian-12", "rocky-8"]),
        (fixture("list-4.6.0.txt"), ["debian-12", "rocky-8"]),
        ("rocky-8\n", ["rocky-8"]),  # 4.5 without a header
        ("", []),
        ("IMAGE NAME\n", []),
        # 4.4 prints WARN/SERV lines on stdout; separators in some releases
        ("WARN   : could not read image size\nCONTAINER NAME  NODES\n==============\nrocky-8  2  4.18.0  01 Jan 23 10:00 UTC\n", ["rocky-8"]),
        ("[INFO]     listing\nrocky-8\n", ["rocky-8"]),
    ],
    ids=["4.4", "4.5", "4.6", "names-only", "empty", "header-only", "4.4-warn", "verbose-prefix"],
)
def test_parse_image_list(stdout, names):
    assert parse_image_list(stdout) == names


@pytest.mark.parametrize(
    "stdout, path",
    [
        ("/var/lib/warewulf/chroots/rocky-8/rootfs\n", "/var/lib/warewulf/chroots/rocky-8/rootfs"),
        ("WARN   : something\n/srv/chroots/a b/rootfs\n", "/srv/chroots/a b/rootfs"),
    ],
)
def test_parse_show(stdout, path):
    assert parse_show(stdout) == path


def test_parse_show_without_path():
    with pytest.raises(WarewulfError):
        parse_show("ERROR: nope is not a valid container\n")


@pytest.mark.parametrize(
    "stdout, stderr, skipped",
    [
        (fixture("build-skip-4.4.1.txt"), "", True),
        (fixture("build-skip-4.5.8.txt"), "", True),
        (fixture("build-skip-4.6.0.txt"), "", True),
        (fixture("build-4.4.1.txt"), "", False),
        (fixture("build-4.5.8.txt"), "", False),
        (fixture("build-4.6.0.txt"), "", False),
        ("[INFO]     Skipping (VNFS is current)\n", "", True),  # -v prefix
        ("", "Skipping (Image is current)\n", True),
        ("", "", False),  # build with no name: nothing printed, nothing skipped
    ],
)
def test_build_skipped(stdout, stderr, skipped):
    assert build_skipped(stdout, stderr) is skipped


@pytest.mark.parametrize("version", ["4.4.1", "4.5.8"])
def test_parse_kernel_list(version):
    assert parse_kernel_list(fixture(f"kernel-list-{version}.txt")) == [
        {"name": "6.1.0-10-amd64", "version": "6.1.0-10-amd64", "nodes": "0"},
        {"name": "k-rocky", "version": "6.1.0-10-amd64", "nodes": "0"},
    ]


@pytest.mark.parametrize(
    "stdout, name, done",
    [
        ("k1: Done\n", "k1", True),
        ("Setting up\nk1: Finished kernel build\n", "k1", True),
        ("k2: Done\n", "k1", False),
        ("", "k1", False),
    ],
)
def test_kernel_import_done(stdout, name, done):
    assert kernel_import_done(stdout, name) is done


def test_errors_are_reported_once():
    stderr = "ERROR: nope is not a valid container\nERROR: nope is not a valid container\n"
    assert error_lines(stderr) == ["ERROR: nope is not a valid container"]
    msg = failure_message(["/usr/bin/wwctl", "container", "show", "nope"], 255, "", stderr)
    assert msg == "wwctl container show nope failed (rc 255): ERROR: nope is not a valid container"


def test_failure_message_without_error_lines():
    msg = failure_message(["/x/wwctl", "kernel", "list"], 1, "", 'Error: unknown command "kernel" for "wwctl"\nRun \'wwctl --help\' for usage.\n')
    assert msg.startswith('wwctl kernel list failed (rc 1): Error: unknown command "kernel" for "wwctl"')


# ---------------------------------------------------------------------------------------
# argument lists per version


@pytest.mark.parametrize(
    "version, method, args, expected",
    [
        (V44, "list_images", (), ["container", "list"]),
        (V45, "list_images", (), ["container", "list"]),
        (V46, "list_images", (), ["image", "list"]),
        (V44, "show", ("r8",), ["container", "show", "r8"]),
        (V46, "show", ("r8",), ["image", "show", "r8"]),
        (V45, "build", ("r8",), ["container", "build", "r8"]),
        (V45, "build", ("r8", True), ["container", "build", "-f", "r8"]),
        (V46, "build", ("r8", True), ["image", "build", "-f", "r8"]),
        (V44, "import_image", ("/srv/r8", "r8", True), ["container", "import", "/srv/r8", "r8"]),  # 4.4 always builds
        (V45, "import_image", ("/srv/r8", "r8", True), ["container", "import", "-b", "/srv/r8", "r8"]),
        (V45, "import_image", ("/srv/r8", "r8", False), ["container", "import", "/srv/r8", "r8"]),
        (V46, "import_image", ("docker://r/x:1", "r8", True), ["image", "import", "-b", "docker://r/x:1", "r8"]),
        (V44, "kernel_list", (), ["kernel", "list"]),
        (V45, "kernel_import", ("5.14.0", "k", "r8"), ["kernel", "import", "-C", "r8", "5.14.0", "k"]),
        (V45, "kernel_import", ("5.14.0", None, "r8", True), ["kernel", "import", "-C", "r8", "--setdefault", "5.14.0"]),
        (V44, "kernel_import", ("5.14.0", "k"), ["kernel", "import", "5.14.0", "k"]),  # master's kernel: only via from_master
        (V45, "configure_all", (), ["configure", "--all"]),
        (V46, "overlay_build", (), ["overlay", "build"]),
        (V44, "server_restart", (), ["server", "restart"]),
        (V45, "version_args", (), ["version"]),
    ],
)
def test_argument_lists(version, method, args, expected):
    assert getattr(WarewulfCommands(version), method)(*args) == expected


@pytest.mark.parametrize("method, args", [("kernel_list", ()), ("kernel_import", ("5.14.0",)), ("server_restart", ())])
def test_46_has_no_kernel_or_server_command(method, args):
    with pytest.raises(WarewulfError, match="4.6 has no wwctl"):
        getattr(WarewulfCommands(V46), method)(*args)


@pytest.mark.parametrize(
    "version, image_file",
    [(V44, "/p/container/r8.img"), (V45, "/p/container/r8.img"), (V46, "/p/images/r8.img")],
)
def test_image_file(version, image_file):
    assert WarewulfCommands(version).image_file("/p", "r8") == image_file


# ---------------------------------------------------------------------------------------
# Image / kernel logic against a scripted wwctl


class FakeModule:
    """Just what the classes use of AnsibleModule; run_command answers from a script."""

    def __init__(self, params, script, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.script = script
        self.calls = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return None if name == "systemctl" else "/usr/bin/" + name

    def run_command(self, cmd, environ_update=None, **kwargs):
        # through community.general's CmdRunner: an argument list, never localized
        assert environ_update["LC_ALL"] == environ_update["LANG"] == "C" and isinstance(cmd, list)
        self.calls.append(cmd[1:])
        return self.script.get(tuple(cmd[1:]), (0, "", ""))


def version_out(version):
    return (0, "wwctl version:\t {0}-1.el9\n".format(".".join(map(str, version))), "")


IMAGE_DEFAULTS = dict(name="r8", state="built", source=None, force=False, provision_dir="/nonexistent",
                      configure_all=False, overlay_build=False, server_restart=False)


@pytest.fixture(autouse=True)
def _provision_dir(tmp_path, monkeypatch):
    """Every image run keeps its build record in a folder of its own test."""
    monkeypatch.setitem(IMAGE_DEFAULTS, "provision_dir", str(tmp_path / "provision"))


def image_run(version, script, check_mode=False, mountinfo="", **params):
    noun = "image" if version >= (4, 6) else "container"
    full = {("version",): version_out(version)}
    full.update({tuple(w.replace("NOUN", noun) for w in k): v for k, v in script.items()})
    module = FakeModule(dict(IMAGE_DEFAULTS, **params), full, check_mode)
    result = WarewulfImage(module, WarewulfRunner(module), mountinfo=mountinfo).run()
    return result, module.calls


SHOW_OK = (0, "/tmp/nonexistent-rootfs-r8\n", "")


@pytest.mark.parametrize("version", [V45, V46])
@pytest.mark.parametrize(
    "build_out, changed, actions",
    [
        ("Building\nCreated image\n", True, ["build r8"]),
        ("Skipping (VNFS is current)\n", False, []),
        ("Skipping (Image is current)\n", False, []),
    ],
)
def test_build_changed_comes_from_wwctl(version, build_out, changed, actions, tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    script = {("NOUN", "show", "r8"): (0, f"{rootfs}\n", ""), ("NOUN", "build", "r8"): (0, build_out, "")}
    result, calls = image_run(version, script)
    assert result["changed"] is changed and result["actions"] == actions


@pytest.mark.parametrize("version", [V45, V46])
def test_failed_build_is_recorded_and_forced_next_time(version, tmp_path):
    """A failed build leaves a partial image that wwctl takes as current: the record beside
    the image file makes the next run (check mode too) force the build, and goes after it."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    noun = "image" if version >= (4, 6) else "container"
    record = tmp_path / "provision" / ("images" if version >= (4, 6) else "container") / "r8.img.hpcllm-build-failed"
    failing = {("NOUN", "show", "r8"): (0, f"{rootfs}\n", ""),
               ("NOUN", "build", "r8"): (255, "", "ERROR: Failed to build r8: cpio: write error: No space left on device\n")}
    with pytest.raises(WarewulfError) as failed:
        image_run(version, failing)
    assert "No space left on device" in failed.value.msg
    assert f"recorded in {record}: the next run forces the build" in failed.value.msg
    assert record.exists()

    # what wwctl would say without -f after a failure: the partial image looks current
    after = {("NOUN", "show", "r8"): (0, f"{rootfs}\n", ""), ("NOUN", "build", "r8"): (0, "Skipping (VNFS is current)\n", ""),
             ("NOUN", "build", "-f", "r8"): (0, "Building\nCreated image\n", "")}
    predicted, calls = image_run(version, after, check_mode=True)
    assert predicted["changed"] is True and predicted["actions"] == ["build r8 (forced: the last build failed)"]
    assert not any("build" in call for call in calls) and record.exists()

    result, calls = image_run(version, after)
    assert [noun, "build", "-f", "r8"] in calls
    assert result["changed"] is True and result["actions"] == ["build r8 (forced: the last build failed)"]
    assert result["diff"]["before"]["last_build_failed"] is True and result["diff"]["after"]["last_build_failed"] is False
    assert not record.exists()

    again, calls = image_run(version, after)
    assert again["changed"] is False and [noun, "build", "r8"] in calls


def test_successful_build_leaves_no_record(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    script = {("NOUN", "show", "r8"): (0, f"{rootfs}\n", ""), ("NOUN", "build", "r8"): (0, "Building\n", "")}
    result, calls = image_run(V45, script)
    assert result["changed"] is True
    assert list((tmp_path / "provision" / "container").iterdir()) == []


def test_image_check_mode_runs_no_build(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    script = {("NOUN", "show", "r8"): (0, f"{rootfs}\n", "")}
    result, calls = image_run(V45, script, check_mode=True)
    assert result["changed"] is True and result["actions"] == ["build r8"]  # no image file yet
    assert not any("build" in call for call in calls)


def test_image_44_checks_the_list_before_show():
    script = {("NOUN", "list"): (0, "CONTAINER NAME NODES\nother 0\n", ""),
              ("NOUN", "show", "r8"): (0, "/var/lib/warewulf/chroots/r8/rootfs\n", "")}
    with pytest.raises(WarewulfError, match="not in the output of wwctl container list"):
        image_run(V44, script)


def test_image_import_when_missing_45(tmp_path):
    script = {("version",): version_out(V45), ("container", "show", "r8"): (255, "", "ERROR: r8 is not a valid container\n" * 2)}
    module = FakeModule(dict(IMAGE_DEFAULTS, source=str(tmp_path)), script)
    # after the import, show answers with a path
    original = module.run_command

    def run_command(cmd, environ_update=None, **kwargs):
        if cmd[1:3] == ["container", "import"]:
            module.script[("container", "show", "r8")] = (0, f"{tmp_path}\n", "")
        return original(cmd, environ_update, **kwargs)

    module.run_command = run_command
    result = WarewulfImage(module, WarewulfRunner(module), mountinfo="").run()
    assert result["imported"] is True and result["built"] is True and result["rootfs"] == str(tmp_path)
    assert ["container", "import", "-b", str(tmp_path), "r8"] in module.calls
    assert not any(call[:2] == ["container", "build"] for call in module.calls)


def test_image_other_show_failure_is_not_taken_for_missing():
    script = {("NOUN", "show", "r8"): (255, "", "ERROR: permission denied\n")}
    with pytest.raises(WarewulfError, match="permission denied") as info:
        image_run(V45, script, source="/srv/r8")
    assert info.value.rc == 255 and info.value.cmd == ["/usr/bin/wwctl", "container", "show", "r8"]


def test_image_refuses_with_mounts(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    mounted = str(rootfs).replace(" ", "\\040") + "/opt/ai\\040apps"
    mountinfo = f"36 35 98:0 / / rw - ext4 /dev/root rw\n90 36 0:5 /x {mounted} rw - ext4 /dev/sda rw\n"
    script = {("NOUN", "show", "r8"): (0, f"{rootfs}\n", "")}
    with pytest.raises(WarewulfError, match="refusing to build image r8") as info:
        image_run(V46, script, mountinfo=mountinfo)
    assert f"{rootfs}/opt/ai apps" in info.value.msg


def test_server_restart_falls_back_to_wwctl_on_45(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    script = {("NOUN", "show", "r8"): (0, f"{rootfs}\n", ""), ("NOUN", "build", "r8"): (0, "Building\n", "")}
    result, calls = image_run(V45, script, server_restart=True, overlay_build=True)
    assert result["actions"] == ["build r8", "wwctl overlay build", "wwctl server restart"]
    assert calls[-2:] == [["overlay", "build"], ["server", "restart"]]


KERNEL_DEFAULTS = dict(image="r8", state="imported", kernel_version=None, kernel_name=None, from_master=False, set_default=False)


def make_image(tmp_path, *kvers):
    rootfs = tmp_path / "rootfs"
    for kver in kvers:
        (rootfs / "lib" / "modules" / kver).mkdir(parents=True)
        (rootfs / "lib" / "modules" / kver / "vmlinuz").write_text("")
    rootfs.mkdir(exist_ok=True)
    return rootfs


@pytest.mark.parametrize(
    "version, listed, check_mode, changed, import_call",
    [
        (V45, "", False, True, ["kernel", "import", "-C", "r8", "6.1.0-10", "6.1.0-10"]),
        (V45, "", True, True, None),
        (V45, "KERNEL NAME KERNEL VERSION NODES\n6.1.0-10 6.1.0-10 0\n", False, False, None),
        (V44, "KERNEL NAME KERNEL VERSION NODES\n6.1.0-10 6.1.0-9 0\n", False, True, ["kernel", "import", "-C", "r8", "6.1.0-10", "6.1.0-10"]),
        (V46, "", False, False, None),
    ],
    ids=["import", "check", "already", "reimport-other-version", "4.6-reports"],
)
def test_kernel_import_decisions(tmp_path, version, listed, check_mode, changed, import_call):
    rootfs = make_image(tmp_path, "6.1.0-9", "6.1.0-10")
    noun = "image" if version >= (4, 6) else "container"
    script = {("version",): version_out(version), (noun, "list"): (0, f"{noun.upper()} NAME\nr8\n", ""),
              (noun, "show", "r8"): (0, f"{rootfs}\n", ""), ("kernel", "list"): (0, listed, "")}

    class ListingModule(FakeModule):
        def run_command(self, cmd, environ_update=None, **kwargs):
            if cmd[1:3] == ["kernel", "import"]:
                self.script[("kernel", "list")] = (0, "KERNEL NAME KERNEL VERSION NODES\n6.1.0-10 6.1.0-10 0\n", "")
            return super().run_command(cmd, environ_update, **kwargs)

    module = ListingModule(dict(KERNEL_DEFAULTS), script, check_mode)
    result = WarewulfKernel(module, WarewulfRunner(module)).run()
    assert result["changed"] is changed
    assert result["kernels"] == ["6.1.0-9", "6.1.0-10"] and result["kernel_version"] == "6.1.0-10"
    imports = [call for call in module.calls if call[:2] == ["kernel", "import"]]
    assert imports == ([import_call] if import_call else [])
    assert not any(call[0] == "kernel" for call in module.calls) or version < (4, 6)
    assert all("-C" in call for call in imports)


@pytest.mark.parametrize("version, warned", [((4, 3, 0), True), (V44, False), (V45, False), (V46, False), ((4, 7, 0), True)])
def test_unknown_versions_warn(version, warned):
    module = FakeModule({}, {("version",): version_out(version)})
    runner = WarewulfRunner(module)
    runner.detect()
    assert bool(runner.warnings) is warned


@pytest.mark.parametrize("version", [V44, V45, V46])
def test_info_reads_only(tmp_path, version):
    rootfs = make_image(tmp_path, "6.1.0-10")
    noun = "image" if version >= (4, 6) else "container"
    script = {("version",): version_out(version), (noun, "list"): (0, f"{noun.upper()} NAME\nr8\n", ""),
              (noun, "show", "r8"): (0, f"{rootfs}\n", ""), ("kernel", "list"): (0, "KERNEL NAME KERNEL VERSION NODES\nk 6.1.0-10 1\n", "")}
    module = FakeModule({"names": [], "provision_dir": str(tmp_path)}, script)
    result = WarewulfInfo(module, WarewulfRunner(module)).run()
    assert result["changed"] is False and result["noun"] == noun
    assert result["images"][0]["rootfs"] == str(rootfs) and result["images"][0]["kernels"] == ["6.1.0-10"]
    assert result["imported_kernels"] == ([] if version >= (4, 6) else [{"name": "k", "version": "6.1.0-10", "nodes": "1"}])
    assert all(call == ["version"] or call[1] in ("list", "show") for call in module.calls)
