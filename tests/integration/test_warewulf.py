"""warewulf_image / warewulf_kernel through ansible-playbook against the wwctl test double,
for Warewulf 4.4, 4.5 and 4.6 (tests/wwctl/wwctl)."""

from __future__ import annotations

import time

import pytest

from ww_fixtures import PLAYBOOKS, VERSIONS, WarewulfDouble, bind_mount, make_docker_save, make_rootfs


@pytest.fixture(params=VERSIONS)
def ww(request, tmp_path) -> WarewulfDouble:
    """The wwctl double of each Warewulf version, with an empty state folder."""
    return WarewulfDouble(request.param, tmp_path / "wwstate")


def _vars(ww: WarewulfDouble, **extra) -> dict:
    data = {"ww_name": "rocky", "ww_provision_dir": str(ww.provision)}
    data.update(extra)
    return data


def _imported(ww: WarewulfDouble, tmp_path, name: str = "rocky", kernels=("6.1.0-9-amd64",)):
    """An image imported and built by the double itself (test setup, outside the module)."""
    source = make_rootfs(tmp_path / f"src-{name}", kernels=kernels)
    build = [] if ww.version.startswith("4.4") else ["-b"]
    ww.wwctl(ww.noun, "import", *build, str(source), name)
    assert ww.image_file(name).exists()
    return ww.rootfs(name)


def test_lifecycle(ansible_playbook, ww, tmp_path):
    """Import (predicted in check mode first), build, skip, force; verbs of the version; LANG=C on every call."""
    source = make_rootfs(tmp_path / "src")
    run = ansible_playbook(PLAYBOOKS / "lifecycle.yml", _vars(ww, ww_source=str(source)), env=ww.env)
    assert run.rc == 0, run.stdout + run.stderr

    predicted = run.results("Predict import")
    assert predicted["changed"] is True and predicted["imported"] is True and predicted["rootfs"] is None
    assert predicted["actions"] == [f"import rocky from {source} and build it"]

    imported = run.results("Import")
    assert imported["changed"] is True
    assert imported["imported"] is True
    assert imported["rootfs"] == str(ww.rootfs("rocky"))
    assert imported["version"].startswith(ww.version)
    # 4.4 always builds on import; 4.5/4.6 only with -b (not asked for with state: present)
    assert imported["built"] is ww.version.startswith("4.4")

    build = run.results("Build")
    assert build["changed"] is (not ww.version.startswith("4.4"))
    assert run.results("Build again")["changed"] is False
    assert run.results("Build again")["actions"] == []
    forced = run.results("Force build")
    assert forced["changed"] is True and forced["actions"] == ["build rocky (forced)"]
    looked_up = run.results("Look up")
    assert looked_up["changed"] is False and looked_up["rootfs"] == str(ww.rootfs("rocky"))

    calls = ww.calls()
    assert [call for call in calls if call[1:2] == ["import"]] == [[ww.noun, "import", str(source), "rocky"]]  # none in check mode
    assert [ww.noun, "build", "-f", "rocky"] in calls
    assert all(call[0] in ("version", ww.noun) for call in calls)
    assert not any(call[:2] == ["container", "exec"] or call[:2] == ["image", "exec"] for call in calls)
    assert ww.call_langs() == {"C"}


def test_import_docker_save_and_build(ansible_playbook, ww, tmp_path):
    """A docker-save archive imports; state built asks 4.5/4.6 for -b (4.4 builds on import anyway)."""
    archive = make_docker_save(tmp_path / "image.tar", make_rootfs(tmp_path / "src"))
    run = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_source=str(archive), ww_state="built"), env=ww.env)
    assert run.rc == 0, run.stdout + run.stderr
    result = run.results("Image")
    assert result["changed"] is True and result["imported"] is True and result["built"] is True
    expected = [ww.noun, "import"] + ([] if ww.version.startswith("4.4") else ["-b"]) + [str(archive), "rocky"]
    assert expected in ww.calls()
    assert not any(call[:2] == [ww.noun, "build"] for call in ww.calls())
    assert (ww.rootfs("rocky") / "bin" / "sh").exists() and ww.image_file("rocky").exists()


def test_failures_surface_wwctl_errors(ansible_playbook, ww, tmp_path):
    """Unknown name (4.5/4.6: show's exit 255 message; 4.4 show says rc 0, so the list decides)
    and a source without /bin/sh (wwctl's ERROR line, rc 255 and the command come back)."""
    bad = make_rootfs(tmp_path / "nosh", with_sh=False)
    run = ansible_playbook(PLAYBOOKS / "failures.yml", _vars(ww, ww_bad_source=str(bad)), env=ww.env)

    unknown = run.results("Unknown image")
    assert unknown["failed"] is True
    assert "image nope does not exist and no source was given" in unknown["msg"]
    if ww.version.startswith("4.4"):
        assert "not in the output of wwctl container list" in unknown["msg"]
    else:
        assert unknown["rc"] == 255
        assert f"ERROR: nope is not a valid {ww.noun}" in unknown["msg"]
        assert unknown["msg"].count("ERROR:") == 1  # printed twice by 4.5, reported once
        assert unknown["cmd"][1:] == [ww.noun, "show", "nope"]

    bad_source = run.results("Bad source")
    assert bad_source["failed"] is True and bad_source["rc"] == 255
    assert "no /bin/sh" in bad_source["msg"] and "ERROR:" in bad_source["msg"]
    assert bad_source["cmd"][1:] == [ww.noun, "import", str(bad), "rocky"]
    assert "ERROR:" in bad_source["stderr"]
    assert not any(call[:2] == [ww.noun, "build"] for call in ww.calls())


def test_check_mode_predicts_without_building(ansible_playbook, ww, tmp_path):
    rootfs = _imported(ww, tmp_path)
    (rootfs / "etc" / "motd").write_text("changed inside the image\n")
    mark = ww.mark()
    run = ansible_playbook(PLAYBOOKS / "check.yml", _vars(ww), env=ww.env)
    assert run.rc == 0, run.stdout

    predicted = run.results("Predict")
    assert predicted["changed"] is True and predicted["actions"] == ["build rocky"] and predicted["built"] is True
    assert predicted["diff"]["before"]["exists"] is True
    assert run.results("Build")["changed"] is True
    again = run.results("Predict again")
    assert again["changed"] is False and again["actions"] == []
    # the only build wwctl saw is the real one
    assert [call for call in ww.calls()[mark:] if call[:2] == [ww.noun, "build"]] == [[ww.noun, "build", "rocky"]]


def test_refuses_to_build_with_mount_below_rootfs(ansible_playbook, ww, tmp_path):
    rootfs = _imported(ww, tmp_path)
    models = tmp_path / "master-opt"
    models.mkdir()
    mark = ww.mark()
    target = rootfs / "opt" / "ai apps"  # a space: \040 in mountinfo
    with bind_mount(models, target):
        run = ansible_playbook(PLAYBOOKS / "refuse.yml", _vars(ww), env=ww.env)
    for task in ("Build", "Predict"):
        result = run.results(task)
        assert result["failed"] is True
        assert "refusing to build image rocky" in result["msg"] and str(target) in result["msg"]
    assert not any(call[:2] == [ww.noun, "build"] for call in ww.calls()[mark:])


def test_finalize_twice_changes_nothing_the_second_time(ansible_playbook, ww, tmp_path):
    """Import + build + kernel, with the opt-in cluster steps; the second run runs none of them."""
    source = make_rootfs(tmp_path / "src", kernels=("6.1.0-9-amd64", "6.1.0-10-amd64"))
    extra = _vars(ww, ww_source=str(source), ww_configure_all=True, ww_overlay_build=True)
    first = ansible_playbook(PLAYBOOKS / "finalize.yml", extra, env=ww.env)
    assert first.rc == 0, first.stdout + first.stderr
    image = first.results("Image built")
    assert image["actions"] == ["import rocky from {0} and build it".format(source), "wwctl configure --all", "wwctl overlay build"]
    assert first.results("Kernel imported")["changed"] is (not ww.version.startswith("4.6"))
    mark = ww.mark()
    second = ansible_playbook(PLAYBOOKS / "finalize.yml", extra, env=ww.env)
    assert second.rc == 0 and second.changed() == 0, second.stdout
    later = ww.calls()[mark:]
    assert ["configure", "--all"] not in later and ["overlay", "build"] not in later
    assert not any(call[:2] == ["kernel", "import"] for call in later)


@pytest.mark.parametrize("version", ["4.4.1", "4.5.8"])
def test_kernel_import_from_image(ansible_playbook, tmp_path, version):
    """Predicted in check mode, imported with -C from the image, then nothing to do."""
    ww = WarewulfDouble(version, tmp_path / "wwstate")
    _imported(ww, tmp_path, kernels=("6.1.0-9-amd64", "6.1.0-10-amd64"))
    run = ansible_playbook(PLAYBOOKS / "kernel_twice.yml", _vars(ww), env=ww.env)
    assert run.rc == 0, run.stdout

    predicted = run.results("Predict")
    assert predicted["changed"] is True
    assert predicted["actions"] == ["import kernel 6.1.0-10-amd64 as 6.1.0-10-amd64 from image rocky"]
    result = run.results("Import")
    assert result["changed"] is True
    assert result["kernels"] == ["6.1.0-9-amd64", "6.1.0-10-amd64"]
    assert result["kernel_version"] == "6.1.0-10-amd64"
    assert {"name": "6.1.0-10-amd64", "version": "6.1.0-10-amd64", "nodes": "0"} in result["imported_kernels"]
    assert run.results("Again")["changed"] is False
    imports = [call for call in ww.calls() if call[:2] == ["kernel", "import"]]
    assert imports == [["kernel", "import", "-C", "rocky", "6.1.0-10-amd64", "6.1.0-10-amd64"]]


def test_kernel_45_refuses_an_older_kernel(ansible_playbook, tmp_path):
    """4.5 imports only the newest kernel of an image: asking for another fails before wwctl runs."""
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    _imported(ww, tmp_path, kernels=("6.1.0-9-amd64", "6.1.0-10-amd64"))
    run = ansible_playbook(PLAYBOOKS / "kernel.yml", _vars(ww, ww_kernel_state="imported", ww_kernel_version="6.1.0-9-amd64"), env=ww.env)
    assert run.rc != 0
    assert "imports only the newest kernel" in run.results("Kernel")["msg"]
    assert not any(call[:2] == ["kernel", "import"] for call in ww.calls())


def test_kernel_46_reports_and_changes_nothing(ansible_playbook, tmp_path):
    ww = WarewulfDouble("4.6.0", tmp_path / "wwstate")
    _imported(ww, tmp_path, kernels=("6.1.0-10-amd64",))
    run = ansible_playbook(PLAYBOOKS / "kernel.yml", _vars(ww, ww_kernel_state="imported"), env=ww.env)
    assert run.rc == 0, run.stdout
    result = run.results("Kernel")
    assert result["changed"] is False
    assert result["kernels"] == ["6.1.0-10-amd64"] and result["kernel_version"] == "6.1.0-10-amd64"
    assert any("4.6" in warning for warning in result.get("warnings", []))
    assert not any(call[0] == "kernel" for call in ww.calls())


@pytest.mark.parametrize("version", ["4.5.8", "4.6.0"])
def test_kernel_from_master_only_when_asked(ansible_playbook, tmp_path, version):
    """from_master imports the master's kernel (no -C) on 4.5 and fails on 4.6, which has no wwctl kernel."""
    ww = WarewulfDouble(version, tmp_path / "wwstate")
    run = ansible_playbook(
        PLAYBOOKS / "kernel.yml",
        {"ww_kernel_state": "imported", "ww_from_master": True, "ww_kernel_version": "6.1.0-master-amd64"},
        env=ww.env,
    )
    if version.startswith("4.6"):
        assert run.rc != 0 and "has no wwctl kernel" in run.results("Kernel")["msg"]
        assert not any(call[0] == "kernel" for call in ww.calls())
        return
    assert run.rc == 0, run.stdout
    assert run.results("Kernel")["changed"] is True
    assert ["kernel", "import", "6.1.0-master-amd64", "6.1.0-master-amd64"] in ww.calls()


def test_info(ansible_playbook, ww, tmp_path):
    rootfs = _imported(ww, tmp_path, kernels=("6.1.0-10-amd64",))
    _imported(ww, tmp_path, name="other", kernels=())
    run = ansible_playbook(PLAYBOOKS / "info.yml", _vars(ww), env=ww.env)
    assert run.rc == 0, run.stdout
    every = run.results("All images")
    assert every["changed"] is False and every["noun"] == ww.noun and every["version"].startswith(ww.version)
    assert [image["name"] for image in every["images"]] == ["other", "rocky"]
    one = run.results("One image")
    assert one["images"] == [{
        "name": "rocky", "rootfs": str(rootfs), "kernels": ["6.1.0-10-amd64"],
        "image_file": str(ww.image_file("rocky")), "image_file_exists": True,
    }]
    assert one["imported_kernels"] == []
    assert "unknown images" in run.results("Unknown image")["msg"]
    kernel_calls = [call for call in ww.calls() if call[0] == "kernel"]
    assert all(call == ["kernel", "list"] for call in kernel_calls)
    assert bool(kernel_calls) is (not ww.version.startswith("4.6"))


def test_failed_build_is_rebuilt_next_run(ansible_playbook, tmp_path):
    """A failed build leaves a newer partial image (the double, like wwctl, then skips without -f):
    the next run forces the build by itself, check mode predicts it, and a third run skips."""
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    rootfs = _imported(ww, tmp_path)
    (rootfs / "etc" / "motd").write_text("new\n")
    failed = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env={**ww.env, "WWCTL_DOUBLE_FAIL_BUILD": "1"})
    result = failed.results("Image")
    assert result["failed"] is True and result["rc"] == 255
    assert result["cmd"][1:] == ["container", "build", "rocky"]
    assert "No space left on device" in result["msg"] and "No space left on device" in result["stderr"]
    assert "the next run forces the build" in result["msg"]
    predicted = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env, check=True)
    assert predicted.results("Image")["changed"] is True
    assert predicted.results("Image")["actions"] == ["build rocky (forced: the last build failed)"]
    rebuilt = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env)
    assert rebuilt.results("Image")["changed"] is True and rebuilt.results("Image")["built"] is True
    assert ["container", "build", "-f", "rocky"] in ww.calls()
    assert ww.image_file("rocky").read_text() != "partial\n"
    again = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env)
    assert again.results("Image")["changed"] is False


def test_link_to_a_changed_file_outside_the_image_predicted_and_built(ansible_playbook, tmp_path):
    """Warewulf's check follows links to wherever they point on the master: a link in the image to
    a file outside it that changed makes wwctl rebuild; check mode predicts exactly that and names
    the link; once built, both agree the image is current."""
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    outside = tmp_path / "master-resolv.conf"
    outside.write_text("nameserver 10.0.0.1\n")
    source = make_rootfs(tmp_path / "src-rocky")
    (source / "etc" / "resolv.conf").symlink_to(outside)
    ww.wwctl(ww.noun, "import", "-b", str(source), "rocky")
    settled = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env, check=True)
    assert settled.results("Image")["changed"] is False and settled.results("Image")["newer_than_image"] == []
    time.sleep(0.02)
    outside.write_text("nameserver 10.0.0.2\n")  # nothing in the image changed
    predicted = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env, check=True)
    result = predicted.results("Image")
    assert result["changed"] is True and result["actions"] == ["build rocky"]
    assert result["newer_than_image"] == ["etc/resolv.conf -> {0}".format(outside)]
    mark = ww.mark()
    built = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env)
    assert built.results("Image")["changed"] is True and built.results("Image")["built"] is True
    assert [call for call in ww.calls()[mark:] if call[:2] == [ww.noun, "build"]] == [[ww.noun, "build", "rocky"]]
    after = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env, check=True)
    assert after.results("Image")["changed"] is False


def test_links_into_proc_rebuild_every_time_and_are_named(ansible_playbook, tmp_path):
    """A debootstrapped image's dev/fd -> /proc/self/fd: Warewulf (and its double) rebuild it on every
    build; the module says so, naming the links, in check mode and in the run."""
    ww = WarewulfDouble("4.5.8", tmp_path / "wwstate")
    source = make_rootfs(tmp_path / "src-rocky")
    (source / "dev").mkdir()
    (source / "dev" / "fd").symlink_to("/proc/self/fd")
    (source / "dev" / "stdin").symlink_to("/proc/self/fd/0")
    ww.wwctl(ww.noun, "import", "-b", str(source), "rocky")
    expected = ("image rocky: dev/fd -> /proc/self/fd, dev/stdin -> /proc/self/fd/0 resolve into the master's /proc, /sys or /dev; "
                "Warewulf follows links")
    predicted = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env, check=True)
    assert predicted.results("Image")["changed"] is True
    assert any(warning.startswith(expected) for warning in predicted.results("Image")["warnings"])
    for dummy in range(2):
        run = ansible_playbook(PLAYBOOKS / "image.yml", _vars(ww, ww_state="built"), env=ww.env)
        assert run.results("Image")["built"] is True, "wwctl rebuilds on every build"
        assert any(warning.startswith(expected) for warning in run.results("Image")["warnings"])
