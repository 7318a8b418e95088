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
        # modprobe finds the module for that kernel ...
        out = host.check_output(f"/sbin/modprobe -S {kver} --show-depends nvidia-current")
        assert f"/lib/modules/{kver}/updates/dkms/nvidia-current.ko" in out
        # ... and `nvidia` leads to it (the user-space packages install that redirection)
        out = host.check_output(f"/sbin/modprobe -S {kver} --show-depends nvidia")
        assert "nvidia-current" in out


def test_modprobe_alias_and_nouveau_blacklist(host):
    conf = host.check_output("cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf 2>/dev/null || true")
    assert "blacklist nouveau" in conf


def test_persistenced_enabled(host):
    out = host.run("SYSTEMD_OFFLINE=1 systemctl is-enabled nvidia-persistenced.service")
    assert out.stdout.strip() == "enabled", out.stdout + out.stderr


def test_powerd_enabled_where_its_unit_exists(host):
    # Debian 12's nvidia-powerd package is installed; the role enables its unit only if
    # the package ships one
    assert host.package("nvidia-powerd").is_installed
    units = [f"{d}/nvidia-powerd.service" for d in ("/lib/systemd/system", "/etc/systemd/system")]
    if any(host.file(u).exists for u in units):
        out = host.run("SYSTEMD_OFFLINE=1 systemctl is-enabled nvidia-powerd.service")
        assert out.stdout.strip() == "enabled", out.stdout + out.stderr


def test_default_target_multi_user(host):
    link = host.file("/etc/systemd/system/default.target")
    assert link.is_symlink
    # the link text, as `systemctl set-default` writes it (linked_to resolves /lib -> /usr/lib)
    assert host.check_output("readlink /etc/systemd/system/default.target") == "/lib/systemd/system/multi-user.target"


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
