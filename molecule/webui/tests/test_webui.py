"""Testinfra checks of the image container after the webui converge, idempotence and side effects."""

import hashlib
import json
import time
from pathlib import Path

import pytest

ROOT = "/opt/ai_apps/webui_llama2"
WEBUI = f"{ROOT}/text-generation-webui"
CONF = f"{ROOT}/webui"
VENV_PY = f"{ROOT}/venv/bin/python"
# the stand-in's commits (tests/webui_standin/make_repo.sh makes the same ids everywhere)
_COMMITS = json.loads((Path(__file__).resolve().parents[3] / "tests" / "webui_standin" / "commits.json").read_text())
COMMIT = _COMMITS["main"]  # HEAD of the stand-in's main
TAG_COMMIT = _COMMITS["v0.0-standin"]


def git(host, *args, root=WEBUI):
    return host.check_output("git -c safe.directory='*' -C %s" + " %s" * len(args), root, *args)


def launch_env(host, root=ROOT):
    """The variables of launch.env as bash sees them, arrays as lists."""
    script = (
        f"source {root}/webui/launch.env; "
        "python3 -c 'import json,sys; a=sys.argv[1:]; i=a.index(\"--\"); j=a.index(\"---\"); k=a.index(\"----\"); "
        "print(json.dumps({\"DIR\": a[0], \"PYTHON\": a[1], \"SETTINGS\": a[2], \"CUDA\": a[3], "
        "\"ARGS\": a[4:i], \"ENV\": a[i+1:j], \"USER_DIRS\": a[j+1:k], \"LOGIN\": a[k+1]}))' "
        '"$WEBUI_DIR" "$WEBUI_PYTHON" "$WEBUI_SETTINGS" "$WEBUI_CUDA_LIBS" "${WEBUI_ARGS[@]}" -- "${WEBUI_ENV[@]}" --- '
        '"${WEBUI_USER_DIRS[@]}" ---- "$WEBUI_LOGIN"'
    )
    return json.loads(host.check_output("bash -c %s", script))


def test_checkout_is_at_the_pinned_commit(host):
    assert git(host, "rev-parse", "HEAD") == COMMIT
    assert json.loads(host.file(f"{CONF}/checkout.json").content_string) == {
        "repo": "/srv/standin/webui", "version": COMMIT, "commit": COMMIT}


def test_discarded_changes_are_gone_and_ignored_files_stay(host):
    # side effect: server.py edited and css/main.css removed, then discarded
    assert git(host, "status", "--porcelain", "--untracked-files=no") == ""
    assert host.file(f"{WEBUI}/css/main.css").exists
    assert host.file(f"{WEBUI}/training/datasets/mine.json").exists


def test_venv_imports_the_requirements(host):
    out = host.check_output(
        f"{VENV_PY} -c 'import sys, yaml, markdown, websockets, six; "
        "print(sys.prefix, yaml.__version__, markdown.__version__, websockets.__version__, six.__version__)'")
    assert out == f"{ROOT}/venv 6.0.1 3.4.4 11.0.3 1.16.0"


def test_venv_holds_exactly_the_lock(host):
    frozen = host.check_output(f"{VENV_PY} -m pip freeze --disable-pip-version-check").splitlines()
    assert sorted(frozen, key=str.lower) == ["Markdown==3.4.4", "PyYAML==6.0.1", "six==1.16.0", "websockets==11.0.3"]


def test_lock_and_its_record(host):
    lock = host.file(f"{CONF}/lock.txt")
    assert lock.mode == 0o644
    assert any(line.startswith("PyYAML==6.0.1 ") for line in lock.content_string.splitlines())
    digest = hashlib.sha256(lock.content).hexdigest()
    assert host.file(f"{CONF}/lock.sha256").content_string == digest + "\n"
    # what pip installed with --require-hashes: the lock's lines as they are (every one hashed)
    hashed = host.file(f"{CONF}/lock-hashed.txt")
    assert hashed.mode == 0o644 and hashed.user == "root"
    wanted = [line for line in lock.content_string.splitlines() if line and not line.startswith("#")]
    assert [line for line in hashed.content_string.splitlines() if not line.startswith("#")] == wanted
    assert all(" --hash=sha256:" in line for line in wanted)


def test_gpu_record_read_from_the_venv(host):
    """R/webui/torch-gpu.txt: what the launchers check GPUs against, read from the venv after the
    install (the stand-in's lock has no torch: nothing to check, said as such)."""
    record = host.file(f"{CONF}/torch-gpu.txt")
    assert record.mode == 0o644
    lines = [line for line in record.content_string.splitlines() if not line.startswith("#")]
    assert lines == ["WEBUI_LOCK=lock.txt", "WEBUI_EXTRA_INDEX=", "TORCH_VERSION=", "TORCH_CUDA=", "TORCH_ARCHS="]


def test_extra_wheel_url_was_fetched_into_the_wheelhouse(host):
    assert host.file(f"{ROOT}/wheelhouse/six-1.16.0-py2.py3-none-any.whl").exists


def test_no_shared_password_file(host):
    """The UI login is each user's own (made by the launcher); R holds no password, and the
    shared file an earlier release wrote (left there by the side effect) is gone."""
    assert not host.file(f"{CONF}/gradio-auth.txt").exists
    assert host.run(f"grep -rl -e old-shared-password -e converge-pass {ROOT}").stdout == ""


def test_the_tree_is_roots_and_holds_no_planted_file(host):
    assert host.run(f"find {ROOT} ! -user root -print -quit").stdout == ""
    assert not host.file(f"{ROOT}/venv/lib/python3.11/site-packages/zz-planted.pth").exists
    assert not host.file("/var/tmp/hpcllm-planted-ran-as-root").exists


def test_settings_file(host):
    settings = host.file(f"{CONF}/settings.yaml")
    assert settings.mode == 0o644
    assert settings.content_string == "max_new_tokens: 2048\nmode: instruct\nseed: 0\ntruncation_length: 4096\n"


def test_launch_env(host):
    env = launch_env(host)
    assert host.file(f"{CONF}/launch.env").mode == 0o644
    assert env["DIR"] == WEBUI
    assert env["PYTHON"] == VENV_PY
    assert env["SETTINGS"] == f"{CONF}/settings.yaml"
    assert env["CUDA"] == f"{ROOT}/venv/lib/python3.11/site-packages/nvidia/*/lib"
    # webui_access proxy (the default): no --listen, no ports (the launcher picks free ones on 127.0.0.1)
    assert env["ARGS"] == ["--api", "--extensions", "openai", "--settings", f"{CONF}/settings.yaml"]
    assert env["ENV"] == ["NO_PROXY=127.0.0.1,localhost", "HF_HUB_OFFLINE=1"]
    assert env["USER_DIRS"] == ["logs", "characters", "presets", "prompts", "instruction-templates", "training/datasets",
                                "training/formats", "loras"]
    assert env["LOGIN"] == "1"
    front = host.check_output(
        "bash -c %s", f"source {CONF}/launch.env; echo \"$WEBUI_ACCESS|$WEBUI_API|$WEBUI_OPENAI|${{WEBUI_PORTS[*]}}|"
        "$WEBUI_PROXY_PORTS|$WEBUI_NGINX|$WEBUI_TLS_CERT|$WEBUI_TLS_KEY\"")
    assert front == "proxy|1|1|7860 5000 5005 5001||/usr/sbin/nginx||"
    assert "marker" not in host.file(f"{CONF}/launch.env").content_string
    assert "converge-pass" not in host.file(f"{CONF}/launch.env").content_string


def test_the_proxy_packages_are_installed_and_the_images_nginx_service_is_off(host):
    """webui_access proxy: nginx and openssl from the image's own packages; Debian's package enables
    nginx.service (a default site on port 80 of every node): the role disabled it."""
    assert host.package("nginx").is_installed and host.package("openssl").is_installed
    assert host.file("/usr/sbin/nginx").mode & 0o111
    assert host.file("/lib/systemd/system/nginx.service").exists
    assert not host.file("/etc/systemd/system/multi-user.target.wants/nginx.service").exists


def test_training_folders_and_dataset(host):
    assert host.file(f"{WEBUI}/training/datasets").is_directory
    assert host.file(f"{WEBUI}/training/formats").is_directory
    staged = host.file(f"{WEBUI}/training/datasets/alpaca-mini.json")
    assert staged.mode == 0o644
    assert json.loads(staged.content_string)[1]["output"] == "5"


def test_tag_root_resolved_the_tag_and_reused_the_wheelhouse(host):
    assert git(host, "rev-parse", "HEAD", root="/opt/hpcllm-tag/text-generation-webui") == TAG_COMMIT
    assert not host.file("/opt/hpcllm-tag/wheelhouse").exists
    assert launch_env(host, "/opt/hpcllm-tag")["LOGIN"] == "0"
    args = launch_env(host, "/opt/hpcllm-tag")["ARGS"]
    assert "--listen" not in args and "--gradio-auth-path" not in args
    assert host.check_output("/opt/hpcllm-tag/venv/bin/python -c 'import yaml; print(yaml.__version__)'") == "6.0.1"


def test_failed_version_left_no_record(host):
    assert not host.file("/opt/hpcllm-badversion/webui/checkout.json").exists
    assert not host.file("/opt/hpcllm-badversion/venv").exists


@pytest.fixture()
def server(host):
    """server.py from the checkout, started with the venv python and launch.env's arguments."""
    start = (
        f"source {CONF}/launch.env; cd \"$WEBUI_DIR\"; "
        "setsid env \"${WEBUI_ENV[@]}\" \"$WEBUI_PYTHON\" server.py \"${WEBUI_ARGS[@]}\" "
        ">/tmp/webui-server.log 2>&1 </dev/null & echo $!"
    )
    pid = host.check_output("bash -c %s", start)
    yield pid
    host.run(f"kill {pid}")


def fetch(host, url, auth=None):
    code = (
        "import base64, sys, urllib.request; r = urllib.request.Request(sys.argv[1]); "
        "a = sys.argv[2:]; a and r.add_header('Authorization', 'Basic ' + base64.b64encode(a[0].encode()).decode()); "
        "print(urllib.request.urlopen(r, timeout=5).read().decode())"
    )
    return host.run(f"{VENV_PY} -c %s %s {'%s' if auth else ''}", code, url, *([auth] if auth else []))


def test_server_answers_with_the_launch_env(host, server):
    for _attempt in range(60):
        result = fetch(host, "http://127.0.0.1:5000/api/v1/model")
        if result.rc == 0:
            break
        time.sleep(0.5)
    log = host.run("cat /tmp/webui-server.log").stdout
    assert result.rc == 0, log
    assert json.loads(result.stdout) == {"result": "None"}
    assert json.loads(fetch(host, "http://127.0.0.1:5001/v1/models").stdout)["object"] == "list"
    # started as launch.env says, without the launcher: no login (the launcher adds each user's)
    state = json.loads(fetch(host, "http://127.0.0.1:7860/standin/state").stdout)
    assert state["cwd"] == WEBUI
    assert state["settings"]["truncation_length"] == 4096
    assert state["argv"][1:] == launch_env(host)["ARGS"]
    assert "Loading settings from" in log
