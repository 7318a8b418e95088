"""What the image holds after chroot_prep (image side) and nvidia_driver."""
import os

import pytest

# The machine's running kernel: the image must not get a module for it.
RUNNING = os.uname().release


def image_kernels(host):
    out = host.check_output("find /lib/modules -mindepth 2 -maxdepth 2 -type d -name kernel")
    return sorted(os.path.basename(os.path.dirname(p)) for p in out.split())


def test_image_kernel_is_debian_6_1_not_the_running_one(host):
    kernels = image_kernels(host)
    assert kernels, "no kernel installed in the image"
    assert all(k.startswith("6.1.") for k in kernels), kernels
    assert RUNNING not in kernels
    assert not host.file(f"/lib/modules/{RUNNING}").exists


def test_module_built_for_each_image_kernel(host):
    for kver in image_kernels(host):
        ko = host.file(f"/lib/modules/{kver}/updates/dkms/nvidia-current.ko")
        assert ko.is_file, f"no nvidia-current.ko for {kver}"
        info = host.check_output(f"/sbin/modinfo -k {kver} -F vermagic {ko.path}")
        assert info.split()[0] == kver
        assert host.file(f"/lib/modules/{kver}/build/Makefile").exists, "headers missing"


def test_depmod_lists_the_module(host):
    for kver in image_kernels(host):
        dep = host.file(f"/lib/modules/{kver}/modules.dep").content_string
        assert "updates/dkms/nvidia-current.ko:" in dep
        # modprobe resolves the alias the user-space packages install
        out = host.check_output(f"/sbin/modprobe -S {kver} --show-depends nvidia")
        assert "nvidia-current.ko" in out


def test_modprobe_alias_and_nouveau_blacklist(host):
    conf = host.check_output("cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf 2>/dev/null || true")
    assert "blacklist nouveau" in conf


@pytest.mark.parametrize("unit", ["nvidia-persistenced.service", "nvidia-powerd.service"])
def test_services_enabled(host, unit):
    out = host.run(f"SYSTEMD_OFFLINE=1 systemctl is-enabled {unit}")
    assert out.stdout.strip() == "enabled", out.stdout + out.stderr


def test_default_target_multi_user(host):
    link = host.file("/etc/systemd/system/default.target")
    assert link.is_symlink
    assert link.linked_to == "/lib/systemd/system/multi-user.target"


@pytest.mark.parametrize("pkg", ["g++", "wget", "curl", "libpciaccess0", "nvme-cli", "numad", "numatop",
                                 "linux-headers-amd64", "nvidia-smi", "libcuda1", "firmware-misc-nonfree"])
def test_packages(host, pkg):
    assert host.package(pkg).is_installed


def test_nvidia_kernel_dkms_has_no_recommends(host):
    # without --no-install-recommends X and GTK come along
    assert not host.package("xserver-xorg-video-nvidia").is_installed


def test_package_caches_cleaned(host):
    out = host.check_output("find /var/cache/apt -type f \\( -name '*.deb' -o -name '*.bin' \\)")
    assert out == ""
