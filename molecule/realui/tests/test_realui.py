"""Testinfra checks of the real text-generation-webui (8466cf2) on a CPU, deployed by the webui and models roles.

The launcher runs as alice, as a user on a node would start it: the real server on the CPU
(no NVIDIA GPU here) behind its authenticating nginx proxy. The helpers (start, stop, the
proxy's printed lines, one request through the proxy) are the models scenario's, which
checks the same front door against the stand-in web UI. The UI's events go through Gradio's
queue as the browser sends them (tests/webui_real/ui_client.py); the OpenAI clients run in
venvs of their own that prepare.yml fills offline (/srv/openai-0.28, /srv/openai-1).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "tests"))
from test_models import call, keys_file, listeners, reach, server_pid, start, stop  # noqa: E402  pylint: disable=wrong-import-position

ROOT = "/opt/ai_apps/webui_llama2"
WEBUI = f"{ROOT}/text-generation-webui"
COMMIT = "8466cf229ab29ace6e336a96f81f4eda44ca94fa"
MODEL = "hpcllm-test_tiny-gpt2"
ALICE = "/home/alice/.local/share/hpcllm-webui/opt_ai_apps_webui_llama2"
LORA = "hpcllm-test-lora"
# what alice downloads with the Model tab: https://huggingface.co/OWN_REPO is prepare.yml's HTTPS hub stand-in on
# 127.0.0.1:443 (etc_hosts), its certificate from a test CA handed to her server as REQUESTS_CA_BUNDLE
OWN_REPO = "hpcllm-test/tiny-gpt2-own"
OWN_MODEL = "hpcllm-test_tiny-gpt2-own"
HUB_CA = "/srv/hub-tls/ca.crt"


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


def serve(host, pid, log):
    """What the launcher printed, once the real server behind its proxy answers /api/v1/model (it takes seconds)."""
    info = reach(host, pid, log)
    deadline = time.monotonic() + 240
    while True:
        got = call(host, info, "/api/v1/model", cred="key")
        if got["status"] == 200:
            break
        if host.run(f"kill -0 {pid}").rc != 0 or time.monotonic() > deadline:
            pytest.fail(f"the real server never answered: {got} / {host.file(log).content_string[-3000:]}")
        time.sleep(0.5)
    info["pid"], info["log"] = pid, log
    return info


@pytest.fixture(scope="module")
def alice_server(host):
    """run_tiny.sh as alice, until /api/v1/model answers through the proxy; requests in the server (the Model tab's
    downloader) trusts the test CA of the HTTPS hub stand-in."""
    pid, log = start(host, "alice", f"{ROOT}/run_tiny.sh", env=f"REQUESTS_CA_BUNDLE={HUB_CA}")
    try:
        yield serve(host, pid, log)
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


def test_the_raw_chat_api_example_answers_the_users_key(host, alice_server):
    """api-examples/api-example-chat.py's request (a few tokens) through the proxy: the user's key, a reply in the history."""
    data = {"user_input": "Hello from alice", "max_new_tokens": 8, "history": {"internal": [], "visible": []}, "mode": "instruct",
            "character": "Example", "instruction_template": "Vicuna-v1.1", "your_name": "You", "regenerate": False, "_continue": False}
    assert call(host, alice_server, "/api/v1/chat", method="POST", data=data)["status"] == 401
    got = call(host, alice_server, "/api/v1/chat", cred="key", method="POST", data=data)
    assert got["status"] == 200, got
    history = json.loads(got["body"])["results"][0]["history"]
    assert len(history["visible"]) == 1 and history["visible"][0][0] == "Hello from alice", history
    assert isinstance(history["visible"][0][1], str), history


# One chat completion with the user's key, one with the README's dummy key (the proxy refuses it); prints what came back.
OPENAI_CHAT = {
    # as the openai extension's README uses it: OPENAI_API_BASE and OPENAI_API_KEY from the environment
    "0.28": """
import json, openai
ask = dict(model="x", messages=[{"role": "user", "content": "Teach me about the ocean."}], max_tokens=8)
answer = openai.ChatCompletion.create(**ask)
try:
    openai.ChatCompletion.create(api_key="sk-111111111111111111111111111111111111111111111111", **ask)
    refused = None
except openai.error.AuthenticationError as error:  # the proxy's 401 is in the OpenAI API's error format
    refused = error.http_status
print(json.dumps({"version": openai.version.VERSION, "model": answer["model"], "content": answer["choices"][0]["message"]["content"],
                  "refused": refused}))
""",
    "1": """
import json, os, openai
from openai import OpenAI
ask = dict(model="x", messages=[{"role": "user", "content": "Teach me about the ocean."}], max_tokens=8)
answer = OpenAI(base_url=os.environ["OPENAI_API_BASE"], api_key=os.environ["OPENAI_API_KEY"]).chat.completions.create(**ask)
try:
    OpenAI(base_url=os.environ["OPENAI_API_BASE"], api_key="sk-111111111111111111111111111111111111111111111111").chat.completions.create(**ask)
    refused = None
except openai.AuthenticationError as error:
    refused = error.status_code
print(json.dumps({"version": openai.__version__, "model": answer.model, "content": answer.choices[0].message.content, "refused": refused}))
""",
}


def openai_python(host, version):
    """The python of /srv/openai-VERSION, once prepare.yml's background install of it has ended well."""
    rc = host.file(f"/srv/openai-{version}.rc")
    for _attempt in range(240):
        if rc.exists:
            break
        time.sleep(0.5)
    assert rc.exists and rc.content_string.strip() == "0", host.file(f"/srv/openai-{version}.log").content_string
    return f"/srv/openai-{version}/bin/python"


@pytest.mark.parametrize("version,pin", [("0.28", "0.28.1"), ("1", "1.109.1")])
def test_the_openai_clients_answer_through_the_proxy_with_the_users_key(host, alice_server, version, pin):
    """openai 0.28 (openai.ChatCompletion) and 1.x (OpenAI(base_url=..., api_key=...)) as alice: OPENAI_API_BASE the
    URL the launcher printed, the key from her keys file, the proxy's certificate trusted (requests and httpx)."""
    cert = alice_server["cert"]
    env = f"OPENAI_API_BASE={alice_server['url']}/v1 REQUESTS_CA_BUNDLE={cert} SSL_CERT_FILE={cert}"
    script = 'export OPENAI_API_KEY="$(sed -n "s/^# key: //p" "$1")"; exec "$2" -c "$3"'
    res = host.run(f"runuser -u alice -- env {env} sh -c {shlex.quote(script)} sh {keys_file('alice')} "
                   f"{openai_python(host, version)} {shlex.quote(OPENAI_CHAT[version])}")
    assert res.rc == 0, res.stdout + res.stderr
    answer = json.loads(res.stdout)
    assert answer["version"] == pin and answer["model"] == MODEL and isinstance(answer["content"], str), answer
    assert answer["refused"] == 401, answer


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


def ui_queue(host, info, events, user="alice"):
    """Events of the UI run through Gradio's queue as the browser runs them (tests/webui_real/ui_client.py: one
    session, in order), with the user's login, through the proxy; each must succeed."""
    args = [info["url"], "--cacert", info["cert"], "--keys", keys_file(user), "--events", json.dumps(events)]
    res = host.run(f"{ROOT}/venv/bin/python /srv/webui_real/ui_client.py " + " ".join(shlex.quote(a) for a in args))
    assert res.rc == 0, res.stdout + res.stderr
    results = json.loads(res.stdout)
    summary = [(r.get("fn_index"), r.get("status"), r.get("messages"), str(r.get("output", r.get("error")))[:500]) for r in results]
    assert len(results) == len(events) and all(r.get("success") for r in results), summary
    return results


def ui_values(config, fn_index, values):
    """An event's inputs as the browser sends them: what the user set (`values`, by label or elem_id), else the
    component's value (a textbox without one sends ""), null for a State (the server keeps it for the session)."""
    components = {c["id"]: c for c in config["components"]}
    data = []
    for i in config["dependencies"][fn_index]["inputs"]:
        kind, props = components[i]["type"], components[i].get("props", {})
        if kind == "state":
            data.append(None)
        elif props.get("label") in values or props.get("elem_id") in values:
            data.append(values.get(props.get("label"), values.get(props.get("elem_id"))))
        else:
            data.append(props.get("value", "" if kind == "textbox" else None))
    return data


def ui_chain(config, elem_id):
    """The fn_index of the click on the button `elem_id` and of each .then() after it, in the order the browser runs them."""
    components = {c["id"]: c for c in config["components"]}
    deps = config["dependencies"]
    chain = [n for n, dep in enumerate(deps)
             if dep["trigger"] == "click" and [components[t].get("props", {}).get("elem_id") for t in dep["targets"]] == [elem_id]]
    assert len(chain) == 1, chain
    while True:
        after = [n for n, dep in enumerate(deps) if dep.get("trigger_after") == chain[-1]]
        if not after:
            return chain
        assert len(after) == 1, after
        chain += after


def test_a_chat_turn_in_the_ui_is_saved_in_the_users_logs(host, alice_server):
    """The Chat tab's Generate (its chain: gather the UI's values, take the input, generate, gather, save the history)
    in chat mode with the Example character: the reply streams and the history lands in the user's logs/."""
    config = json.loads(call(host, alice_server, "/config", cred="login")["body"])
    chain = ui_chain(config, "Generate")
    # the tiny model has 256 positions: the prompt (the character's context) is cut to fit
    values = {"chat-input": "Hello from alice", "Mode": "chat", "Character": "Example", "max_new_tokens": 16,
              "Truncate the prompt up to this length": 200}
    results = ui_queue(host, alice_server, [[n, ui_values(config, n, values)] for n in chain])
    assert any("Hello from alice" in str(r["generating"]) for r in results), [r["messages"] for r in results]
    saved = host.file(f"{ALICE}/logs/persistent_Example.json")
    assert saved.is_file and saved.user == "alice"
    history = json.loads(saved.content_string)
    assert [turn[0] for turn in history["visible"]] == ["Hello from alice"], history
    assert not host.file(f"{WEBUI}/logs/persistent_Example.json").exists


def test_the_training_tab_trains_a_lora_into_the_users_loras(host, alice_server):
    """docs/Training-LoRAs.md in the UI: a formatted dataset in the user's training/datasets (the Dataset menu's refresh
    lists it), alpaca-format, Start LoRA Training with a tiny run on the CPU (1 epoch of 8 samples, cutoff 32, rank 4).
    The LoRA is saved in the user's loras/, not in the shared tree."""
    samples = [{"instruction": f"Name the colour {c}.", "output": f"{c}, {c} and {c}."}
               for c in ("red", "green", "blue", "black", "white", "brown", "pink", "grey")]
    host.check_output(f"runuser -u alice -- sh -c 'printf %s \"$1\" >\"$2\"' sh {shlex.quote(json.dumps(samples))} "
                      f"{ALICE}/training/datasets/hpcllm-test.json")
    config = json.loads(call(host, alice_server, "/config", cred="login")["body"])
    components = {c["id"]: c.get("props", {}) for c in config["components"]}
    deps = config["dependencies"]
    refresh = [n for n, dep in enumerate(deps) if not dep["inputs"] and [components[o].get("label") for o in dep["outputs"]] == ["Dataset"]]
    train = [n for n, dep in enumerate(deps) if [components[t].get("value") for t in dep["targets"]] == ["Start LoRA Training"]]
    assert len(refresh) == 1 and len(train) == 1, (refresh, train)
    listed = ui_queue(host, alice_server, [[refresh[0], []]])[0]["output"]["data"][0]
    assert "hpcllm-test" in listed["choices"], listed

    values = {"Name": LORA, "Epochs": 1, "Micro Batch Size": 4, "Batch Size": 4, "LoRA Rank": 4, "LoRA Alpha": 8,
              "Cutoff Length": 32, "Dataset": "hpcllm-test", "Data Format": "alpaca-format"}
    trained = ui_queue(host, alice_server, [[train[0], ui_values(config, train[0], values)]])[0]
    assert f"Done! LoRA saved to <code>loras/{LORA}</code>" in trained["output"]["data"][0], trained["generating"]
    assert any("Running" in str(step) for step in trained["generating"]), trained["generating"]
    for name in ("adapter_model.bin", "adapter_config.json"):
        saved = host.file(f"{ALICE}/loras/{LORA}/{name}")
        assert saved.is_file and saved.user == "alice" and saved.size > 0, name
    adapter = json.loads(host.file(f"{ALICE}/loras/{LORA}/adapter_config.json").content_string)
    # GPT-2's attention, from peft's table of target modules by model type
    assert adapter["r"] == 4 and adapter["target_modules"] == ["c_attn"], adapter
    assert not host.file(f"{WEBUI}/loras/{LORA}").exists and not host.file(f"{ROOT}/loras/{LORA}").exists


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


def test_the_model_tabs_downloader_fetches_a_hub_repo_into_the_users_models(host, alice_server):
    """The Model tab's "Download" (upstream's download-model.py in the server, its requests session asking
    https://huggingface.co: here the HTTPS hub stand-in) writes the repo into alice's own models/, the folder her server
    runs in, not into the shared tree; the menu's refresh then lists it beside the catalog's model."""
    expected = json.loads(host.file("/srv/hub/expected-own.json").content_string)
    own = f"{ALICE}/models/{OWN_MODEL}"
    # a verify run again starts from nothing (upstream skips files that are there)
    host.check_output(f"rm -rf {own}")
    assert host.check_output("getent hosts huggingface.co").split()[0] == "127.0.0.1", "huggingface.co is not the stand-in here"
    config = json.loads(call(host, alice_server, "/config", cred="login")["body"])
    components = {c["id"]: c for c in config["components"]}
    deps = config["dependencies"]
    menu = [i for i, c in components.items() if c["type"] == "dropdown" and c.get("props", {}).get("label") == "Model"]
    download = [n for n, dep in enumerate(deps)
                if dep["trigger"] == "click" and [components[t].get("props", {}).get("value") for t in dep["targets"]] == ["Download"]]
    refresh = [n for n, dep in enumerate(deps) if not dep["inputs"] and dep["outputs"] == menu]
    assert len(menu) == 1 and len(download) == 1 and len(refresh) == 1, (menu, download, refresh)
    assert [components[i].get("props", {}).get("label") for i in deps[download[0]]["inputs"]][0] == "Download model or LoRA"

    host.check_output("touch /tmp/hpcllm-download.mark")
    # the repo in the first box, no single file in the second
    fetched, listed = ui_queue(host, alice_server, [[download[0], [OWN_REPO, ""]], [refresh[0], []]])
    # the status box is Markdown, the steps as HTML: the folder is relative to the server's, alice's
    steps = [step[0].strip() for step in fetched["generating"]]
    assert f"<p>Downloading files to <code>models/{OWN_MODEL}/</code></p>" in steps, steps
    assert fetched["output"]["data"][0].strip() == "<p>Done!</p>", (steps, fetched["output"])

    assert host.file(own).is_directory and not host.file(own).is_symlink, f"{own} is not a folder of alice's"
    for path, sha256 in expected["files"].items():
        got = host.file(f"{own}/{path}")
        assert got.exists and got.sha256sum == sha256, f"{path}: not the hub's bytes"
    others = host.check_output(f"find {own} ! -user alice -printf '%u %P\\n'")
    assert others == "", f"files in alice's download that are not hers: {others}"
    metadata = host.file(f"{own}/huggingface-metadata.txt").content_string
    assert f"url: https://huggingface.co/{OWN_REPO}" in metadata and f"{expected['files']['model.safetensors']} model.safetensors" in metadata, metadata
    # nothing of the download (nor anything else of alice's) in the shared tree
    new = host.check_output(f"find {ROOT} \\( -newer /tmp/hpcllm-download.mark -o -user alice \\) -printf '%u %p\\n' | head -20")
    assert new == "", f"the download touched the shared tree: {new}"

    choices = listed["output"]["data"][0]["choices"]
    assert {MODEL, OWN_MODEL} <= set(choices), f"the model menu's refresh lists {choices}"


def test_the_next_launch_keeps_the_users_files_and_loads_her_lora(host, alice_server):
    """The next launch, given --lora NAME (the launcher passes it on to server.py), applies the LoRA trained above from
    the user's loras/; what she saved from the UI is still there."""
    stop(host, alice_server["pid"])
    pid, log = start(host, "alice", f"{ROOT}/run_tiny.sh --lora {LORA}", log="/tmp/alice-again.log")
    try:
        info = serve(host, pid, log)
        loaded = call(host, info, "/api/v1/model", cred="admin-key", method="POST", data={"action": "info"})
        got = call(host, info, "/api/v1/generate", cred="key", method="POST", data={"prompt": "Name the colour red.", "max_new_tokens": 4})
    finally:
        stop(host, pid)
    assert loaded["status"] == 200, loaded
    result = json.loads(loaded["body"])["result"]
    assert result["model_name"] == MODEL and result["lora_names"] == [LORA] and result["shared.args"]["lora"] == [LORA], result
    assert f"Applying the following LoRAs to {MODEL}: {LORA}" in host.file(log).content_string
    assert got["status"] == 200 and json.loads(got["body"])["results"], got

    assert "saved by alice: presets/" in host.file(f"{ALICE}/presets/hpcllm-test.yaml").content_string
    assert host.file(f"{ALICE}/characters/hpcllm-test.yaml").exists
    # the code was alice's copy already and equal to the shared one: not copied again
    assert "copied the web UI's" not in host.file(log).content_string


def processes_of(host, user):
    """The command lines of the user's processes (from /proc: the image has no procps)."""
    found = host.run(f"grep -l '^Uid:[[:space:]]*{host.user(user).uid}[[:space:]]' /proc/[0-9]*/status").stdout.split()
    return [host.run(f"tr '\\0' ' ' < {status.rsplit('/', 1)[0]}/cmdline").stdout for status in found]


def test_the_model_menu_lists_both_tiers_and_loads_the_users_choice(host):
    """run_webui_server.sh (webui_launch.sh --model-menu) as alice, her stdin a pipe typed into once the menu shows, as at
    a terminal: the real server's menu lists the catalog's model and the one she downloaded, loads the number typed
    (its log; /api/v1/model through the proxy with her key), and stopping it leaves no process of hers."""
    assert host.file(f"{ALICE}/models/{OWN_MODEL}").is_directory, "no model of alice's own: the Model tab's download test runs first"
    fifo = "/tmp/alice-menu.fifo"
    host.check_output(f"rm -f {fifo} && mkfifo -m 0600 {fifo}")
    # holds the pipe open (read-write: opening it so does not wait for the other end) so that the server reads no end
    # of file while it waits for the answer
    holder = int(host.check_output(f"setsid sleep 600 1<>{fifo} 2>/dev/null </dev/null & echo $!"))
    pid, log = start(host, "alice", f"{ROOT}/run_webui_server.sh", stdin=fifo, log="/tmp/alice-menu.log")
    try:
        deadline = time.monotonic() + 120
        while "Which one do you want to load?" not in host.file(log).content_string:
            if host.run(f"kill -0 {pid}").rc != 0 or time.monotonic() > deadline:
                pytest.fail(f"no model menu: {host.file(log).content_string[-3000:]}")
            time.sleep(0.3)
        printed = host.file(log).content_string
        menu = {name: number for number, name in re.findall(r"^(\d+)\. (\S+)$", printed, re.M)}
        assert MODEL in menu and OWN_MODEL in menu, f"the menu lists {menu}"
        host.check_output(f"printf '%s\\n' {menu[OWN_MODEL]} >{fifo}")
        info = serve(host, pid, log)
        server = server_pid(host, pid)
        cmdline = host.check_output(f"tr '\\0' ' ' < /proc/{server}/cmdline").split()
        got = call(host, info, "/api/v1/model", cred="key")
    finally:
        stop(host, pid)
        host.run(f"kill {holder}; rm -f {fifo}")
    assert "--model-menu" in cmdline and "--model" not in cmdline, cmdline
    assert f"Loading {OWN_MODEL}..." in host.file(log).content_string, host.file(log).content_string[-3000:]
    assert got["status"] == 200 and json.loads(got["body"]) == {"result": OWN_MODEL}, got
    for _attempt in range(20):
        left = processes_of(host, "alice")
        if not left:
            break
        time.sleep(0.25)
    assert left == [], f"alice's processes left after the stop: {left}"
    assert ("0.0.0.0", info["port"]) not in [(ip, port) for ip, port, _uid in listeners(host)], "her proxy still listens"


def test_stopping_the_launcher_leaves_no_process(host):
    pid, log = start(host, "alice", f"{ROOT}/run_tiny.sh", log="/tmp/alice-stop.log")
    info = reach(host, pid, log)
    assert processes_of(host, "alice"), "no process of alice's seen while her launcher runs"
    stop(host, pid)
    time.sleep(1)
    left = processes_of(host, "alice")
    assert left == [], left
    assert ("0.0.0.0", info["port"]) not in [(ip, port) for ip, port, _uid in listeners(host)]
