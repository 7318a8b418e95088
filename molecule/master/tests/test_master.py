"""Testinfra checks of the bench master after converge, idempotence and a failed run."""

ROOTFS = "/var/lib/warewulf/chroots/compute/rootfs"


def test_probe_written_from_inside_the_image_lands_on_master_opt(host):
    probe = host.file("/opt/hpcllm-probe/compute.txt")
    assert probe.exists
    assert probe.mode == 0o644
    content = probe.content_string
    assert "image=compute" in content
    assert f"rootfs={ROOTFS}" in content
    assert 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' in content


def test_probe_did_not_go_into_the_image(host):
    # with /opt unmounted, the image's own /opt must not hold the probe
    assert host.file(f"{ROOTFS}/opt").is_directory
    assert not host.file(f"{ROOTFS}/opt/hpcllm-probe").exists


def test_nothing_left_mounted_under_the_image(host):
    mounts = host.check_output("findmnt --raw --noheadings --output TARGET").splitlines()
    assert [m for m in mounts if m.startswith(ROOTFS)] == []


def test_image_is_a_real_debian_chroot(host):
    assert host.file(f"{ROOTFS}/usr/bin/python3").exists
    out = host.check_output(f"chroot {ROOTFS} /usr/bin/python3 -c 'import sys; print(sys.version_info[:2])'")
    assert out == "(3, 11)"


def test_image_was_imported_through_wwctl_once(host):
    calls = host.file("/var/lib/warewulf/calls.log").content_string.splitlines()
    imports = [c for c in calls if '"import"' in c]
    assert len(imports) == 1, calls
    assert '"/srv/bench/images/compute"' in imports[0]
    # every later run found the image and asked wwctl for its rootfs instead
    assert any('"show"' in c for c in calls)


def test_warewulf_conf_mounts_opt_on_the_nodes_with_comments_kept(host):
    conf = host.file("/etc/warewulf/warewulf.conf")
    assert conf.mode == 0o640
    text = conf.content_string
    # the /opt entry's `mount: false` became true by a line edit: its trailing comment stayed
    assert "    mount: true # site: not yet" in text
    assert "mount: false" not in text
    assert "# /home for the users, /opt for the software" in text
    backups = host.check_output("ls /etc/warewulf").split()
    assert len([b for b in backups if b.startswith("warewulf.conf.") and b.endswith("~")]) == 1, backups


def test_configure_nfs_ran_once_only_after_the_change(host):
    calls = host.file("/var/lib/warewulf/calls.log").content_string.splitlines()
    assert len([c for c in calls if '"argv": ["configure", "nfs"]' in c]) == 1, calls
