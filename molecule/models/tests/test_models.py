"""Testinfra checks of the bench master after the models play: downloads, links, launchers against the stand-in web UI."""

from __future__ import annotations

import json
import shlex
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
USER_DIRS = ["logs", "characters", "presets", "prompts", "training/datasets", "training/formats", "loras"]
PATH = "/usr/local/bin:/usr/bin:/bin"


def user_dir(user):
    return f"/home/{user}/.local/share/hpcllm-webui/opt_ai_apps_webui_llama2"


@pytest.fixture(scope="module")
def expected(host):
    return json.loads(host.file("/srv/hub/expected.json").content_string)


def start(host, user, command, env="", stdin="/dev/null"):
    """Start a launcher as `user` in a new session, detached; return the pid of the server (the launcher execs it)."""
    log = f"/tmp/{user}-{command.split()[0].rsplit('/', 1)[-1]}.log"
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


def wait_healthy(host, pid, log, args=""):
    for _attempt in range(100):
        res = host.run(f"{ROOT}/webui_health.sh {args}")
        if res.rc == 0:
            return res
        if host.run(f"kill -0 {pid}").rc != 0:
            pytest.fail(f"server exited: {host.file(log).content_string}")
        time.sleep(0.2)
    pytest.fail(f"never healthy: {res.stdout} {res.stderr} / {host.file(log).content_string}")


def login_file(user):
    return f"{user_dir(user)}/.hpcllm-gradio-auth.txt"


def ui_get(host, port, login=None, path="/standin/state"):
    """GET on the UI port with HTTP basic auth (the stand-in's Gradio login) from a login line user:password."""
    code = ("import base64, sys, urllib.request; r = urllib.request.Request(sys.argv[1]); "
            "a = sys.argv[2:]; a and r.add_header('Authorization', 'Basic ' + base64.b64encode(a[0].encode()).decode()); "
            "print(urllib.request.urlopen(r, timeout=5).read().decode())")
    return host.run("python3 -c %s %s" + (" %s" if login else ""), code, f"http://127.0.0.1:{port}{path}", *([login] if login else []))


def state(host, port=7860, user="alice"):
    """The stand-in's state, logged in as `user` with the login that user's launcher made."""
    login = host.file(login_file(user)).content_string.strip()
    res = ui_get(host, port, login)
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout)


def environ(host, pid):
    raw = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


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
        health = wait_healthy(host, pid, log)
        st = state(host)
        env = environ(host, pid)
    finally:
        stop(host, pid)
    assert f"model {name}" in health.stdout
    assert "no nvidia-smi on this node: the web UI runs on the CPU (--cpu; models_no_gpu: cpu)" in host.file(log).content_string
    # no NVIDIA GPU in the bench: the GPU check says --cpu (models_no_gpu: cpu), before the model's flags
    expected_argv = ["server.py", "--listen", "--api", "--extensions", "openai", "--settings", SETTINGS,
                     "--gradio-auth-path", login_file("alice"), "--cpu", "--model", name]
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
    assert env["OPENEDAI_PORT"] == "5001"


def test_launcher_runs_the_gpu_check_first(host):
    """With a GPU visible (the nvidia-smi stand-in first on PATH) the launcher asks nvidia-smi and does
    not add --cpu; the stand-in web UI's venv has no torch, which the check says instead of judging."""
    gpus = "0|GPU-5a7f1c2e|NVIDIA H100 80GB HBM3|9.0"
    env = f"PATH=/srv/gpu-standin:{PATH} HPCLLM_STANDIN_GPUS={shlex.quote(gpus)}"
    pid, log = start(host, "alice", f"{ROOT}/{CATALOG[4][0]}", env=env)
    try:
        wait_healthy(host, pid, log)
        st = state(host)
    finally:
        stop(host, pid)
    assert "--cpu" not in st["argv"] and st["argv"][-2:] == ["--model", CATALOG[4][3]]
    assert "the venv has no torch (lock standin-lock.txt): its GPU support is not checked" in host.file(log).content_string


def test_model_menu_launcher(host):
    script = host.file(f"{ROOT}/run_webui_server.sh").content_string
    assert "catalog-launcher" not in script
    host.check_output("printf '2\\n' > /tmp/menu-choice")
    pid, log = start(host, "alice", f"{ROOT}/run_webui_server.sh", stdin="/tmp/menu-choice")
    try:
        wait_healthy(host, pid, log)
        st = state(host)
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
    assert host.file(f"{udir}/server.py").linked_to == f"{WEBUI}/server.py"
    assert host.file(f"{udir}/models").linked_to == f"{WEBUI}/models"
    assert host.file(f"{udir}/modules").linked_to == f"{WEBUI}/modules"
    assert host.file(f"{udir}/training").is_directory and not host.file(f"{udir}/training").is_symlink
    preset = host.file(f"{udir}/presets/simple-1.yaml")
    assert preset.is_file and not preset.is_symlink and preset.user == "alice"
    lora = host.file(f"{udir}/loras/{LORA[2]}")
    assert lora.is_symlink and lora.linked_to == f"{ROOT}/loras/{LORA[2]}"
    assert host.file(udir).mode == 0o700
    assert host.run(f"ls {udir}/logs/session_*.json").rc == 0


def test_login_is_the_users_own_private_file_made_once(host):
    """WEBUI_LOGIN=1: the launcher made alice's login once (0600, hers, in her 0700 folder),
    passes it as a path, and names the file, never the password."""
    login = host.file(login_file("alice"))
    assert (login.user, login.mode) == ("alice", 0o600)
    name, password = login.content_string.strip().split(":", 1)
    assert name == "alice" and len(password) == 24 and password.isalnum()
    pid, log = start(host, "alice", f"{ROOT}/{CATALOG[4][0]}")
    try:
        wait_healthy(host, pid, log)
        st = state(host)
        cmdline = host.file(f"/proc/{pid}/cmdline").content_string
    finally:
        stop(host, pid)
    assert host.file(login_file("alice")).content_string.strip() == f"alice:{password}"  # kept, not made again
    assert st["argv"][st["argv"].index("--gradio-auth-path") + 1] == login_file("alice")
    assert password not in cmdline
    out = host.file(log).content_string
    assert f"UI login: user alice, password in {login_file('alice')} (yours alone, mode 0600)" in out
    assert password not in out


def test_a_login_file_that_is_not_the_users_is_refused(host):
    as_bob = "setpriv --reuid=bob --regid=bob --init-groups"
    host.check_output(f"{as_bob} mkdir -p -m 0700 {user_dir('bob')}")
    host.check_output(f"{as_bob} ln -sfn /etc/hostname {login_file('bob')}")
    try:
        pid, log = start(host, "bob", f"{ROOT}/{CATALOG[4][0]}")
        for _attempt in range(50):
            if host.run(f"kill -0 {pid}").rc != 0:
                break
            time.sleep(0.1)
        out = host.file(log).content_string
    finally:
        host.run(f"rm -f {login_file('bob')}")
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


# --------------------------------------------------------------------------- read-only root, two users
def test_two_users_at_once_on_a_read_only_root(host):
    host.check_output(f"mount --bind {ROOT} {ROOT} && mount -o remount,bind,ro {ROOT}")
    pids = []
    try:
        assert host.run(f"touch {ROOT}/probe").rc != 0
        host.check_output("rm -rf /home/bob/.local")
        a = start(host, "alice", f"{ROOT}/run_wizard_7b_4bit_code.sh")
        pids.append(a[0])
        b = start(host, "bob", f"{ROOT}/run_wizard_1b_32bit_code.sh --listen-port 7861 --api-blocking-port 5010 "
                  "--api-streaming-port 5015", env="OPENEDAI_PORT=5011")
        pids.append(b[0])
        ha = wait_healthy(host, *a)
        hb = wait_healthy(host, *b, args="--api-port 5010 --openai-port 5011")
        sa, sb = state(host, 7860, "alice"), state(host, 7861, "bob")
        # each server takes its own user's login only
        alice_login = host.file(login_file("alice")).content_string.strip()
        bob_login = host.file(login_file("bob")).content_string.strip()
        refused = [ui_get(host, 7861, alice_login).stderr, ui_get(host, 7860, bob_login).stderr, ui_get(host, 7860).stderr]
    finally:
        for pid in pids:
            stop(host, pid)
        host.run(f"umount {ROOT}")
    assert f"model {CATALOG[3][3]}" in ha.stdout
    assert f"model {CATALOG[4][3]}" in hb.stdout
    assert (sa["cwd"], sb["cwd"]) == (user_dir("alice"), user_dir("bob"))
    assert all("HTTP Error 401" in err for err in refused), refused
    assert alice_login.split(":")[0] == "alice" and bob_login.split(":")[0] == "bob"
    assert alice_login.split(":", 1)[1] != bob_login.split(":", 1)[1]
    for user, pid in (("alice", pids[0]), ("bob", pids[1])):
        session = host.file(f"{user_dir(user)}/logs/session_{pid}.json")
        assert session.is_file and session.user == user
    # bob's folder was made on the read-only root, seeded from the shared copies
    assert host.file(f"{user_dir('bob')}/presets/simple-1.yaml").user == "bob"
    assert host.file(f"{user_dir('bob')}/characters/Example.yaml").is_file
    assert host.run(f"find {ROOT} -newer /srv/hub/expected.json -name 'session_*'").stdout == ""
    assert not host.file(f"{WEBUI}/logs").exists


# --------------------------------------------------------------------------- Slurm and systemd templates
def test_sbatch_runs_a_launcher_and_prints_the_tunnel(host):
    sbatch = host.file(f"{ROOT}/share/webui.sbatch").content_string
    assert "#SBATCH --gres=gpu:1" in sbatch
    env = ("SLURMD_NODENAME=node01 SLURM_SUBMIT_HOST=master.example SLURM_JOB_ID=42 WEBUI_UI_PORT=7870 "
           "WEBUI_API_PORT=5020 WEBUI_STREAM_PORT=5025 OPENEDAI_PORT=5021")
    pid, log = start(host, "bob", f"bash {ROOT}/share/webui.sbatch run_wizard_7b_4bit_code.sh", env=env)
    try:
        wait_healthy(host, pid, log, args="--api-port 5020 --openai-port 5021")
        st = state(host, 7870, "bob")
        out = host.file(log).content_string
    finally:
        stop(host, pid)
    assert "hpcllm-webui: job 42 runs run_wizard_7b_4bit_code.sh on node node01" in out
    assert "ports UI 7870, API 5020 (streaming 5025), OpenAI API 5021" in out
    assert "ssh -N -L 7870:node01:7870 -L 5020:node01:5020 -L 5021:node01:5021 bob@master.example" in out
    assert st["argv"][st["argv"].index("--model") + 1] == CATALOG[3][3]
    assert st["argv"][-6:] == ["--listen-port", "7870", "--api-blocking-port", "5020", "--api-streaming-port", "5025"]


def test_sbatch_refuses_the_model_menu(host):
    res = host.run(f"bash {ROOT}/share/webui.sbatch run_webui_server.sh")
    assert res.rc == 64
    assert "'run_webui_server.sh' is not a model launcher" in res.stderr


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
