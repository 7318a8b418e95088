"""Testinfra checks of the bench master after the models play: downloads, links, launchers against the stand-in web UI."""

from __future__ import annotations

import base64
import json
import re
import secrets
import shlex
import string
import time

import pytest

ROOT = "/opt/ai_apps/webui_llama2"
WEBUI = f"{ROOT}/text-generation-webui"
SETTINGS = f"{ROOT}/webui/settings.yaml"
TOKEN = "hf_benchTOKEN_4f9c2e71d0"
LORA = ("hpcllm-test/WizardCoder-7B-LoRA", "main", "hpcllm-test_WizardCoder-7B-LoRA")
GPTQ_BRANCH = "gptq-4bit-32g-actorder_True"
# launcher, repo, revision, folder, load flags, loras, loader the stand-in picks
CATALOG = [
    ("run_wizard_13b_8bit_code.sh", "WizardLM/WizardCoder-Python-13B-V1.0", "main",
     "WizardLM_WizardCoder-Python-13B-V1.0", ["--load-in-8bit"], [], "Transformers"),
    ("run_wizard_7b_16bit_code.sh", "WizardLM/WizardCoder-Python-7B-V1.0", "main",
     "WizardLM_WizardCoder-Python-7B-V1.0", [], [LORA[2]], "Transformers"),
    ("run_wizard_13b_4bit_code.sh", "TheBloke/WizardCoder-Python-13B-V1.0-GPTQ", GPTQ_BRANCH,
     f"TheBloke_WizardCoder-Python-13B-V1.0-GPTQ_{GPTQ_BRANCH}", [], [], "AutoGPTQ"),
    ("run_wizard_7b_4bit_code.sh", "TheBloke/WizardCoder-Python-7B-V1.0-GPTQ", "main",
     "TheBloke_WizardCoder-Python-7B-V1.0-GPTQ", ["--no_inject_fused_attention"], [], "AutoGPTQ"),
    ("run_wizard_1b_32bit_code.sh", "WizardLM/WizardCoder-1B-V1.0", "main",
     "WizardLM_WizardCoder-1B-V1.0", [], [], "Transformers"),
]
DOWNLOADS = [(c[1], c[2], f"{ROOT}/models/{c[3]}") for c in CATALOG] + [
    (LORA[0], LORA[1], f"{ROOT}/loras/{LORA[2]}")]
USER_DIRS = ["logs", "characters", "presets", "prompts", "instruction-templates", "training/datasets", "training/formats",
             "loras"]
PATH = "/usr/local/bin:/usr/bin:/bin"


def user_dir(user):
    return f"/home/{user}/.local/share/hpcllm-webui/opt_ai_apps_webui_llama2"


@pytest.fixture(scope="module")
def expected(host):
    return json.loads(host.file("/srv/hub/expected.json").content_string)


def start(host, user, command, env="", stdin="/dev/null", log=None):
    """Start a launcher as `user` in a new session, detached; return its pid (in proxy mode the
    launcher stays, with nginx and the server as its children) and its log."""
    log = log or f"/tmp/{user}-{command.split()[0].rsplit('/', 1)[-1]}.log"
    cmd = (f"cd / && setsid env -i HOME=/home/{user} USER={user} PATH={PATH} {env} "
           f"setpriv --reuid={user} --regid={user} --init-groups {command} >{log} 2>&1 <{stdin} & echo $!")
    pid = int(host.check_output(cmd))
    return pid, log


def stop(host, pid):
    host.run(f"kill {pid}")
    for _attempt in range(50):
        if host.run(f"kill -0 {pid}").rc != 0:
            return
        time.sleep(0.1)
    host.run(f"kill -9 {pid}")


def keys_file(user):
    return f"{user_dir(user)}/.hpcllm-webui-keys.conf"


def reach(host, pid, log):
    """What the launcher printed once its proxy listens: URL, the server's loopback ports, the certificate."""
    out = ""
    for _attempt in range(100):
        out = host.file(log).content_string
        if "hpcllm-webui: health: " in out:
            break
        if host.run(f"kill -0 {pid}").rc != 0:
            pytest.fail(f"launcher exited: {out}")
        time.sleep(0.1)
    found = re.search(r"web UI on node (\S+): (https://[^/]+)/ \(an nginx of yours in front of 127\.0\.0\.1 ports "
                      r"UI (\d+), API (\d+), streaming (\d+), OpenAI API (\d+)\)", out)
    assert found, out
    node, url, ui, api, stream, openai = found.groups()
    cert = re.search(r"hpcllm-webui: TLS certificate (\S+) \(SHA-256 fingerprint ([0-9A-F:]+)\)", out)
    assert cert, out
    return {"node": node, "url": url, "port": int(url.rsplit(":", 1)[1]), "ui": int(ui), "api": int(api),
            "stream": int(stream), "openai": int(openai), "cert": cert.group(1), "fingerprint": cert.group(2),
            "out": out}


def wait_healthy(host, pid, log, user="alice"):
    """webui_health.sh as the user, through the proxy the launcher printed, with the user's key."""
    info = reach(host, pid, log)
    res = None
    for _attempt in range(100):
        res = host.run(f"runuser -u {user} -- {ROOT}/webui_health.sh --url {info['url']} --cacert {info['cert']}")
        if res.rc == 0:
            return res, info
        if host.run(f"kill -0 {pid}").rc != 0:
            pytest.fail(f"launcher exited: {host.file(log).content_string}")
        time.sleep(0.2)
    pytest.fail(f"never healthy: {res.stdout} {res.stderr} / {host.file(log).content_string}")


def call(host, info, path, user="alice", cred=None, wrong=False, method="GET", data=None, ws=False, swapcase=False):
    """One request through a launcher's proxy (molecule/models/proxy_client.py): the credential is
    read from `user`'s keys file inside the client, never put on a command line."""
    args = [f"{info['url']}{path}", "--cacert", info["cert"], "--keys", keys_file(user), "--method", method]
    if cred:
        args += ["--cred", cred]
    if wrong:
        args.append("--wrong")
    if swapcase:
        args.append("--swapcase")
    if data is not None:
        args += ["--data", json.dumps(data)]
    if ws:
        args.append("--ws")
    res = host.run("python3 /srv/proxy_client.py " + " ".join(shlex.quote(a) for a in args))
    assert res.rc == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def state(host, info, user="alice"):
    """The stand-in's state, through the proxy, logged in with the UI login of `user`."""
    got = call(host, info, "/standin/state", user=user, cred="login")
    assert got["status"] == 200, got
    return json.loads(got["body"])


def server_pid(host, launcher_pid):
    """The server.py child of a launcher."""
    children = host.check_output(f"grep -l '^PPid:[[:space:]]*{launcher_pid}$' /proc/[0-9]*/status || true").split()
    for status in children:
        pid = status.split("/")[2]
        if "server.py" in host.run(f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout:
            return int(pid)
    pytest.fail(f"no server.py below the launcher {launcher_pid}")


def environ(host, pid):
    raw = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def listeners(host):
    """(address, port, uid) of every listening TCP socket of the container (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in host.file(table).content_string.splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":
                continue
            addr, port = fields[1].split(":")
            if len(addr) == 8:
                ip = ".".join(str(b) for b in reversed(bytes.fromhex(addr)))
            else:
                ip = "::" if int(addr, 16) == 0 else ("::1" if addr.endswith("01000000") and int(addr[:24], 16) == 0 else addr)
            found.append((ip, int(port, 16), int(fields[7])))
    return found


# --------------------------------------------------------------------------- downloads
@pytest.mark.parametrize("repo, revision, dest", DOWNLOADS, ids=[d[2].rsplit("/", 1)[-1] for d in DOWNLOADS])
def test_download_at_the_expected_commit_with_correct_sha256(host, expected, repo, revision, dest):
    want = expected[repo][revision]
    manifest = json.loads(host.file(f"{dest}/.hf_model.json").content_string)
    assert manifest["repo_id"] == repo
    assert manifest["revision"] == revision
    assert manifest["commit"] == want["commit"]
    listing = host.check_output(f"cd {dest} && find . -type f ! -name .hf_model.json -printf '%P\\n' | sort").splitlines()
    assert listing == sorted(want["files"])
    sums = host.check_output(f"cd {dest} && sha256sum " + " ".join(shlex.quote(p) for p in sorted(want["files"])))
    got = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums.splitlines()}
    assert got == want["files"]


def test_gptq_branch_differs_from_main(host, expected):
    repo = "TheBloke/WizardCoder-Python-13B-V1.0-GPTQ"
    assert expected[repo][GPTQ_BRANCH]["commit"] != expected[repo]["main"]["commit"]
    quant = json.loads(host.file(f"{ROOT}/models/{CATALOG[2][3]}/quantize_config.json").content_string)
    assert quant["group_size"] == 32 and quant["desc_act"] is True


@pytest.mark.parametrize("sub, name", [("models", c[3]) for c in CATALOG] + [("loras", LORA[2])])
def test_relative_link_to_its_own_folder(host, sub, name):
    link = host.file(f"{WEBUI}/{sub}/{name}")
    assert link.is_symlink
    assert link.linked_to == f"{ROOT}/{sub}/{name}"
    assert host.check_output(f"readlink {WEBUI}/{sub}/{name}") == f"../../{sub}/{name}"


def test_disabled_entry_has_no_download_and_no_launcher(host):
    assert not host.file(f"{ROOT}/models/hpcllm-test_Extra-Model").exists
    assert not host.file(f"{ROOT}/run_extra_disabled.sh").exists
    assert not host.file(f"{WEBUI}/models/hpcllm-test_Extra-Model").exists


def test_token_is_written_nowhere(host):
    assert host.run(f"grep -rl {TOKEN} {ROOT} /home /tmp /root/.ansible /root/.cache").stdout == ""


# --------------------------------------------------------------------------- launchers
@pytest.mark.parametrize("launcher, repo, revision, name, flags, loras, loader", CATALOG, ids=[c[0] for c in CATALOG])
def test_launcher_starts_the_server_from_the_right_folder(host, launcher, repo, revision, name, flags, loras, loader):
    script = host.file(f"{ROOT}/{launcher}")
    assert script.mode == 0o755
    assert "# hpcllm.webui.models:catalog-launcher" in script.content_string
    pid, log = start(host, "alice", f"{ROOT}/{launcher}")
    try:
        health, info = wait_healthy(host, pid, log)
        st = state(host, info)
        env = environ(host, server_pid(host, pid))
    finally:
        stop(host, pid)
    assert f"model {name}" in health.stdout
    assert "no nvidia-smi on this node: the web UI runs on the CPU (--cpu; models_no_gpu: cpu)" in host.file(log).content_string
    # no NVIDIA GPU in the bench: the GPU check says --cpu (models_no_gpu: cpu), before the ports the
    # launcher picked on 127.0.0.1 and the model's flags
    expected_argv = ["server.py", "--api", "--extensions", "openai", "--settings", SETTINGS, "--cpu",
                     "--listen-port", str(info["ui"]), "--api-blocking-port", str(info["api"]),
                     "--api-streaming-port", str(info["stream"]), "--model", name]
    expected_argv += flags + (["--lora"] + loras if loras else [])
    assert st["argv"] == expected_argv
    assert st["cwd"] == user_dir("alice")
    assert st["uid"] == int(host.check_output("id -u alice"))
    assert st["model_path"] == f"{ROOT}/models/{name}"
    assert st["loader"] == loader
    assert st["loras"] == loras
    assert st["settings"]["max_new_tokens"] == 2048
    site = f"{ROOT}/venv/lib/python3.11/site-packages/nvidia"
    assert env["LD_LIBRARY_PATH"].split(":") == [f"{site}/cublas/lib", f"{site}/cudnn/lib"]
    assert set(env["NO_PROXY"].split(",")) >= {"127.0.0.1", "localhost"}
    assert env["OPENEDAI_PORT"] == str(info["openai"])


def test_launcher_runs_the_gpu_check_first(host):
    """With a GPU visible (the nvidia-smi stand-in first on PATH) the launcher asks nvidia-smi and does
    not add --cpu; the stand-in web UI's venv has no torch, which the check says instead of judging."""
    gpus = "0|GPU-5a7f1c2e|NVIDIA H100 80GB HBM3|9.0"
    env = f"PATH=/srv/gpu-standin:{PATH} HPCLLM_STANDIN_GPUS={shlex.quote(gpus)}"
    pid, log = start(host, "alice", f"{ROOT}/{CATALOG[4][0]}", env=env)
    try:
        _health, info = wait_healthy(host, pid, log)
        st = state(host, info)
    finally:
        stop(host, pid)
    assert "--cpu" not in st["argv"] and st["argv"][-2:] == ["--model", CATALOG[4][3]]
    assert "the venv has no torch (lock standin-lock.txt): its GPU support is not checked" in host.file(log).content_string


def test_model_menu_launcher(host):
    """The menu reads the terminal's answer: the launcher hands its stdin to the server it starts."""
    script = host.file(f"{ROOT}/run_webui_server.sh").content_string
    assert "catalog-launcher" not in script
    host.check_output("printf '2\\n' > /tmp/menu-choice")
    pid, log = start(host, "alice", f"{ROOT}/run_webui_server.sh", stdin="/tmp/menu-choice")
    try:
        _health, info = wait_healthy(host, pid, log)
        st = state(host, info)
    finally:
        stop(host, pid)
    assert st["argv"][-1] == "--model-menu"
    assert "--model" not in st["argv"]
    menu = sorted(c[3] for c in CATALOG)
    assert st["model"] == menu[1]
    assert f"1. {menu[0]}" in host.file(log).content_string


def test_per_user_folder_layout(host):
    udir = user_dir("alice")
    for sub in USER_DIRS:
        d = host.file(f"{udir}/{sub}")
        assert d.is_directory and not d.is_symlink, sub
        assert d.user == "alice", sub
    # models: alice's folder, a link to each shared entry (the catalog's downloads as the models role linked them)
    models = host.file(f"{udir}/models")
    assert models.is_directory and not models.is_symlink and models.user == "alice"
    for c in CATALOG:
        assert host.check_output(f"readlink {udir}/models/{c[3]}") == f"{WEBUI}/models/{c[3]}", c[3]
    # the web UI's code is alice's own copy (upstream saves only below the folder of its modules/utils.py)
    for code in ("server.py", "modules"):
        f = host.file(f"{udir}/{code}")
        assert not f.is_symlink and f.user == "alice", code
        assert host.run(f"diff -rq -x __pycache__ {WEBUI}/{code} {udir}/{code}").rc == 0, code
    assert host.file(f"{udir}/training").is_directory and not host.file(f"{udir}/training").is_symlink
    preset = host.file(f"{udir}/presets/simple-1.yaml")
    assert preset.is_file and not preset.is_symlink and preset.user == "alice"
    lora = host.file(f"{udir}/loras/{LORA[2]}")
    assert lora.is_symlink and lora.linked_to == f"{ROOT}/loras/{LORA[2]}"
    assert host.file(udir).mode == 0o700
    assert host.run(f"ls {udir}/logs/session_*.json").rc == 0
    # each launch's proxy folder went with it
    assert host.run(f"find {udir}/.hpcllm-run -mindepth 1").stdout == ""


def test_the_users_code_follows_a_new_shared_code_and_keeps_the_users_files(host):
    """After the install root moves to another web UI commit, the next launch renews the user's copy of the code
    (here: one line added to the shared modules/shared.py) and keeps what the user saved."""
    udir = user_dir("alice")
    host.check_output(f"runuser -u alice -- sh -c 'echo mine > {udir}/presets/mine.yaml'")
    marker = "# hpcllm test: the web UI at another commit"
    host.check_output(f"cp -p {WEBUI}/modules/shared.py /tmp/shared.py.orig && echo '{marker}' >> {WEBUI}/modules/shared.py")
    try:
        pid, log = start(host, "alice", f"{ROOT}/{CATALOG[4][0]}", log="/tmp/alice-newcode.log")
        try:
            wait_healthy(host, pid, log)
        finally:
            stop(host, pid)
    finally:
        host.check_output(f"cp -p /tmp/shared.py.orig {WEBUI}/modules/shared.py")
    assert marker in host.file(f"{udir}/modules/shared.py").content_string
    assert "webui_launch.sh: copied the web UI's modules into" in host.file(log).content_string
    assert host.file(f"{udir}/presets/mine.yaml").content_string == "mine\n"
    assert host.run(f"ls -d {udir}/modules.hpcllm-new {udir}/modules.hpcllm-old").rc != 0


def secrets_of(host, user):
    text = host.file(keys_file(user)).content_string
    login = re.search(r"^# login: (\S+) ([A-Za-z0-9]{24})$", text, re.M)
    key = re.search(r"^# key: (hpk-[A-Za-z0-9]{40})$", text, re.M)
    admin = re.search(r"^# admin-key: (hpk-admin-[A-Za-z0-9]{40})$", text, re.M)
    assert login and key and admin, "keys file without login, key or admin key"
    return {"user": login.group(1), "password": login.group(2), "key": key.group(1), "admin": admin.group(1)}


def test_keys_are_the_users_own_private_file_made_once_and_never_shown(host):
    """The launcher made alice's UI login, API key and admin key once (0600, hers, in her 0700
    folder); they stay the same across launches, reach no command line, no launch.env, no log
    others can read; a log only alice can read gets them printed."""
    keys = host.file(keys_file("alice"))
    assert (keys.user, keys.mode) == ("alice", 0o600)
    first = secrets_of(host, "alice")
    assert first["user"] == "alice" and len({first["password"], first["key"], first["admin"]}) == 3
    # a world-readable log (made by root here, as a shared job log would be): no secret, the file named
    pid, log = start(host, "alice", f"{ROOT}/{CATALOG[4][0]}")
    try:
        _health, info = wait_healthy(host, pid, log)
        cmdlines = host.check_output("cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
        environs = host.run("cat /proc/[0-9]*/environ | tr '\\0' ' '").stdout
    finally:
        stop(host, pid)
    out = host.file(log).content_string
    assert f"UI login, API key and admin key: in {keys_file('alice')} (yours alone; not printed here" in out
    # a log only alice can read (as webui.sbatch makes its output): printed there
    private = "/tmp/alice-private.log"
    host.check_output(f"install -o alice -g alice -m 0600 /dev/null {private}")
    pid2, _log2 = start(host, "alice", f"{ROOT}/{CATALOG[4][0]}", log=private)
    try:
        wait_healthy(host, pid2, private)
    finally:
        stop(host, pid2)
    private_out = host.file(private).content_string
    assert f"hpcllm-webui: UI login: user alice, password {first['password']}" in private_out
    assert f"hpcllm-webui: API key (Authorization: Bearer ...): {first['key']}" in private_out
    assert f"hpcllm-webui: admin key (loading models, server arguments): {first['admin']}" in private_out
    assert secrets_of(host, "alice") == first  # kept, not made again
    for secret in (first["password"], first["key"], first["admin"]):
        assert secret not in out
        assert secret not in cmdlines and secret not in environs
        assert secret not in host.file(f"{ROOT}/webui/launch.env").content_string
    found = host.run(f"grep -rlF -e {first['key']} -e {first['password']} -e {first['admin']} {ROOT} /home /tmp /etc /srv")
    assert sorted(found.stdout.split()) == sorted([keys_file("alice"), private])


def launch_over_a_planted_link(host, path, log):
    """bob's launch when `path` in bob's folder is a link (to /etc/hostname): the launcher's output."""
    as_bob = "setpriv --reuid=bob --regid=bob --init-groups"
    host.check_output(f"{as_bob} mkdir -p -m 0700 {user_dir('bob')}")
    host.check_output(f"{as_bob} ln -sfn /etc/hostname {path}")
    try:
        pid, log = start(host, "bob", f"{ROOT}/{CATALOG[4][0]}", log=log)
        for _attempt in range(50):
            if host.run(f"kill -0 {pid}").rc != 0:
                break
            time.sleep(0.1)
        return host.file(log).content_string
    finally:
        host.run(f"rm -f {path}")


def test_a_keys_file_that_is_not_the_users_is_refused(host):
    out = launch_over_a_planted_link(host, keys_file("bob"), "/tmp/bob-badkeys.log")
    assert f"webui_launch.sh: {keys_file('bob')} is a link or not yours: remove it (new keys are made)" in out


def test_a_keys_file_of_an_earlier_release_is_rewritten_with_the_same_secrets(host):
    """Launchers of 0.4.0 and earlier wrote the proxy's map entries as plain strings, which nginx matches
    ignoring case. bob's next launch writes them again as case-sensitive entries with the same
    login and keys: his key works, the key with its letters' case swapped does not."""
    alphabet = string.ascii_letters + string.digits
    password = "aB" + "".join(secrets.choice(alphabet) for dummy in range(22))
    key = "hpk-Ab" + "".join(secrets.choice(alphabet) for dummy in range(38))
    admin = "hpk-admin-Ab" + "".join(secrets.choice(alphabet) for dummy in range(38))
    basic = base64.b64encode(f"bob:{password}".encode()).decode()
    old = "".join(line + "\n" for line in (
        "# hpcllm.webui: the UI login and API keys of bob for the web UI servers of " + ROOT + ".",
        "# login: bob " + password, "# key: " + key, "# admin-key: " + admin,
        f'"Basic {basic}" ui;', f'"Bearer {key}" user;', f'"Bearer {admin}" admin;'))
    as_bob = "setpriv --reuid=bob --regid=bob --init-groups"
    host.check_output(f"{as_bob} mkdir -p -m 0700 {user_dir('bob')}")
    host.check_output(f"{as_bob} sh -c 'umask 077 && cat > {keys_file('bob')}' <<'EOF'\n{old}EOF")
    pid, log = start(host, "bob", f"{ROOT}/{CATALOG[4][0]}", log="/tmp/bob-oldkeys.log")
    try:
        _health, info = wait_healthy(host, pid, log, user="bob")
        assert call(host, info, "/api/v1/model", user="bob", cred="key")["status"] == 200
        assert call(host, info, "/api/v1/model", user="bob", cred="key", swapcase=True)["status"] == 401
        assert call(host, info, "/", user="bob", cred="login")["status"] == 200
        assert call(host, info, "/", user="bob", cred="login", swapcase=True)["status"] == 401
    finally:
        stop(host, pid)
    assert "webui_launch.sh: rewrote the proxy's lines of " + keys_file("bob") + " (your login and keys are the same)" in \
        host.file(log).content_string
    assert secrets_of(host, "bob") == {"user": "bob", "password": password, "key": key, "admin": admin}
    text = host.file(keys_file("bob")).content_string
    assert f'"~^Bearer {key}$" user;' in text and f'"~^Bearer {admin}$" admin;' in text
    assert '"Basic ' not in text and '"Bearer ' not in text
    f = host.file(keys_file("bob"))
    assert (f.user, f.mode) == ("bob", 0o600)


# --------------------------------------------------------------------------- the front door
@pytest.fixture(scope="module")
def alice_server(host):
    pid, log = start(host, "alice", f"{ROOT}/{CATALOG[3][0]}", log="/tmp/alice-frontdoor.log")
    try:
        _health, info = wait_healthy(host, pid, log)
        yield info
    finally:
        stop(host, pid)


def test_nothing_but_the_proxy_listens_off_loopback(host, alice_server):
    uid = int(host.check_output("id -u alice"))
    mine = [(ip, port) for ip, port, owner in listeners(host) if owner == uid]
    assert ("0.0.0.0", alice_server["port"]) in mine
    assert sorted(port for ip, port in mine if ip not in ("127.0.0.1", "::1")) == [alice_server["port"]]
    for name in ("ui", "api", "stream", "openai"):
        assert ("127.0.0.1", alice_server[name]) in mine, name


@pytest.mark.parametrize("path, method, data", [
    ("/v1/chat/completions", "POST", {"messages": [{"role": "user", "content": "hello"}]}),
    ("/v1/completions", "POST", {"prompt": "hello"}),
    ("/api/v1/generate", "POST", {"prompt": "hello"}),
    ("/api/v1/model", "GET", None),
    ("/v1/models", "GET", None),
])
def test_the_apis_take_the_users_key_only(host, alice_server, path, method, data):
    none = call(host, alice_server, path, method=method, data=data)
    assert none["status"] == 401 and none["headers"]["WWW-Authenticate"].startswith("Bearer"), none
    wrong = call(host, alice_server, path, cred="key", wrong=True, method=method, data=data)
    assert wrong["status"] == 401
    # nginx's map compares plain strings ignoring case: the key's letters in the other case are a wrong key
    swapped = call(host, alice_server, path, cred="key", swapcase=True, method=method, data=data)
    assert swapped["status"] == 401, swapped
    if path.startswith("/v1/"):
        # the OpenAI API's error format, which its clients turn into an authentication error
        for refused in (none, wrong, swapped):
            assert refused["headers"]["Content-Type"] == "application/json", refused
            assert json.loads(refused["body"])["error"]["code"] == "invalid_api_key", refused
    assert call(host, alice_server, path, cred="login", method=method, data=data)["status"] == 401
    ok = call(host, alice_server, path, cred="key", method=method, data=data)
    assert ok["status"] == 200, ok
    json.loads(ok["body"])


def test_the_stream_takes_the_users_key_only(host, alice_server):
    assert call(host, alice_server, "/api/v1/stream", ws=True)["status"] == 401
    assert call(host, alice_server, "/api/v1/stream", cred="key", wrong=True, ws=True)["status"] == 401
    assert call(host, alice_server, "/api/v1/stream", cred="key", swapcase=True, ws=True)["status"] == 401
    ok = call(host, alice_server, "/api/v1/stream", cred="key", ws=True, data={"prompt": "hello"})
    assert ok["status"] == 101
    assert [f["event"] for f in ok["frames"]][-1] == "stream_end"
    assert "".join(f.get("text", "") for f in ok["frames"]) == "stand-in"


@pytest.mark.parametrize("path, method, data", [
    ("/api/v1/model", "POST", {"action": "info"}),
    ("/api/v1/model", "POST", {"action": "load", "model_name": "x", "args": {"listen": True}}),
    ("/v1/engines/" + CATALOG[4][3], "GET", None),
    # the openai extension reads the whole request line: a model load hidden in a query
    ("/v1/models?x=/v1/engines/" + CATALOG[4][3], "GET", None),
])
def test_admin_endpoints_need_the_admin_key(host, alice_server, path, method, data):
    assert call(host, alice_server, path, method=method, data=data)["status"] == 401
    user = call(host, alice_server, path, cred="key", method=method, data=data)
    assert user["status"] == 403
    if path.startswith("/v1/"):
        assert json.loads(user["body"])["error"]["code"] == "admin_key_required", user
    assert call(host, alice_server, path, cred="admin-key", wrong=True, method=method, data=data)["status"] == 401
    assert call(host, alice_server, path, cred="admin-key", swapcase=True, method=method, data=data)["status"] == 401
    admin = call(host, alice_server, path, cred="admin-key", method=method, data=data)
    assert admin["status"] == 200, admin


def test_the_ui_asks_for_the_users_login(host, alice_server):
    none = call(host, alice_server, "/")
    assert none["status"] == 401 and none["headers"]["WWW-Authenticate"].startswith("Basic"), none
    assert call(host, alice_server, "/", cred="login", wrong=True)["status"] == 401
    assert call(host, alice_server, "/", cred="login", swapcase=True)["status"] == 401
    assert call(host, alice_server, "/", cred="key")["status"] == 401
    ok = call(host, alice_server, "/", cred="login")
    assert ok["status"] == 200 and "Text generation web UI" in ok["body"]


def test_the_proxy_presents_the_certificate_it_printed(host, alice_server):
    """The certificate the proxy presents is the file the launcher named, made for this node, and
    the client checked it (--cacert) against the node's name."""
    got = call(host, alice_server, "/api/v1/model", cred="key")
    der = host.check_output(f"openssl x509 -in {alice_server['cert']} -outform DER | sha256sum").split()[0]
    assert got["cert_sha256"] == der
    assert alice_server["fingerprint"].replace(":", "").lower() == der
    assert alice_server["cert"] == f"{user_dir('alice')}/.hpcllm-tls/{alice_server['node']}.crt"
    assert host.file(f"{user_dir('alice')}/.hpcllm-tls/{alice_server['node']}.key").mode == 0o600


def test_the_keys_stop_at_the_proxy(host, alice_server):
    """The server behind it never sees the Authorization header (the stand-in records what it got)."""
    for path, cred in (("/api/v1/model", "key"), ("/v1/models", "key"), ("/api/v1/model", "admin-key")):
        assert call(host, alice_server, path, cred=cred)["status"] == 200
    assert call(host, alice_server, "/api/v1/stream", cred="key", ws=True, data={"prompt": "hi"})["status"] == 101
    assert state(host, alice_server)["authorization_seen"] == []


# --------------------------------------------------------------------------- the other modes
def login_file(user):
    return f"{user_dir(user)}/.hpcllm-gradio-auth.txt"


def ui_get(host, port, login=None, path="/standin/state"):
    """GET on the UI port with HTTP basic auth (the stand-in's Gradio login) from a login line user:password."""
    code = ("import base64, sys, urllib.request; r = urllib.request.Request(sys.argv[1]); "
            "a = sys.argv[2:]; a and r.add_header('Authorization', 'Basic ' + base64.b64encode(a[0].encode()).decode()); "
            "print(urllib.request.urlopen(r, timeout=5).read().decode())")
    return host.run("python3 -c %s %s" + (" %s" if login else ""), code, f"http://127.0.0.1:{port}{path}", *([login] if login else []))


@pytest.fixture()
def launch_env_edit(host):
    """launch.env with some lines replaced (as the webui role writes it for other variables), put back after."""
    env_file = f"{ROOT}/webui/launch.env"
    saved = host.file(env_file).content_string

    def edit(replacements):
        text = saved
        for old, new in replacements.items():
            assert old in text, old
            text = text.replace(old, new)
        host.check_output(f"printf '%s' {shlex.quote(text)} > {env_file}")

    yield edit
    host.check_output(f"printf '%s' {shlex.quote(saved)} > {env_file}")


@pytest.fixture()
def access_mode(launch_env_edit):
    """launch.env switched to another webui_access."""
    def switch(access, args):
        launch_env_edit({"WEBUI_ACCESS=proxy": f"WEBUI_ACCESS={access}",
                         "WEBUI_ARGS=( --api --extensions openai )": f"WEBUI_ARGS=( {args} )"})
    return switch


def test_the_proxy_presents_the_sites_certificate_when_one_is_configured(host, launch_env_edit):
    """webui_ssl_certfile/keyfile (launch.env WEBUI_TLS_CERT/KEY): the proxy presents that certificate,
    and the launcher makes none of its own."""
    site = "/etc/hpcllm-site-tls"
    host.check_output(
        f"mkdir -p {site} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 "
        f"-subj /CN=master -addext subjectAltName=DNS:master -keyout {site}/site.key -out {site}/site.crt 2>/dev/null "
        f"&& chmod 0644 {site}/site.key {site}/site.crt")
    launch_env_edit({"WEBUI_TLS_CERT=''": f"WEBUI_TLS_CERT={site}/site.crt", "WEBUI_TLS_KEY=''": f"WEBUI_TLS_KEY={site}/site.key"})
    host.run("rm -rf /home/bob/.local/share/hpcllm-webui/opt_ai_apps_webui_llama2/.hpcllm-tls")
    pid, log = start(host, "bob", f"{ROOT}/{CATALOG[4][0]}", log="/tmp/bob-sitecert.log")
    try:
        _health, info = wait_healthy(host, pid, log, user="bob")
        got = call(host, info, "/api/v1/model", user="bob", cred="key")
    finally:
        stop(host, pid)
    der = host.check_output(f"openssl x509 -in {site}/site.crt -outform DER | sha256sum").split()[0]
    assert info["cert"] == f"{site}/site.crt"
    assert got["status"] == 200 and got["cert_sha256"] == der
    assert not host.file(f"{user_dir('bob')}/.hpcllm-tls").exists


def launch_until_it_stops(host, user, log):
    pid, log = start(host, user, f"{ROOT}/{CATALOG[4][0]}", log=log)
    for _attempt in range(100):
        if host.run(f"kill -0 {pid}").rc != 0:
            break
        time.sleep(0.1)
    else:
        stop(host, pid)
        pytest.fail(f"the launch did not stop: {host.file(log).content_string}")
    return host.file(log).content_string


@pytest.mark.parametrize("line, value, message", [
    # the hub stand-in holds 8780: no free port in the range
    ("WEBUI_PROXY_PORTS=''", "WEBUI_PROXY_PORTS=8780-8780",
     "no free port for the proxy in WEBUI_PROXY_PORTS '8780-8780' (webui_proxy_ports)"),
    ("WEBUI_NGINX=/usr/sbin/nginx", "WEBUI_NGINX=/usr/sbin/no-nginx",
     "no nginx at /usr/sbin/no-nginx (WEBUI_NGINX of /opt/ai_apps/webui_llama2/webui/launch.env): "
     "the webui role installs it into the image with webui_access: proxy"),
], ids=["no-free-proxy-port", "no-nginx"])
def test_a_proxy_that_cannot_start_stops_the_launch_naming_why(host, launch_env_edit, line, value, message):
    launch_env_edit({line: value})
    out = launch_until_it_stops(host, "bob", "/tmp/bob-noproxy.log")
    assert message in out
    assert "running " not in out  # the server never started
    assert host.run(f"find {user_dir('bob')}/.hpcllm-run -mindepth 1").stdout == ""


def test_local_mode_binds_loopback_only_and_takes_the_users_gradio_login(host, access_mode):
    """webui_access: local: free ports on 127.0.0.1, no proxy, the web UI's own login per user
    (--gradio-auth-path, made once, 0600, its file named, the password nowhere else), and the printed
    tunnel and health lines point at the loopback ports (a jump through the login host). As bob:
    alice has a server of the front-door tests running."""
    access_mode("local", "--api --extensions openai")
    pid, log = start(host, "bob", f"{ROOT}/{CATALOG[4][0]}", env="SLURM_SUBMIT_HOST=login.example",
                     log="/tmp/bob-local.log")
    try:
        out = ""
        for _attempt in range(100):
            out = host.file(log).content_string
            if "Running on local URL" in out:
                break
            time.sleep(0.1)
        found = re.search(r"127\.0\.0\.1 only: UI (\d+), API (\d+) \(streaming (\d+)\), OpenAI API (\d+)", out)
        assert found, out
        ui, api, stream, openai = found.groups()
        health = re.search(r"hpcllm-webui: health \(on \S+\): (.*)$", out, re.M).group(1)
        res = host.run(f"runuser -u bob -- {health}")
        login = host.file(login_file("bob")).content_string.strip()
        st = json.loads(ui_get(host, ui, login).stdout)
        refused = ui_get(host, ui).stderr
        uid = int(host.check_output("id -u bob"))
        mine = [(ip, port) for ip, port, owner in listeners(host) if owner == uid]
        cmdline = host.file(f"/proc/{pid}/cmdline").content_string
    finally:
        stop(host, pid)
    assert res.rc == 0, res.stdout + res.stderr
    assert sorted(port for _ip, port in mine) == sorted(int(p) for p in (ui, api, stream, openai))
    assert {ip for ip, _port in mine} == {"127.0.0.1"}
    assert "HTTP Error 401" in refused
    assert st["argv"][st["argv"].index("--gradio-auth-path") + 1] == login_file("bob")
    node = host.check_output("hostname -s")
    assert (f"ssh -N -J bob@login.example -L {ui}:127.0.0.1:{ui} -L {api}:127.0.0.1:{api} "
            f"-L {stream}:127.0.0.1:{stream} -L {openai}:127.0.0.1:{openai} bob@{node}") in out
    name, password = login.split(":", 1)
    assert name == "bob" and len(password) == 24 and password.isalnum()
    assert host.file(login_file("bob")).mode == 0o600
    assert f"UI login: user bob, password in {login_file('bob')} (yours alone, mode 0600)" in out
    assert password not in out and password not in cmdline


def test_open_mode_is_the_seeds_listen_with_a_warning(host, access_mode):
    access_mode("open", "--listen --listen-port 7860 --api --api-blocking-port 5000 --api-streaming-port 5005 "
                "--extensions openai")
    pid, log = start(host, "bob", f"{ROOT}/{CATALOG[4][0]}", env="OPENEDAI_PORT=5001", log="/tmp/bob-open.log")
    try:
        for _attempt in range(100):
            if host.run(f"{ROOT}/webui_health.sh --timeout 1").rc == 0:
                break
            time.sleep(0.2)
        uid = int(host.check_output("id -u bob"))
        mine = sorted((ip, port) for ip, port, owner in listeners(host) if owner == uid)
        out = host.file(log).content_string
    finally:
        stop(host, pid)
    assert mine == [("0.0.0.0", 5000), ("0.0.0.0", 5001), ("0.0.0.0", 5005), ("0.0.0.0", 7860)]
    assert "hpcllm-webui: WARNING: open mode (webui_access: open): the UI and every API listen on all addresses" in out


def test_a_login_file_that_is_not_the_users_is_refused(host, access_mode):
    access_mode("local", "--api --extensions openai")
    out = launch_over_a_planted_link(host, login_file("bob"), "/tmp/bob-badlogin.log")
    assert f"webui_launch.sh: {login_file('bob')} is a link or not yours: remove it (a new login is made)" in out


# --------------------------------------------------------------------------- health check
def test_health_fails_clearly_when_the_server_is_down(host):
    res = host.run(f"{ROOT}/webui_health.sh")
    assert res.rc == 1
    assert "FAIL api    http://127.0.0.1:5000/api/v1/model: not reachable" in res.stderr
    assert "is the web UI running with --api?" in res.stderr
    assert "FAIL openai http://127.0.0.1:5001/v1/models: not reachable" in res.stderr


def test_health_reports_an_unexpected_answer(host):
    pid = int(host.check_output("cd /tmp && setsid python3 -m http.server --bind 127.0.0.1 5000 >/dev/null 2>&1 </dev/null & echo $!"))
    try:
        for _attempt in range(50):
            res = host.run(f"{ROOT}/webui_health.sh --timeout 2")
            if "HTTP 404" in res.stderr:
                break
            time.sleep(0.1)
    finally:
        stop(host, pid)
    assert res.rc == 2
    assert "FAIL api    http://127.0.0.1:5000/api/v1/model: HTTP 404" in res.stderr


def test_health_usage_error(host):
    res = host.run(f"{ROOT}/webui_health.sh --bogus")
    assert res.rc == 64
    assert "usage: webui_health.sh" in res.stderr


def test_health_through_the_proxy_without_keys(host, alice_server):
    """A user without a keys file is told to start a launcher; another user's key is refused (HTTP 401)."""
    host.run(f"rm -f {keys_file('bob')}")
    res = host.run(f"runuser -u bob -- {ROOT}/webui_health.sh --url {alice_server['url']} --cacert {alice_server['cert']}")
    assert res.rc == 2
    assert f"FAIL keys  {keys_file('bob')}: No such file or directory (start a launcher once: it makes your keys)" in res.stderr


# --------------------------------------------------------------------------- read-only root, two users
def test_two_users_at_once_on_a_read_only_root(host):
    host.check_output(f"mount --bind {ROOT} {ROOT} && mount -o remount,bind,ro {ROOT}")
    pids = []
    try:
        assert host.run(f"touch {ROOT}/probe").rc != 0
        host.check_output("rm -rf /home/bob/.local")
        a = start(host, "alice", f"{ROOT}/run_wizard_7b_4bit_code.sh")
        pids.append(a[0])
        b = start(host, "bob", f"{ROOT}/run_wizard_1b_32bit_code.sh")
        pids.append(b[0])
        # a second server of alice on the same node
        a2 = start(host, "alice", f"{ROOT}/run_wizard_1b_32bit_code.sh", log="/tmp/alice-second.log")
        pids.append(a2[0])
        ha, ia = wait_healthy(host, *a)
        hb, ib = wait_healthy(host, *b, user="bob")
        ha2, ia2 = wait_healthy(host, *a2)
        sa, sb = state(host, ia), state(host, ib, "bob")
        # each server takes its own user's login and keys only
        refused = [call(host, ib, "/standin/state", user="alice", cred="login")["status"],
                   call(host, ia, "/standin/state", user="bob", cred="login")["status"],
                   call(host, ib, "/api/v1/model", user="alice", cred="key")["status"],
                   call(host, ia, "/api/v1/model", user="bob", cred="key")["status"],
                   call(host, ia, "/api/v1/model", user="bob", cred="admin-key", method="POST", data={"action": "info"})["status"]]
        bob_on_bob = call(host, ib, "/api/v1/model", user="bob", cred="key")["status"]
    finally:
        for pid in pids:
            stop(host, pid)
        host.run(f"umount {ROOT}")
    assert f"model {CATALOG[3][3]}" in ha.stdout
    assert f"model {CATALOG[4][3]}" in hb.stdout and f"model {CATALOG[4][3]}" in ha2.stdout
    ports = [i[k] for i in (ia, ib, ia2) for k in ("port", "ui", "api", "stream", "openai")]
    assert len(set(ports)) == len(ports), ports
    assert (sa["cwd"], sb["cwd"]) == (user_dir("alice"), user_dir("bob"))
    assert refused == [401] * 5 and bob_on_bob == 200, refused
    alice, bob = secrets_of(host, "alice"), secrets_of(host, "bob")
    assert bob["user"] == "bob" and not {alice["password"], alice["key"], alice["admin"]} & {bob["password"], bob["key"], bob["admin"]}
    for user, pid in (("alice", pids[0]), ("bob", pids[1])):
        session = host.run(f"ls {user_dir(user)}/logs/")
        assert "session_" in session.stdout, user
    # bob's folder was made on the read-only root, seeded from the shared copies
    assert host.file(f"{user_dir('bob')}/presets/simple-1.yaml").user == "bob"
    assert host.file(f"{user_dir('bob')}/characters/Example.yaml").is_file
    assert host.run(f"find {ROOT} -newer /srv/hub/expected.json -name 'session_*'").stdout == ""
    assert not host.file(f"{WEBUI}/logs").exists


# --------------------------------------------------------------------------- Slurm and systemd templates
def test_sbatch_runs_a_launcher_that_prints_how_to_reach_it(host):
    sbatch = host.file(f"{ROOT}/share/webui.sbatch").content_string
    assert "#SBATCH --gres=gpu:1" in sbatch
    env = "SLURMD_NODENAME=node01 SLURM_SUBMIT_HOST=master.example SLURM_JOB_ID=42"
    # the cluster's name of the job's node (this container plays it)
    host.check_output("grep -q ' node01$' /etc/hosts || echo '127.0.0.1 node01' >> /etc/hosts")
    # the job's output file, made by slurmd as the user with a umask of 022
    log = "/tmp/slurm-42.out"
    host.check_output(f"install -o bob -g bob -m 0644 /dev/null {log}")
    pid, log = start(host, "bob", f"bash {ROOT}/share/webui.sbatch run_wizard_7b_4bit_code.sh", env=env, log=log)
    try:
        _health, info = wait_healthy(host, pid, log, user="bob")
        st = state(host, info, "bob")
        out = host.file(log).content_string
        mode = host.file(log).mode
    finally:
        stop(host, pid)
    bob = secrets_of(host, "bob")
    assert "hpcllm-webui: job 42 runs run_wizard_7b_4bit_code.sh on node node01" in out
    assert info["node"] == "node01" and info["url"] == f"https://node01:{info['port']}"
    port = info["port"]
    assert f"hpcllm-webui: tunnel: ssh -N -L {port}:node01:{port} bob@master.example, then https://localhost:{port}/" in out
    assert f"hpcllm-webui: health: {ROOT}/webui_health.sh --url https://node01:{port} --cacert {info['cert']}" in out
    # the output became bob's alone, and so the keys are printed in it
    assert mode == 0o600
    assert f"API key (Authorization: Bearer ...): {bob['key']}" in out
    assert st["argv"][st["argv"].index("--model") + 1] == CATALOG[3][3]


def processes_of(host, user):
    """pid and command line of every process of `user` (no ps in the bench image)."""
    code = ("import os, pwd, sys\n"
            "uid = pwd.getpwnam(sys.argv[1]).pw_uid\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try:\n"
            "        if os.stat('/proc/' + pid).st_uid == uid:\n"
            "            print(pid, open('/proc/%s/cmdline' % pid).read().replace(chr(0), ' '))\n"
            "    except OSError:\n"
            "        pass\n")
    return host.check_output("python3 -c %s %s", code, user).splitlines()


def test_two_jobs_under_real_slurm_on_one_node_then_scancel_leaves_nothing(host):
    """Real Slurm (slurmctld, slurmd, munge from Debian): carol submits the batch template twice from her
    home; both jobs run on the one node at once; each job's output is hers alone (0600) and holds what
    the launcher printed, whose health command, run literally as carol, answers for both servers (their
    ports differ); scancel leaves no process of carol and no proxy folder."""
    assert processes_of(host, "carol") == []
    jobs = [host.check_output(f"cd /home/carol && runuser -u carol -- sbatch --parsable {ROOT}/share/webui.sbatch {launcher}")
            for launcher in (CATALOG[3][0], CATALOG[4][0])]
    outs = [f"/home/carol/hpcllm-webui-{job}.out" for job in jobs]
    try:
        texts = []
        for job, out in zip(jobs, outs):
            text = ""
            for _attempt in range(150):
                text = host.run(f"cat {out}").stdout
                if "hpcllm-webui: health: " in text:
                    break
                time.sleep(0.2)
            assert "hpcllm-webui: health: " in text, host.run(f"scontrol show job {job}; cat {out}").stdout
            texts.append(text)
        healths = []
        for text in texts:
            command = re.search(r"^hpcllm-webui: health: (.*)$", text, re.M).group(1)
            for _attempt in range(100):
                res = host.run("runuser -u carol -- %s" % command)
                if res.rc == 0:
                    break
                time.sleep(0.2)
            healths.append(res)
        running = host.check_output(f"squeue --noheader --format='%i %T %N' --jobs={','.join(jobs)}").splitlines()
        modes = [host.file(out).mode for out in outs]
    finally:
        host.run(f"scancel {' '.join(jobs)}")
    for res in healths:
        assert res.rc == 0, res.stdout + res.stderr
    assert sorted(running) == sorted(f"{job} RUNNING master" for job in jobs)
    assert modes == [0o600, 0o600]
    carol = secrets_of(host, "carol")
    urls = [re.search(r"web UI on node master: (https://master:\d+)/", text).group(1) for text in texts]
    assert len(set(urls)) == 2
    for job, launcher, text in zip(jobs, (CATALOG[3][0], CATALOG[4][0]), texts):
        assert f"hpcllm-webui: job {job} runs {launcher} on node master" in text
        assert f"API key (Authorization: Bearer ...): {carol['key']}" in text
    for _attempt in range(100):
        if not host.run(f"squeue --noheader --jobs={','.join(jobs)}").stdout.strip() and not processes_of(host, "carol"):
            break
        time.sleep(0.3)
    assert processes_of(host, "carol") == []
    assert host.run(f"find {user_dir('carol')}/.hpcllm-run -mindepth 1").stdout == ""


def test_sbatch_refuses_the_model_menu(host):
    res = host.run(f"bash {ROOT}/share/webui.sbatch run_webui_server.sh")
    assert res.rc == 64
    assert "'run_webui_server.sh' is not a model launcher" in res.stderr


def journal_reach(host, instance, after=""):
    """URL and certificate the launcher of a systemd unit printed (the journal), after the line `after`."""
    text = ""
    for _attempt in range(200):
        text = host.run(f"journalctl -u {instance} -o cat --no-pager").stdout.split(after)[-1] if after else \
            host.run(f"journalctl -u {instance} -o cat --no-pager").stdout
        if "hpcllm-webui: health: " in text:
            break
        time.sleep(0.2)
    health = re.search(r"^hpcllm-webui: health: (.*)$", text, re.M)
    assert health, text
    return health.group(0), health.group(1), text


def healthy_as(host, user, command):
    res = None
    for _attempt in range(100):
        res = host.run(f"runuser -u {user} -- {command}")
        if res.rc == 0:
            return res
        time.sleep(0.2)
    return res


def test_the_systemd_unit_runs_restarts_and_stops_the_web_ui(host):
    """Real systemd (PID 1 of this container): the template unit as its header says to install it runs a
    launcher as test, behind its proxy (the journal gets the URL, never the keys); the server killed, the
    unit restarts it (Restart=on-failure) and it answers again; systemctl stop leaves no process of test."""
    instance = f"hpcllm-webui@{CATALOG[4][0]}.service"
    host.check_output(f"install -m 0644 {ROOT}/share/hpcllm-webui@.service /etc/systemd/system/ && systemctl daemon-reload")
    try:
        host.check_output(f"systemctl start {instance}")
        first_line, health, text = journal_reach(host, instance)
        first = healthy_as(host, "test", health)
        main = host.check_output(f"systemctl show -p MainPID --value {instance}")
        server = server_pid(host, main)
        host.check_output(f"kill -9 {server}")
        _line, health2, text2 = journal_reach(host, instance, after=first_line)
        second = healthy_as(host, "test", health2)
        restarts = host.check_output(f"systemctl show -p NRestarts --value {instance}")
        main2 = host.check_output(f"systemctl show -p MainPID --value {instance}")
    finally:
        host.run(f"systemctl stop {instance}")
    assert first.rc == 0 and second.rc == 0, first.stderr + second.stderr
    assert restarts == "1" and main2 != main
    assert "UI login, API key and admin key: in" in text and "not printed here" in text
    keys = secrets_of(host, "test")
    journal = host.run(f"journalctl -u {instance} -o cat --no-pager").stdout
    assert keys["key"] not in journal and keys["password"] not in journal
    assert host.run(f"systemctl is-active {instance}").stdout.strip() == "inactive"
    for _attempt in range(50):
        if not processes_of(host, "test"):
            break
        time.sleep(0.2)
    assert processes_of(host, "test") == []


def _unit_cmd(unit, key, instance):
    """The unit's command line as systemd runs it: %i is the instance, $$ a literal $."""
    line = [text for text in unit.splitlines() if text.startswith(key + "=")][0]
    argv = [a.replace("%i", instance).replace("$$", "$") for a in shlex.split(line.split("=", 1)[1])]
    assert "$" not in line.replace("$$", ""), "systemd would expand a single $ itself"
    return " ".join(shlex.quote(a) for a in argv)


def test_systemd_unit_template(host):
    unit = host.file(f"{ROOT}/share/hpcllm-webui@.service").content_string
    assert "\nUser=test\n" in unit and "\nGroup=users\n" in unit
    assert f"\nExecStart={ROOT}/%i\n" in unit
    assert "model-menu" not in unit.split("[Service]")[1].split("ExecStartPre")[0]
    assert "StandardInput=null" in unit
    ok = host.run(_unit_cmd(unit, "ExecStartPre", "run_wizard_7b_4bit_code.sh"))
    assert ok.rc == 0, ok.stderr
    refused = host.run(_unit_cmd(unit, "ExecStartPre", "run_webui_server.sh"))
    assert refused.rc == 1
    assert "not a model launcher" in refused.stderr
    missing = host.run(_unit_cmd(unit, "ExecStartPre", "run_nothing.sh"))
    assert missing.rc == 1 and f"no launcher {ROOT}/run_nothing.sh" in missing.stderr
