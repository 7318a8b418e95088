"""Testinfra checks of the image container after the python_build converge, idempotence and error paths."""

import json

import pytest

ROOT = "/opt/ai_apps/webui_llama2"
PREFIX = f"{ROOT}/python_3.11.2"
PYTHON = f"{PREFIX}/bin/python3.11"
MODULES = ["ssl", "sqlite3", "ctypes", "lzma", "bz2", "zlib", "readline", "uuid", "_ctypes"]


def test_interpreter_reports_the_wanted_version(host):
    assert host.check_output(f"{PYTHON} -c 'import platform; print(platform.python_version())'") == "3.11.2"


def test_interpreter_lives_in_the_prefix(host):
    assert host.check_output(f"{PYTHON} -c 'import sys; print(sys.prefix)'") == PREFIX
    assert not host.file("/usr/local/bin/python3.11").exists


@pytest.mark.parametrize("module", MODULES)
def test_standard_module_imports(host, module):
    cmd = host.run(f"{PYTHON} -c 'import {module}'")
    assert cmd.rc == 0, cmd.stderr


def test_ssl_links_openssl(host):
    assert "OpenSSL 3" in host.check_output(f"{PYTHON} -c 'import ssl; print(ssl.OPENSSL_VERSION)'")


def test_pip_came_with_the_build(host):
    assert host.file(f"{PREFIX}/bin/pip3.11").content_string.startswith(f"#!{PYTHON}\n")
    out = host.check_output(f"{PREFIX}/bin/pip3.11 --version")
    assert f"from {PREFIX}/lib/python3.11/site-packages/pip " in out


def test_nothing_names_the_staging_folder(host):
    # pip's scripts and byte code name the prefix, never the temporary build folder
    # (sysconfig and the config Makefile record the build folder in every CPython build)
    assert host.run(f"grep -lI hpcllm-python-build- {PREFIX}/bin/*").stdout == ""
    assert host.run(f"grep -rl hpcllm-python-build- {PREFIX}/lib/python3.11/site-packages").stdout == ""


def test_build_record(host):
    record = json.loads(host.file(f"{PREFIX}/.hpcllm-build.json").content_string)
    assert record == {
        "version": "3.11.2",
        "sha256": "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
        "configure_args": [f"--prefix={PREFIX}", "--with-ensurepip=no", "--disable-test-modules"],
        "os_release": "Debian 12",
    }


def test_os_release_marker(host):
    marker = host.file(f"{ROOT}/.hpcllm-os-release")
    assert marker.content_string == "Debian 12\n"
    assert marker.mode == 0o644


def test_run_python_sh_puts_the_prefix_first(host):
    script = host.file(f"{ROOT}/run_python.sh")
    assert script.mode == 0o755
    out = host.check_output(
        f"env -u LD_LIBRARY_PATH {ROOT}/run_python.sh -c "
        "'import os, sys; print(sys.executable); print(os.environ[\"PATH\"].split(\":\")[0]); "
        "print(os.environ.get(\"LD_LIBRARY_PATH\", \"unset\"))'"
    ).splitlines()
    assert out == [PYTHON, f"{PREFIX}/bin", "unset"]


def test_run_python_sh_adds_pip_installed_cuda_libs(host):
    site = f"{PREFIX}/lib/python3.11/site-packages"
    host.check_output(f"mkdir -p {site}/nvidia/cublas/lib {site}/nvidia/cudnn/lib {site}/nvidia/cudnn/include")
    try:
        out = host.check_output(
            f"LD_LIBRARY_PATH=/usr/lib/x {ROOT}/run_python.sh -c "
            "'import os; print(os.environ[\"LD_LIBRARY_PATH\"])'"
        )
    finally:
        host.check_output(f"rm -rf {site}/nvidia")
    assert out.split(":") == [f"{site}/nvidia/cublas/lib", f"{site}/nvidia/cudnn/lib", "/usr/lib/x"]


def test_run_python_sh_passes_arguments_and_exit_code(host):
    cmd = host.run(f"{ROOT}/run_python.sh -c 'import sys; print(sys.argv[1:]); sys.exit(3)' a 'b c'")
    assert cmd.rc == 3
    assert cmd.stdout.strip() == "['a', 'b c']"


@pytest.mark.parametrize("pkg", ["make", "pkg-config"])
def test_dependencies_installed_before_are_kept(host, pkg):
    assert host.package(pkg).is_installed


@pytest.mark.parametrize("pkg", ["gcc", "libssl-dev", "libsqlite3-dev", "uuid-dev"])
def test_dependencies_the_role_added_are_removed(host, pkg):
    assert not host.package(pkg).is_installed


def test_removed_packages_are_forgotten(host):
    assert not host.file("/var/lib/hpcllm-webui/python_build-added-packages.json").exists


def test_no_build_folder_left(host):
    assert host.check_output("find /var/tmp /opt -maxdepth 3 -name 'hpcllm-python-build-*' -o -name '*.hpcllm-new' -o -name '*.hpcllm-old'") == ""


def test_build_compiled_through_the_compiler_cache(host):
    # python_build_ccache_dir: one stats_log entry per compiler call through ccache
    # (prepare's /etc/ccache.conf), naming the source as make passed it (relative for the
    # core, absolute for setup.py's extensions); CPython 3.11 compiles about 250
    # C files besides configure's conftest.c probes
    log = host.file("/var/log/ccache-stats.log").content_string
    sources = [line[2:] for line in log.splitlines() if line.startswith("# ")]
    compiled = [s for s in sources if s.endswith(".c") and not s.endswith("conftest.c")]
    assert len(compiled) >= 200, sources[:40]
    assert "Objects/abstract.c" in compiled
    assert any(s.startswith("/var/tmp/hpcllm-python-build-3.11.2/src/Modules/") for s in compiled)


def test_interpreter_records_plain_gcc(host):
    # the cache stays out of the interpreter: extensions built later need no ccache
    cc = host.check_output(f"{PYTHON} -c \"import sysconfig; print(sysconfig.get_config_var('CC'))\"")
    assert cc.split()[0] == "gcc", cc
    assert "ccache" not in host.check_output(f"{PYTHON} -c \"import sysconfig; print(sysconfig.get_config_var('LDSHARED'))\"")


def test_ccache_the_role_added_is_removed(host):
    assert not host.package("ccache").is_installed
