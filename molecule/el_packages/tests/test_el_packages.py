"""The EL code path: what Debian's dnf and rpm installed from the stand-in repositories."""
import pytest

KVER = "4.18.0-513.el8.x86_64"


def rpm_installed(host, name):
    return host.run(f"rpm -q {name}").rc == 0


def test_dnf_disk_space_check_off(host):
    conf = host.file("/etc/dnf/dnf.conf").content_string
    assert "\ndiskspacecheck=0\n" in conf + "\n"
    # the rest of the file is kept
    assert "gpgcheck=" in conf
    # the offline bundle's sources were the run's only (side_effect): not in the image
    assert "reposdir" not in conf


def test_bundle_package_installed_from_the_bundle(host):
    # only /srv/el_bundle has it: the side effect's dnf read the bundle's repository
    assert rpm_installed(host, "hpcllm-bundle-probe")


def test_cuda_repository_points_at_the_url_variable(host):
    repo = host.file("/etc/yum.repos.d/cuda-rhel8-x86_64.repo")
    assert repo.exists
    assert "baseurl = file:///srv/el_cuda" in repo.content_string
    assert "gpgcheck = 0" in repo.content_string


@pytest.mark.parametrize("name", ["epel-release", "gcc-c++", "wget", "curl", "libpciaccess", "nvme-cli", "numad",
                                  "numatop", "yum-utils", "kernel", "kernel-devel", "kernel-headers",
                                  f"kernel-devel-{KVER}"])
def test_chroot_prep_packages(host, name):
    assert rpm_installed(host, name)


@pytest.mark.parametrize("name", ["dnf-plugin-nvidia", "nvidia-driver", "nvidia-driver-devel", "nvidia-driver-cuda",
                                  "nvidia-persistenced", "kmod-nvidia-545.23.08-4.18.0-513", "cuda-toolkit-12-3",
                                  # the side effect switched to latest-dkms: its package choice
                                  "kmod-nvidia-latest-dkms", "dkms"])
def test_nvidia_packages(host, name):
    # these exist only in /srv/el_cuda: installed means the role's repository definition works
    assert rpm_installed(host, name)


def test_cuda_toolkit_laid_out(host):
    nvcc = host.file("/usr/local/cuda-12.3/bin/nvcc")
    assert nvcc.is_file and nvcc.mode & 0o111
    assert "test stand-in" in host.check_output("/usr/local/cuda-12.3/bin/nvcc --version")


def test_module_and_depmod_for_the_image_kernel(host):
    assert host.file(f"/lib/modules/{KVER}/extra/nvidia.ko").is_file
    assert "extra/nvidia.ko:" in host.file(f"/lib/modules/{KVER}/modules.dep").content_string


def test_persistenced_enabled(host):
    out = host.run("SYSTEMD_OFFLINE=1 systemctl is-enabled nvidia-persistenced.service")
    assert out.stdout.strip() == "enabled", out.stdout + out.stderr


def test_default_target_multi_user(host):
    link = host.file("/etc/systemd/system/default.target")
    assert link.is_symlink
    assert host.check_output("readlink /etc/systemd/system/default.target") == "/usr/lib/systemd/system/multi-user.target"


def test_dnf_caches_cleaned(host):
    # what `dnf clean all` removes: packages and repository metadata
    out = host.check_output("find /var/cache/dnf -type f \\( -name '*.rpm' -o -name '*.solv*' -o -name 'repomd.xml' "
                            "-o -name '*.xml.*' -o -name '*.sqlite*' \\) 2>/dev/null || true")
    assert out == ""
