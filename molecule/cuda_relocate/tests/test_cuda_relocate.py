"""Testinfra checks after converge, idempotence and the side effect (kill, resume, clash)."""

import pytest

CHROOTS = "/var/lib/warewulf/chroots"


def tree_manifest(host, path):
    return host.check_output(f"python3 /root/make_tree.py --manifest-of {path}")


@pytest.mark.parametrize(
    "dest, manifest",
    [
        ("/opt/cuda/cuda-12.3", "cuda-12.3"),
        ("/opt/cuda/cuda-12.3", "gpu2-cuda-12.3"),
        ("/opt/cuda/cuda-12.2", "cuda-12.2"),
        ("/opt/nvidia/nsight-systems/2023.3.1", "nsight-systems"),
        ("/opt/nvidia/nsight-compute/2023.3.0", "nsight-compute"),
    ],
)
def test_every_file_arrived_intact(host, dest, manifest):
    # manifests were made before anything moved: paths, modes, sizes, sha256, link targets
    assert tree_manifest(host, dest) == host.file(f"/root/manifests/{manifest}").content_string.rstrip("\n")


def test_the_moves_crossed_filesystems(host):
    assert host.check_output("findmnt --noheadings --output FSTYPE /opt") == "tmpfs"
    assert host.check_output(f"stat -c %d {CHROOTS}") != host.check_output("stat -c %d /opt/cuda")


@pytest.mark.parametrize(
    "image, version",
    [("compute", "12.3"), ("gpu2", "12.3"), ("killme", "12.2")],
)
def test_images_link_to_opt(host, image, version):
    link = host.file(f"{CHROOTS}/{image}/rootfs/usr/local/cuda-{version}")
    assert link.is_symlink
    assert link.linked_to == f"/opt/cuda/cuda-{version}"


def test_the_images_own_cuda_link_still_leads_to_the_toolkit(host):
    link = host.file(f"{CHROOTS}/compute/rootfs/usr/local/cuda")
    assert link.is_symlink and host.check_output(f"readlink {link.path}") == "cuda-12.3"
    # as a node resolves it: /usr/local/cuda -> cuda-12.3 -> /opt/cuda/cuda-12.3 (the master's /opt over NFS)
    assert host.check_output(f"readlink -f {link.path}") == "/opt/cuda/cuda-12.3"
    assert host.file(f"{link.path}/bin/nvcc").exists


def test_nsight_left_the_image_without_a_link(host):
    assert not host.file(f"{CHROOTS}/compute/rootfs/opt/nvidia/nsight-systems").exists


def test_bind_mounted_opt_was_left_in_place(host):
    mounts = host.check_output("findmnt --raw --noheadings --output TARGET").splitlines()
    assert f"{CHROOTS}/bound/rootfs/opt" in mounts
    # the image that never had CUDA got no link either
    assert not host.file(f"{CHROOTS}/bound/rootfs/usr/local/cuda-12.3").exists


def test_the_refused_image_keeps_its_tree(host):
    src = f"{CHROOTS}/clash/rootfs/usr/local/cuda-12.3"
    assert host.file(src).is_directory and not host.file(src).is_symlink
    assert tree_manifest(host, src) == host.file("/root/manifests/clash-cuda-12.3").content_string.rstrip("\n")


def test_no_partial_copy_or_marker_is_left(host):
    leftovers = host.check_output("find /opt -maxdepth 3 \\( -name '*.partial' -o -name '*.cuda_relocate*' \\) -print")
    assert leftovers == ""
