"""Testinfra checks of the real text-generation-webui (8466cf2) on a CPU, deployed by the webui and models roles.

The launcher runs as alice, as a user on a node would start it: the real server on the CPU
(no NVIDIA GPU here) behind its authenticating nginx proxy. The helpers (start, stop, the
proxy's printed lines, one request through the proxy) are the models scenario's, which
checks the same front door against the stand-in web UI.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "tests"))
from test_models import call, listeners, reach, server_pid, start, stop  # noqa: E402  pylint: disable=wrong-import-position

ROOT = "/opt/ai_apps/webui_llama2"
WEBUI = f"{ROOT}/text-generation-webui"
COMMIT = "8466cf229ab29ace6e336a96f81f4eda44ca94fa"
MODEL = "hpcllm-test_tiny-gpt2"
ALICE = "/home/alice/.local/share/hpcllm-webui/opt_ai_apps_webui_llama2"


def test_the_web_ui_is_upstreams_at_the_pinned_commit(host):
    assert host.check_output(f"git -C {WEBUI} rev-parse HEAD") == COMMIT
    # the real one: upstream's server.py and the API extension of that commit
    assert "def create_interface" in host.file(f"{WEBUI}/server.py").content_string
    assert host.file(f"{WEBUI}/extensions/api/blocking_api.py").is_file


def test_the_venv_holds_the_cpu_lock(host):
    out = host.check_output(f"{ROOT}/venv/bin/python -c 'import torch, transformers, gradio; "
                            "print(torch.__version__, transformers.__version__, gradio.__version__)'")
    assert out.split() == ["2.13.0+cpu", "4.33.2", "3.33.1"]


def test_the_tiny_model_came_from_the_hub_with_its_sha256(host):
    expected = json.loads(host.file("/srv/hub/expected.json").content_string)
    folder = f"{ROOT}/models/{MODEL}"
    for path, sha256 in expected["files"].items():
        assert host.file(f"{folder}/{path}").sha256sum == sha256, path


@pytest.fixture(scope="module")
def alice_server(host):
    """run_tiny.sh as alice, until /api/v1/model answers through the proxy (the real server takes seconds)."""
    pid, log = start(host, "alice", f"{ROOT}/run_tiny.sh")
    try:
        info = reach(host, pid, log)
        deadline = time.monotonic() + 240
        while True:
            got = call(host, info, "/api/v1/model", cred="key")
            if got["status"] == 200:
                break
            if host.run(f"kill -0 {pid}").rc != 0 or time.monotonic() > deadline:
                pytest.fail(f"the real server never answered: {got} / {host.file(log).content_string[-3000:]}")
            time.sleep(1)
        info["pid"], info["log"] = pid, log
        yield info
    finally:
        stop(host, pid)


def test_the_server_runs_on_the_cpu_as_alice(host, alice_server):
    server = server_pid(host, alice_server["pid"])
    cmdline = host.check_output(f"tr '\\0' ' ' < /proc/{server}/cmdline").split()
    assert "--cpu" in cmdline and "--model" in cmdline and MODEL in cmdline, cmdline
    assert host.check_output(f"stat -c %U /proc/{server}") == "alice"
    got = call(host, alice_server, "/api/v1/model", cred="key")
    assert json.loads(got["body"]) == {"result": MODEL}


def test_nothing_but_the_proxy_listens_off_loopback(host, alice_server):
    off = [(ip, port) for ip, port, _uid in listeners(host) if ip not in ("127.0.0.1", "::1")]
    assert off == [("0.0.0.0", alice_server["port"])], off


@pytest.mark.parametrize("path,data,answer", [
    ("/api/v1/generate", {"prompt": "the quick brown", "max_new_tokens": 8, "seed": 1}, "results"),
    ("/v1/completions", {"prompt": "the quick brown", "max_tokens": 8}, "choices"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}, "choices"),
])
def test_the_real_apis_answer_the_users_key_only(host, alice_server, path, data, answer):
    assert call(host, alice_server, path, method="POST", data=data)["status"] == 401
    assert call(host, alice_server, path, cred="key", wrong=True, method="POST", data=data)["status"] == 401
    got = call(host, alice_server, path, cred="key", method="POST", data=data)
    assert got["status"] == 200, got
    body = json.loads(got["body"])
    assert isinstance(body[answer], list) and body[answer], body


def test_the_real_stream_answers_through_the_proxy(host, alice_server):
    data = {"prompt": "the quick brown", "max_new_tokens": 8}
    got = call(host, alice_server, "/api/v1/stream", cred="key", data=data, ws=True)
    assert got["status"] == 101, got
    events = [frame["event"] for frame in got["frames"]]
    assert events[-1] == "stream_end" and "text_stream" in events, events


def test_the_real_admin_endpoint_needs_the_admin_key(host, alice_server):
    data = {"action": "info"}
    assert call(host, alice_server, "/api/v1/model", cred="key", method="POST", data=data)["status"] == 403
    got = call(host, alice_server, "/api/v1/model", cred="admin-key", method="POST", data=data)
    assert got["status"] == 200, got
    result = json.loads(got["body"])["result"]
    assert result["model_name"] == MODEL and result["shared.args"]["cpu"] is True, result


def test_the_real_ui_asks_for_the_login(host, alice_server):
    assert call(host, alice_server, "/")["status"] == 401
    got = call(host, alice_server, "/", cred="login")
    assert got["status"] == 200 and "gradio" in got["body"].lower(), got["status"]


def test_the_proxy_presents_the_certificate_it_printed(host, alice_server):
    got = call(host, alice_server, "/api/v1/model", cred="key")
    der = host.check_output(f"openssl x509 -in {alice_server['cert']} -outform DER | sha256sum").split()[0]
    assert got["cert_sha256"] == der and alice_server["fingerprint"].replace(":", "").lower() == der


def test_a_second_users_server_on_the_node_takes_only_its_own_keys(host, alice_server):
    """bob launches the same model on the same node while alice's server runs: other ports, and each real server
    behind its proxy refuses the other user's key and login."""
    pid, log = start(host, "bob", f"{ROOT}/run_tiny.sh", log="/tmp/bob-tiny.log")
    try:
        bob = reach(host, pid, log)
        deadline = time.monotonic() + 240
        while call(host, bob, "/api/v1/model", user="bob", cred="key")["status"] != 200:
            if host.run(f"kill -0 {pid}").rc != 0 or time.monotonic() > deadline:
                pytest.fail(f"bob's server never answered: {host.file(log).content_string[-3000:]}")
            time.sleep(1)
        refused = [call(host, alice_server, "/api/v1/model", user="bob", cred="key")["status"],
                   call(host, bob, "/api/v1/model", user="alice", cred="key")["status"],
                   call(host, alice_server, "/", user="bob", cred="login")["status"],
                   call(host, bob, "/", user="alice", cred="login")["status"]]
        own = [call(host, alice_server, "/api/v1/model", cred="key")["status"],
               call(host, bob, "/api/v1/model", user="bob", cred="key")["status"]]
    finally:
        stop(host, pid)
    ports = [i[k] for i in (alice_server, bob) for k in ("port", "ui", "api", "stream", "openai")]
    assert len(set(ports)) == len(ports), ports
    assert refused == [401] * 4 and own == [200, 200], (refused, own)


def ui_event(config, first, last, count):
    """The fn_index of the UI's one event whose inputs are `count` components labelled `first` ... `last`."""
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    found = [n for n, dep in enumerate(config["dependencies"])
             if len(dep["inputs"]) == count and labels[dep["inputs"][0]] == first and labels[dep["inputs"][-1]] == last]
    assert len(found) == 1, (first, last, found)
    return found[0]


def ui_call(host, info, fn_index, data):
    """One event of the UI as the browser sends it (Gradio's /run/predict), with alice's login, through the proxy."""
    got = call(host, info, "/run/predict", cred="login", method="POST",
               data={"fn_index": fn_index, "data": data, "session_hash": "hpcllmtest"})
    assert got["status"] == 200, got
    return json.loads(got["body"])


def test_what_the_ui_saves_and_deletes_lands_in_the_users_folder(host, alice_server):
    """Upstream saves only below the folder its modules/utils.py resolves to: the user's copy of the code."""
    config = json.loads(call(host, alice_server, "/config", cred="login")["body"])
    save = ui_event(config, "File folder", "File contents", 3)
    delete = ui_event(config, "File folder", "File name", 2)
    character = ui_event(config, "Character's name", "File name", 5)
    files = {"presets/": "hpcllm-test.yaml", "prompts/": "hpcllm-test.txt", "instruction-templates/": "hpcllm-test.yaml",
             "": "settings.yaml"}
    for folder, name in files.items():
        ui_call(host, alice_server, save, [folder, name, f"saved by alice: {folder or 'session'}\n"])
    ui_call(host, alice_server, character, ["Tiny", "Hello.", "A tiny test character.", None, "hpcllm-test"])
    for folder, name in files.items():
        saved = host.file(f"{ALICE}/{folder}{name}")
        assert saved.is_file and saved.user == "alice", folder
        assert saved.content_string == f"saved by alice: {folder or 'session'}\n"
        assert not host.file(f"{WEBUI}/{folder}{name}").exists
    saved = host.file(f"{ALICE}/characters/hpcllm-test.yaml")
    assert saved.user == "alice" and "A tiny test character." in saved.content_string
    assert not host.file(f"{WEBUI}/characters/hpcllm-test.yaml").exists

    ui_call(host, alice_server, delete, ["prompts/", "hpcllm-test.txt"])
    assert not host.file(f"{ALICE}/prompts/hpcllm-test.txt").exists
    assert host.file(f"{ALICE}/presets/hpcllm-test.yaml").exists


def test_the_model_tabs_settings_land_in_the_users_models_folder(host, alice_server):
    """The Model tab's "Save settings": the UI's values gathered (the loader chosen, as the browser sends them), then
    saved to models/config-user.yaml, the user's own since models/ has two tiers."""
    config = json.loads(call(host, alice_server, "/config", cred="login")["body"])
    components = {c["id"]: c for c in config["components"]}
    button = [n for n, dep in enumerate(config["dependencies"])
              if any(components[t].get("props", {}).get("value") == "Save settings" for t in dep["targets"])]
    gather = [n for n in button if len(config["dependencies"][n]["inputs"]) > 2]
    save = [n for n in button if len(config["dependencies"][n]["inputs"]) == 2]
    assert len(gather) == 1 and len(save) == 1, button
    values = [("Transformers" if components[i].get("props", {}).get("label") == "Model loader"
               else components[i].get("props", {}).get("value")) for i in config["dependencies"][gather[0]]["inputs"]]
    ui_call(host, alice_server, gather[0], values)
    answer = ui_call(host, alice_server, save[0], [MODEL, None])
    assert "saved to models/config-user.yaml" in answer["data"][0], answer
    saved = host.file(f"{ALICE}/models/config-user.yaml")
    assert saved.user == "alice" and f"{MODEL}$:" in saved.content_string and "loader: Transformers" in saved.content_string
    assert not host.file(f"{WEBUI}/models/config-user.yaml").exists
    assert not host.file(f"{ROOT}/models/config-user.yaml").exists


def test_a_users_own_model_is_listed_and_loaded_beside_the_shared_ones(host, alice_server):
    host.check_output(f"runuser -u alice -- cp -R {ROOT}/models/{MODEL} {ALICE}/models/alice-tiny")
    listed = call(host, alice_server, "/api/v1/model", cred="admin-key", method="POST", data={"action": "list"})
    assert listed["status"] == 200, listed
    assert {MODEL, "alice-tiny"} <= set(json.loads(listed["body"])["result"]), listed["body"]
    loaded = call(host, alice_server, "/api/v1/model", cred="admin-key", method="POST",
                  data={"action": "load", "model_name": "alice-tiny", "args": {"cpu": True}})
    assert loaded["status"] == 200 and json.loads(loaded["body"])["result"]["model_name"] == "alice-tiny", loaded
    got = call(host, alice_server, "/api/v1/generate", cred="key", method="POST", data={"prompt": "the", "max_new_tokens": 4})
    assert got["status"] == 200 and json.loads(got["body"])["results"], got
    # the shared tier is as the role made it
    assert not host.file(f"{ROOT}/models/alice-tiny").exists and not host.file(f"{WEBUI}/models/alice-tiny").exists


def test_the_users_files_survive_the_next_launch(host, alice_server):
    stop(host, alice_server["pid"])
    pid, log = start(host, "alice", f"{ROOT}/run_tiny.sh", log="/tmp/alice-again.log")
    try:
        reach(host, pid, log)
    finally:
        stop(host, pid)
    assert "saved by alice: presets/" in host.file(f"{ALICE}/presets/hpcllm-test.yaml").content_string
    assert host.file(f"{ALICE}/characters/hpcllm-test.yaml").exists
    # the code was alice's copy already and equal to the shared one: not copied again
    assert "copied the web UI's" not in host.file(log).content_string


def test_stopping_the_launcher_leaves_no_process(host):
    pid, log = start(host, "alice", f"{ROOT}/run_tiny.sh", log="/tmp/alice-stop.log")
    info = reach(host, pid, log)
    stop(host, pid)
    time.sleep(1)
    left = host.run("pgrep -u alice -a .").stdout
    assert left == "", left
    assert ("0.0.0.0", info["port"]) not in [(ip, port) for ip, port, _uid in listeners(host)]
