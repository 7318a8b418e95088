"""module_utils._os_package_repo: .deb parsing and the flat Packages index on tiny real packages built with
dpkg-deb, the command lines of the collect (apt and dnf, recorded output), its skip/prune/fail paths."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._os_package_repo import (
    DEB_INDEX,
    DEB_INDEX_GZ,
    OsPackageRepo,
    OsPackageRepoError,
    apt_download_argv,
    createrepo_argv,
    deb_control,
    deb_filename,
    dnf_download_argv,
    parse_control,
    parse_dpkg_query,
    parse_rpm_query,
    render_deb_index,
    rpm_filename,
    rpm_spec,
    write_deb_index,
)

DPKG_DEB = shutil.which("dpkg-deb")
needs_dpkg_deb = pytest.mark.skipif(DPKG_DEB is None, reason="dpkg-deb is not installed")


def build_deb(folder, name, version, compression="xz", arch="all", description="a test package"):
    """A real tiny .deb (one file) as apt-get download would name it; returns its path."""
    root = folder / f"build-{name}-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "README").write_text(f"{name} {version}\n")
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <t@example.org>\n"
        f"Depends: libc6\nDescription: {description}\n Long line one.\n .\n Long line two.\n"
    )
    out = folder / deb_filename(name, arch, version)
    subprocess.run([DPKG_DEB, "-Z", compression, "--root-owner-group", "--build", str(root), str(out)],
                   check=True, capture_output=True)
    shutil.rmtree(root)
    return out


@pytest.fixture
def repo(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    "name, arch, version, expected",
    [
        ("hello", "amd64", "2.10-3", "hello_2.10-3_amd64.deb"),
        ("libgmp10", "amd64", "2:6.2.1+dfsg1-1.1", "libgmp10_2%3a6.2.1+dfsg1-1.1_amd64.deb"),
        ("tzdata", "all", "2024a-0+deb12u1", "tzdata_2024a-0+deb12u1_all.deb"),
    ],
)
def test_deb_filename(name, arch, version, expected):
    assert deb_filename(name, arch, version) == expected


def test_parse_dpkg_query_keeps_installed_only():
    out = ("ii \thello\tamd64\t2.10-3\n"
           "rc \told\tamd64\t1.0\n"
           "iU \thalf\tamd64\t1.0\n"
           "ii \tlibgmp10\tamd64\t2:6.2.1+dfsg1-1.1\n"
           "garbage line\n")
    assert parse_dpkg_query(out) == [("hello", "amd64", "2.10-3"), ("libgmp10", "amd64", "2:6.2.1+dfsg1-1.1")]


def test_parse_rpm_query_epochs_and_pubkeys():
    out = ("bash\t(none)\t5.1.8\t9.el9\tx86_64\n"
           "gpg-pubkey\t(none)\t8483c65d\t5ccc5b19\t(none)\n"
           "perl-libs\t4\t5.32.1\t480.el9\tx86_64\n")
    packages = parse_rpm_query(out)
    assert packages == [("bash", "0", "5.1.8", "9.el9", "x86_64"), ("perl-libs", "4", "5.32.1", "480.el9", "x86_64")]
    assert rpm_spec(*packages[1]) == "perl-libs-4:5.32.1-480.el9.x86_64"
    assert rpm_spec(*packages[0]) == "bash-0:5.1.8-9.el9.x86_64"
    assert rpm_filename(*packages[1]) == "perl-libs-5.32.1-480.el9.x86_64.rpm"


def test_command_lines_keep_state_in_scratch():
    argv = apt_download_argv("/usr/bin/apt-get", "/tmp/s", ["hello:amd64=2.10-3"])
    assert argv == ["/usr/bin/apt-get", "-q", "-o", "Dir::State::Lists=/tmp/s/lists", "-o", "Dir::Cache=/tmp/s/cache",
                    "-o", "Dir::Log=/tmp/s/log", "-o", "APT::Sandbox::User=root", "download", "hello:amd64=2.10-3"]
    argv = dnf_download_argv("/usr/bin/dnf", "/tmp/s", "/opt/b/.partial", ["bash-0:5.1.8-9.el9.x86_64"])
    assert argv == ["/usr/bin/dnf", "-q", "download", "--destdir", "/opt/b/.partial", "--setopt=cachedir=/tmp/s/cache",
                    "--setopt=persistdir=/tmp/s/persist", "--setopt=logdir=/tmp/s/log", "bash-0:5.1.8-9.el9.x86_64"]
    assert createrepo_argv("/usr/bin/createrepo_c", "/opt/b") == [
        "/usr/bin/createrepo_c", "--quiet", "--excludes", ".partial/*", "/opt/b"]


def test_parse_control_continuations():
    fields = parse_control("Package: a\nConffiles:\n /etc/a 0123\nDescription: short\n long\n .\n")
    assert fields == [("Package", "a"), ("Conffiles", "\n /etc/a 0123"), ("Description", "short\n long\n .")]
    with pytest.raises(OsPackageRepoError, match="continuation"):
        parse_control(" starts badly\n")


@needs_dpkg_deb
@pytest.mark.parametrize("compression", ["gzip", "xz", "none"])
def test_deb_control_compressions(repo, compression):
    deb = build_deb(repo, "tinypkg", "1:1.0-1", compression)
    fields = dict(parse_control(deb_control(str(deb))))
    assert fields["Package"] == "tinypkg" and fields["Version"] == "1:1.0-1"


@needs_dpkg_deb
def test_index_format_and_sums(repo):
    deb = build_deb(repo, "tinypkg", "1:1.0-1", "gzip", arch="amd64")
    build_deb(repo, "another", "0.5", "xz")
    text = render_deb_index(str(repo))
    stanzas = text.split("\n\n")
    assert [s.split("\n")[0] for s in stanzas] == ["Package: another", "Package: tinypkg"]
    tiny = stanzas[1]
    data = deb.read_bytes()
    assert f"Filename: ./tinypkg_1%3a1.0-1_amd64.deb\nSize: {len(data)}\n" in tiny
    assert f"MD5sum: {hashlib.md5(data).hexdigest()}\n" in tiny
    assert f"SHA256: {hashlib.sha256(data).hexdigest()}\n" in tiny
    assert tiny.endswith("Description: a test package\n Long line one.\n .\n Long line two.\n")
    assert "Version: 1:1.0-1\nArchitecture: amd64\n" in tiny


@needs_dpkg_deb
@pytest.mark.skipif(shutil.which("dpkg-scanpackages") is None, reason="dpkg-dev is not installed")
def test_index_has_dpkg_scanpackages_fields(repo):
    """Same fields and values as dpkg-dev's own index (field order may differ)."""
    build_deb(repo, "tinypkg", "1:1.0-1", "gzip", arch="amd64")
    build_deb(repo, "another", "0.5", "xz")
    theirs = subprocess.run(["dpkg-scanpackages", "-m", "."], cwd=repo, check=True, capture_output=True, text=True).stdout

    def by_package(text):
        return {dict(parse_control(s))["Package"]: dict(parse_control(s)) for s in text.strip().split("\n\n")}

    assert by_package(render_deb_index(str(repo))) == by_package(theirs)


@needs_dpkg_deb
def test_write_index_deterministic_and_idempotent(repo, tmp_path):
    build_deb(repo, "tinypkg", "1:1.0-1", "gzip")
    assert write_deb_index(str(repo), check_mode=True) == [DEB_INDEX, DEB_INDEX_GZ]
    assert not (repo / DEB_INDEX).exists()
    assert write_deb_index(str(repo)) == [DEB_INDEX, DEB_INDEX_GZ]
    first = (repo / DEB_INDEX_GZ).read_bytes()
    assert gzip.decompress(first) == (repo / DEB_INDEX).read_bytes()
    assert oct((repo / DEB_INDEX).stat().st_mode & 0o777) == "0o644"
    mtime = (repo / DEB_INDEX).stat().st_mtime_ns
    assert write_deb_index(str(repo)) == []
    assert (repo / DEB_INDEX).stat().st_mtime_ns == mtime
    # a copy elsewhere gives the same bytes (no time stamps, no names)
    other = tmp_path / "copy"
    other.mkdir()
    shutil.copy2(next(repo.glob("*.deb")), other)
    write_deb_index(str(other))
    assert (other / DEB_INDEX_GZ).read_bytes() == first
    # a new package changes the index
    build_deb(repo, "zzz", "2", "xz")
    assert write_deb_index(str(repo)) == [DEB_INDEX, DEB_INDEX_GZ]
    assert "Package: zzz" in (repo / DEB_INDEX).read_text()


@needs_dpkg_deb
def test_corrupt_deb_fails_naming_it(repo):
    deb = build_deb(repo, "tinypkg", "1.0", "xz")
    deb.write_bytes(deb.read_bytes()[:200])
    with pytest.raises(OsPackageRepoError, match="tinypkg_1.0_all.deb"):
        render_deb_index(str(repo))
    deb.write_bytes(b"not a package")
    with pytest.raises(OsPackageRepoError, match=r"tinypkg_1.0_all.deb: not a Debian package"):
        render_deb_index(str(repo))


class FakeSystem:
    """Stand-in for run_command: records argv, answers dpkg-query, 'downloads' by building .debs."""

    def __init__(self, installed, fail_download=None):
        self.installed = installed
        self.calls = []
        self.fail_download = fail_download

    def which(self, name, required=False):
        return f"/usr/bin/{name}"

    def run(self, argv, cwd=None):
        self.calls.append((argv, cwd))
        if argv[0].endswith("dpkg-query"):
            return 0, "".join(f"ii \t{n}\t{a}\t{v}\n" for n, a, v in self.installed), ""
        if argv[-1] == "update":
            return 0, "", ""
        if "download" in argv:
            if self.fail_download:
                return 100, "", f"E: Version '{self.fail_download}' for 'gone' was not found\n"
            for spec in argv[argv.index("download") + 1:]:
                name, rest = spec.split(":", 1)
                arch, version = rest.split("=", 1)
                build_deb(Path(cwd), name, version, "xz", arch=arch)
            return 0, "", ""
        raise AssertionError(argv)


@needs_dpkg_deb
def test_collect_downloads_missing_prunes_and_is_idempotent(tmp_path):
    folder = tmp_path / "bundle" / "compute"
    system = FakeSystem([("tinypkg", "amd64", "1:1.0-1"), ("other", "all", "2.0")])

    def repo(check=False):
        return OsPackageRepo(str(folder), str(tmp_path / "scratch"), "Debian", system.run, system.which,
                             check_mode=check)

    check = repo(check=True).apply()
    assert check["changed"] and check["downloaded"] == ["other_2.0_all.deb", "tinypkg_1%3a1.0-1_amd64.deb"]
    assert not folder.exists()
    first = repo().apply()
    assert first["changed"] and first["packages"] == 2
    assert sorted(p.name for p in folder.iterdir()) == [
        DEB_INDEX, DEB_INDEX_GZ, "other_2.0_all.deb", "tinypkg_1%3a1.0-1_amd64.deb"]
    download = [argv for argv, cwd in system.calls if "download" in argv][0]
    assert download[-2:] == ["other:all=2.0", "tinypkg:amd64=1:1.0-1"]
    assert any(a.startswith("Dir::State::Lists=" + str(tmp_path / "scratch")) for a in download)
    system.calls.clear()
    second = repo().apply()
    assert not second["changed"] and second["actions"] == []
    assert [argv[0] for argv, cwd in system.calls] == ["/usr/bin/dpkg-query"]
    # an upgrade: the old file goes, the new one comes
    system.installed = [("tinypkg", "amd64", "1:1.1-1"), ("other", "all", "2.0")]
    third = repo().apply()
    assert third["removed"] == ["tinypkg_1%3a1.0-1_amd64.deb"] and third["downloaded"] == ["tinypkg_1%3a1.1-1_amd64.deb"]
    assert "Version: 1:1.1-1" in (folder / DEB_INDEX).read_text() and "1:1.0-1" not in (folder / DEB_INDEX).read_text()
    assert not (folder / ".partial").exists()


@needs_dpkg_deb
def test_collect_fails_naming_the_unavailable_package(tmp_path):
    system = FakeSystem([("gone", "amd64", "0.9")], fail_download="0.9")
    repo = OsPackageRepo(str(tmp_path / "b"), str(tmp_path / "s"), "Debian", system.run, system.which)
    with pytest.raises(OsPackageRepoError, match=r"E: Version '0.9' for 'gone' was not found"):
        repo.apply()
    assert not any(p.name.endswith(".deb") for p in (tmp_path / "b").iterdir())


def test_el_without_createrepo_fails_naming_it(tmp_path):
    folder = tmp_path / "el"
    folder.mkdir()

    def run(argv, cwd=None):
        assert argv[0].endswith("rpm")
        return 0, "", ""

    def which(name, required=False):
        return None if name == "createrepo_c" else f"/usr/bin/{name}"

    repo = OsPackageRepo(str(folder), str(tmp_path / "s"), "RedHat", run, which)
    with pytest.raises(OsPackageRepoError, match="createrepo_c is not installed"):
        repo.apply()


def test_index_only_on_missing_folder_fails(tmp_path):
    repo = OsPackageRepo(str(tmp_path / "nope"), str(tmp_path / "s"), "Debian", None, None, collect=False)
    with pytest.raises(OsPackageRepoError, match="nope does not exist"):
        repo.apply()
    assert os.path.isdir(tmp_path)
