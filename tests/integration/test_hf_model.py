"""hpcllm.webui.hf_model through real ansible-playbook runs against the local hub stand-in (tests/hubserver)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import socket

import pytest
import yaml

import hf_fixtures
from hubserver import is_lfs
from hf_fixtures import GPTQ_BRANCH, REPO, Hub, hf_task, main_files, sha256_file, snapshot, tmpfs, write_playbook

# fixtures shared with other hf tests
hub = hf_fixtures.hub
hf_env = hf_fixtures.hf_env

MODULE_FILES_MAIN = sorted(main_files())


def expected_sha256(server, rev):
    repo = server.repos[REPO]
    return {path: blob.sha256 for path, blob in repo.commits[repo.resolve(rev)].items()}


def file_gets(server):
    return list(server.requests("GET", "/resolve/"))


@pytest.fixture
def run_hf(ansible_playbook, tmp_path, hub, hf_env):
    """run_hf(name, check=False, diff=False, verbosity=0, json_output=True, **module args) -> PlaybookRun."""
    counter = {"n": 0}

    def run(name="hf_model", *, check=False, diff=False, verbosity=0, json_output=True, tasks=None, **args):
        counter["n"] += 1
        args.setdefault("endpoint", hub.url)
        args.setdefault("repo_id", REPO)
        args.setdefault("dest", str(tmp_path / "model"))
        playbook = write_playbook(tmp_path / f"play{counter['n']}.yml", tasks or [hf_task(name, **args)])
        return ansible_playbook(playbook, check=check, diff=diff, verbosity=verbosity, json_output=json_output, env=hf_env)

    return run


def assert_model(dest, server, rev="main"):
    want = expected_sha256(server, rev)
    got = {str(p.relative_to(dest)): sha256_file(p) for p in dest.rglob("*") if p.is_file() and ".hf_model" not in p.name}
    assert got == want


def foreign_requests(server):
    """Requests that were meant for another host (the hub doubles as HTTP(S)_PROXY in some tests)."""
    return [r for r in server.log if r["method"] == "CONNECT" or not r["path"].startswith("/")]


def test_first_run_then_noop(run_hf, hub, tmp_path, hf_env):
    dest = tmp_path / "model"
    # anything not sent to the endpoint would go through this "proxy" and be logged
    hf_env.update(HTTPS_PROXY=hub.url, HTTP_PROXY=hub.url, https_proxy=hub.url, http_proxy=hub.url,
                  NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    first = run_hf()
    res = first.results("hf_model")
    assert first.rc == 0, first.stdout
    assert res["changed"] is True
    assert res["commit"] == hub.repos[REPO].refs["main"]
    assert sorted(res["downloaded"]) == MODULE_FILES_MAIN == res["files"]
    assert res["bytes_downloaded"] == sum(len(v) for v in main_files().values())
    assert_model(dest, hub)
    manifest = json.loads((dest / ".hf_model.json").read_text())
    assert manifest["repo_id"] == REPO and manifest["commit"] == res["commit"] and manifest["revision"] == "main"
    assert manifest["files"]["model.safetensors"]["sha256"] == expected_sha256(hub, "main")["model.safetensors"]
    assert not (dest / ".hf_model.tmp").exists() and not (dest / ".cache").exists()

    assert foreign_requests(hub) == []
    hub.clear()
    before = snapshot(dest)
    hf_env["HF_ENDPOINT"] = hub.url  # the endpoint option defaults to HF_ENDPOINT
    second = run_hf(diff=True, endpoint=None)
    res = second.results("hf_model")
    assert second.rc == 0 and second.changed() == 0
    assert res["downloaded"] == [] and res["bytes_downloaded"] == 0
    assert file_gets(hub) == [] and hub.requests("HEAD") == []
    assert [r["path"].split("?")[0] for r in hub.log] == [f"/api/models/{REPO}/revision/main"]  # nothing foreign either
    assert snapshot(dest) == before
    assert not (tmp_path / "hf_home").exists(), "nothing may be written under HF_HOME"


def test_branch_tag_and_commit(run_hf, hub, tmp_path):
    dest = tmp_path / "gptq"
    run = run_hf(revision=GPTQ_BRANCH, dest=str(dest))
    res = run.results("hf_model")
    assert run.rc == 0 and res["commit"] == hub.repos[REPO].refs[GPTQ_BRANCH]
    assert_model(dest, hub, GPTQ_BRANCH)
    config = json.loads((dest / "config.json").read_text())
    assert config["quantization_config"]["bits"] == 4 and (dest / "quantize_config.json").is_file()
    assert not (dest / "generation_config.json").exists()
    # the same content pinned by commit: recorded revision changes, nothing is downloaded
    hub.clear()
    run = run_hf(revision=res["commit"], dest=str(dest))
    assert run.rc == 0 and run.results("hf_model")["downloaded"] == [] and file_gets(hub) == []
    # a tag pointing at the same commit
    hub.tag(REPO, "v1.0", GPTQ_BRANCH)
    run = run_hf(revision="v1.0", dest=str(dest))
    assert run.rc == 0 and run.results("hf_model")["commit"] == res["commit"]


def test_new_commit_fetches_only_changed_files_and_prune(run_hf, hub, tmp_path):
    dest = tmp_path / "model"
    assert run_hf().rc == 0
    new = hub.commit(REPO, "main", {"config.json": b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 16}',
                                    "added.json": b"{}"}, delete=["README.md"])
    hub.clear()
    run = run_hf(diff=True)
    res = run.results("hf_model")
    assert run.rc == 0 and res["changed"] is True and res["commit"] == new
    assert sorted(res["downloaded"]) == ["added.json", "config.json"]
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in file_gets(hub)) == ["added.json", "config.json"]
    assert res["diff"]["before"]["commit"] != res["diff"]["after"]["commit"] == new
    assert (dest / "README.md").exists(), "files that left the revision stay unless prune is asked"
    manifest = json.loads((dest / ".hf_model.json").read_text())
    assert "README.md" in manifest["stale"] and "README.md" not in manifest["files"]
    run = run_hf(prune=True)
    res = run.results("hf_model")
    assert run.rc == 0 and res["removed"] == ["README.md"] and not (dest / "README.md").exists()
    assert_model(dest, hub)


def test_check_mode_writes_nothing(run_hf, hub, tmp_path):
    dest = tmp_path / "model"
    run = run_hf(check=True)
    res = run.results("hf_model")
    assert run.rc == 0 and res["changed"] is True and sorted(res["downloaded"]) == MODULE_FILES_MAIN
    assert not dest.exists() and file_gets(hub) == []
    assert run_hf().rc == 0
    hub.commit(REPO, "main", {"config.json": b"{}"})
    before = snapshot(dest)
    hub.clear()
    run = run_hf(check=True, diff=True)
    res = run.results("hf_model")
    assert run.rc == 0 and res["changed"] is True and res["downloaded"] == ["config.json"]
    assert res["diff"]["after"]["commit"] == hub.repos[REPO].refs["main"]
    assert snapshot(dest) == before and file_gets(hub) == []
    assert not (tmp_path / "hf_home").exists()


FAULTS = [
    # kind, times, recovers, file (big: 16 MiB, over the library's 10 MiB chunk, so a drop resumes with Range)
    ("drop", 2, True, "big.safetensors"),
    ("drop", 2, True, "model.safetensors"),
    ("5xx", 2, True, "model.safetensors"),
    ("truncate", 1, True, "big.safetensors"),
    ("corrupt", 2, True, "model.safetensors"),
    ("5xx", 50, False, "model.safetensors"),
    ("truncate", 50, False, "model.safetensors"),
    ("corrupt", 50, False, "big.safetensors"),
]


@pytest.mark.parametrize("kind,times,recovers,target", FAULTS, ids=[f"{c[0]}-{c[1]}-{c[3].split('.')[0]}" for c in FAULTS])
def test_faults_never_leave_a_wrong_file(run_hf, hub, tmp_path, kind, times, recovers, target):
    dest = tmp_path / "model"
    hub.commit(REPO, "main", {"big.safetensors": random.Random(3).randbytes(16 * 1024 * 1024)})
    at = 12 * 1024 * 1024 if target.startswith("big") else 700_000
    fault = hub.add_fault(kind, path=target, times=times, at=at)
    run = run_hf(max_workers=2)
    final = dest / target
    assert fault.times < times, "the fault was injected"
    if kind == "drop" and target.startswith("big"):
        assert any((r["range"] or "").startswith("bytes=") for r in hub.requests("GET", target)), "a dropped transfer resumes"
    if recovers:
        assert run.rc == 0, run.stdout
        assert_model(dest, hub)
    else:
        assert run.rc != 0
        res = run.results("hf_model")
        assert REPO in res["msg"] and "revision main" in res["msg"] and target in res["msg"], res["msg"]
        assert not final.exists(), "a failed transfer must not appear under the final name"
        assert not (dest / ".hf_model.tmp").exists()
        hub.clear()
        rerun = run_hf()
        assert rerun.rc == 0 and rerun.results("hf_model")["downloaded"] == [target]
        assert_model(dest, hub)


def test_verify_sha256_repairs_a_corrupted_file(run_hf, hub, tmp_path):
    dest = tmp_path / "model"
    assert run_hf().rc == 0
    target = dest / "model.safetensors"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    stat = target.stat()
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    run = run_hf(verify="size")
    assert run.rc == 0 and run.changed() == 0, "verify=size trusts a file of the right size"
    run = run_hf(verify="sha256")
    res = run.results("hf_model")
    assert run.rc == 0 and res["downloaded"] == ["model.safetensors"] and "checksum differs" in res["actions"][0]
    assert_model(dest, hub)
    (dest / "tokenizer.json").write_text("{}")
    run = run_hf(verify="size")
    assert run.rc == 0 and run.results("hf_model")["downloaded"] == ["tokenizer.json"]
    assert_model(dest, hub)


def test_gated_repo_and_token_never_leaks(run_hf, hub, tmp_path):
    token = "hf_SecretTokenValue0123456789abcdef"
    hub.create_repo("Org/Gated", token=token)
    hub.commit("Org/Gated", "main", main_files(seed=5))
    dest = tmp_path / "gated"
    run = run_hf(repo_id="Org/Gated", dest=str(dest))
    res = run.results("hf_model")
    assert run.rc != 0 and "Org/Gated" in res["msg"] and "revision main" in res["msg"] and "gated" in res["msg"]
    assert not dest.exists()
    run = run_hf(repo_id="Org/Gated", dest=str(dest), token="hf_wrong_token_000")
    res = run.results("hf_model")
    assert run.rc != 0 and "HTTP 403" in res["msg"] and not dest.exists()
    run = run_hf(repo_id="Org/Gated", dest=str(dest), token=token, verbosity=3, json_output=False, diff=True)
    assert run.rc == 0, run.stdout[-2000:]
    assert token not in run.stdout and token not in run.stderr
    assert "changed: [localhost]" in run.stdout
    for root in (dest, tmp_path / "hf_home", tmp_path / "ansible-tmp"):
        for path in root.rglob("*") if root.exists() else []:
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
    assert all(r["auth"] for r in hub.requests(contains="Org/Gated") if r["status"] == 200)


def test_lfs_bytes_from_a_cdn_get_no_token_and_a_resume_answered_in_full_starts_over(run_hf, hub, tmp_path):
    """As on the Hub, an LFS file's resolve redirects to a CDN: the token goes to the Hub only, never to the CDN.
    A CDN that answers the resume of a broken transfer with the whole file (200, Range ignored) still gives the
    right bytes: the file starts over rather than appending."""
    token = "hf_CdnTokenValue0123456789abcdef"
    hub.create_repo("Org/Cdn", token=token)
    big = random.Random(4).randbytes(16 * 1024 * 1024)
    hub.commit("Org/Cdn", "main", dict(main_files(seed=6), **{"big.safetensors": big}))
    cdn = Hub.cdn_of(hub).start()
    try:
        cdn.ignore_range = True
        fault = cdn.add_fault("drop", path="big.safetensors", times=1, at=12 * 1024 * 1024)
        dest = tmp_path / "cdn"
        run = run_hf(repo_id="Org/Cdn", dest=str(dest), token=token, max_workers=2)
        assert run.rc == 0, run.stdout[-2000:]
        assert fault.times == 0, "the transfer was broken once"
        repo = hub.repos["Org/Cdn"]
        want = {path: blob.sha256 for path, blob in repo.commits[repo.refs["main"]].items()}
        got = {str(p.relative_to(dest)): sha256_file(p) for p in dest.rglob("*") if p.is_file() and ".hf_model" not in p.name}
        assert got == want
        lfs = {path for path, blob in repo.commits[repo.refs["main"]].items() if is_lfs(path, blob)}
        assert {"model.safetensors", "big.safetensors", "config.json"} - lfs == {"config.json"}
        on_cdn = cdn.requests("GET", "/resolve/")
        assert {r["path"].rsplit("/", 1)[-1] for r in on_cdn} == lfs, on_cdn
        assert not any(r["auth"] for r in cdn.log), cdn.log
        assert all(r["auth"] for r in hub.requests(contains="Org/Cdn")), hub.log
        # the Hub itself sends no LFS bytes: it answers where they are
        assert [(r["method"], r["status"]) for r in hub.requests(contains="big.safetensors")] == [("HEAD", 302)], hub.log
        resumed = [r for r in on_cdn if r["path"].endswith("big.safetensors")]
        assert [(r["status"], r["bytes"]) for r in resumed] == [(200, 12 * 1024 * 1024), (200, len(big))], resumed
        assert resumed[1]["range"] == "bytes=%d-" % (12 * 1024 * 1024)
    finally:
        cdn.stop()
        hub.cdn = None


CDN_FAILURES = [
    # fault on the CDN's GET of model.safetensors (every time), what the message says after it
    ("5xx", 503, "HTTP 503 from 127.0.0.1:"),
    ("5xx", 404, "file not found in the revision (HTTP 404)"),
    ("5xx", 403, "unauthorized (HTTP 403): check the token"),
    ("drop", 500, "broke 5 times without progress: IncompleteRead"),
]


@pytest.mark.parametrize("kind,status,message", CDN_FAILURES, ids=[f"{c[0]}-{c[1]}" for c in CDN_FAILURES])
def test_a_failing_cdn_is_named_and_leaves_no_file(run_hf, hub, tmp_path, kind, status, message):
    cdn = Hub.cdn_of(hub).start()
    try:
        cdn.add_fault(kind, path="model.safetensors", times=1000, at=0, status=status)
        dest = tmp_path / "model"
        run = run_hf(dest=str(dest))
        res = run.results("hf_model")
        assert run.rc != 0 and message in res["msg"] and "cannot download model.safetensors" in res["msg"], res["msg"]
        if status == 503:
            assert "(for %s)" % hub.url in res["msg"] and "after 3 attempts" in res["msg"], res["msg"]
        assert not (dest / "model.safetensors").exists() and not (dest / ".hf_model.tmp").exists()
        assert all(r["status"] == 302 for r in hub.requests(contains="model.safetensors"))
    finally:
        cdn.stop()
        hub.cdn = None


class FillsUp:
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, fh, room):
        self.fh, self.room = fh, room

    def write(self, data):
        if self.fh.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)


def test_a_full_disk_mid_transfer_is_the_error_raised(hub, tmp_path):
    """The bytes are written by a second thread while the next ones arrive: its error must reach the caller
    (hf_model reports it as "disk full"), not be lost or turned into a network error."""
    from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model_hub import HubClient

    big = random.Random(5).randbytes(8 * 1024 * 1024)
    commit = hub.commit(REPO, "main", {"big.safetensors": big})
    entry = {"path": "big.safetensors", "size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
    client = HubClient(hub.url, None, 30)
    with open(tmp_path / "part", "wb") as fh:
        with pytest.raises(OSError) as raised:
            client.download(REPO, commit, entry, FillsUp(fh, 3 * 1024 * 1024))
    assert raised.value.errno == errno.ENOSPC
    assert (tmp_path / "part").stat().st_size <= 3 * 1024 * 1024
    with open(tmp_path / "part", "wb") as fh:
        assert client.download(REPO, commit, entry, fh) == ("sha256", entry["sha256"])
    assert (tmp_path / "part").read_bytes() == big


def test_state_absent(run_hf, hub, tmp_path):
    # refusing a folder without the manifest: see test_errors_name_repo_and_revision_and_change_nothing
    dest = tmp_path / "model"
    assert run_hf().rc == 0
    run = run_hf(state="absent", check=True)
    assert run.rc == 0 and run.results("hf_model")["changed"] is True and dest.exists()
    run = run_hf(state="absent", diff=True)
    assert run.rc == 0 and run.results("hf_model")["changed"] is True and not dest.exists()
    run = run_hf(state="absent")
    assert run.rc == 0 and run.changed() == 0


def test_offline_and_patterns(run_hf, hub, tmp_path):
    dest = tmp_path / "model"
    run = run_hf(allow_patterns=["*.json", "tokenizer.*"], ignore_patterns=["generation_config.json"])
    res = run.results("hf_model")
    assert run.rc == 0
    assert res["files"] == ["config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"]
    assert not (dest / "model.safetensors").exists()
    hub.clear()
    run = run_hf(offline=True, endpoint="http://127.0.0.1:9")
    assert run.rc == 0 and run.changed() == 0 and hub.log == []
    (dest / "tokenizer.json").unlink()
    common = {"repo_id": REPO, "dest": str(dest), "offline": True, "ignore_errors": True}
    run = run_hf(tasks=[hf_task("incomplete", **common), hf_task("other revision", revision=GPTQ_BRANCH, **common)])
    res = run.results("incomplete")
    assert res["failed"] and "incomplete" in res["msg"] and "tokenizer.json" in res["msg"] and REPO in res["msg"]
    assert "not " + GPTQ_BRANCH in run.results("other revision")["msg"]
    assert hub.log == []


@pytest.fixture
def unwritable(tmp_path):
    """A folder this user cannot write to: mode 0555, or for root a read-only tmpfs; None if neither works."""
    path = tmp_path / "ro"
    if os.geteuid() != 0:
        path.mkdir()
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    with tmpfs(path, "ro,size=64k") as mounted:
        yield mounted


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_errors_name_repo_and_revision_and_change_nothing(run_hf, hub, tmp_path, unwritable):
    dest = tmp_path / "model"
    assert run_hf().rc == 0
    escaping = hub.create_repo("Org/Escape")
    hub.commit("Org/Escape", "main", {"config.json": b"{}", "../evil.json": b"{}"})
    hub.commit("Org/Escape", "abs", {"/tmp/evil.json": b"{}"}, parent="main", delete=["../evil.json"])
    assert escaping.refs
    port = _closed_port()
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "precious.bin").write_bytes(b"keep me")
    cases = [
        ("absent refuses a folder without manifest", dict(state="absent", dest=str(stranger)), "refusing to remove"),
        ("invalid repo id", dict(repo_id="not-a-repo-id"), "invalid repo_id"),
        ("invalid repo id dots", dict(repo_id="Org/bad..name"), "invalid repo_id"),
        ("unknown repo", dict(repo_id="Org/Missing", dest=str(tmp_path / "missing")), "repository not found"),
        ("unknown revision", dict(revision="no-such-branch"), "revision not found"),
        ("network unreachable", dict(endpoint=f"http://127.0.0.1:{port}", revision="main"), "network unreachable"),
        ("dest not writable", dict(dest=str(unwritable / "model")), "not writable"),
        ("path escaping dest", dict(repo_id="Org/Escape", dest=str(tmp_path / "escape")), "escape dest"),
        ("absolute path", dict(repo_id="Org/Escape", revision="abs", dest=str(tmp_path / "escape")), "escape dest"),
    ]
    if unwritable is None:  # cannot make a folder this user cannot write to
        cases = [c for c in cases if c[0] != "dest not writable"]
    tasks = [hf_task(name, ignore_errors=True, **dict({"endpoint": hub.url, "repo_id": REPO, "dest": str(dest)}, **args))
             for name, args, dummy in cases]
    before = snapshot(tmp_path / "model")
    run = run_hf(tasks=tasks)
    for name, args, text in cases:
        res = run.results(name)
        assert res.get("failed"), (name, res)
        msg = res["msg"]
        assert text in msg, (name, msg)
        assert args.get("repo_id", REPO) in msg and "revision " + args.get("revision", "main") in msg, (name, msg)
    assert snapshot(tmp_path / "model") == before
    assert (stranger / "precious.bin").read_bytes() == b"keep me"
    assert not (tmp_path / "missing").exists() and not (tmp_path / "escape").exists()
    assert not (tmp_path / "evil.json").exists() and not os.path.exists("/tmp/evil.json")


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (root only; the test is skipped where mounting is not possible)."""
    with tmpfs(tmp_path / "small", "size=1m") as mounted:
        if mounted is None:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        yield mounted


def test_disk_full_fails_before_writing(run_hf, small_fs):
    dest = small_fs / "models" / "tiny"
    run = run_hf(dest=str(dest))
    res = run.results("hf_model")
    assert run.rc != 0 and "ENOSPC" in res["msg"] and REPO in res["msg"] and "revision main" in res["msg"], res["msg"]
    assert list(small_fs.iterdir()) == [], "nothing is written when the model cannot fit"


# ----------------------------------------------------------------------------- source: install from a local folder
def tree_bytes(root):
    """{relative path: bytes} of every file under root, manifest included."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def no_hub_env(hf_env, tmp_path):
    """hf_env where importing huggingface_hub fails (a stand-in package on PYTHONPATH), so a run proves it needs no Hub library."""
    blocker = tmp_path / "nohub" / "huggingface_hub"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('"""Test stand-in: huggingface_hub is not installed."""\nraise ImportError("huggingface_hub blocked by the test")\n')
    return dict(hf_env, PYTHONPATH=str(blocker.parent))


def test_source_installs_the_same_bytes_without_a_hub(run_hf, ansible_playbook, hub, tmp_path, no_hub_env):
    online = tmp_path / "online"
    patterns = {"ignore_patterns": ["README.md"]}
    first = run_hf(dest=str(online), **patterns)
    assert first.rc == 0, first.stdout
    older = tmp_path / "older"  # an install of another revision, to show a failed source run leaves it alone
    assert run_hf(dest=str(older), revision=GPTQ_BRANCH).rc == 0
    # the mirror as bundle_import lays it out: models/<folder>/ with the files and the manifest
    mirror = tmp_path / "mirror" / "models" / "TheBloke_WizardCoder-Tiny-GPTQ"
    shutil.copytree(online, mirror)
    hub.stop()
    # nothing may go to a Hub: no HF_ENDPOINT server, proxies pointing at a closed port
    closed = f"http://127.0.0.1:{_closed_port()}"
    no_hub_env.update(HF_ENDPOINT=closed, HTTPS_PROXY=closed, HTTP_PROXY=closed, https_proxy=closed, http_proxy=closed)
    offline = tmp_path / "offline"
    common = dict(repo_id=REPO, source=str(mirror), **patterns)

    def play(name, *tasks, check=False):
        return ansible_playbook(write_playbook(tmp_path / f"{name}.yml", list(tasks)), check=check, env=no_hub_env)

    run = play("check", hf_task("source", dest=str(offline), **common), check=True)
    res = run.results("source")
    assert run.rc == 0 and res["changed"] is True and res["downloaded"] == first.results("hf_model")["downloaded"]
    assert not offline.exists(), "check mode writes nothing"

    run = play("install", hf_task("source", dest=str(offline), **common))
    res = run.results("source")
    assert run.rc == 0, run.stdout
    want = first.results("hf_model")
    for key in ("changed", "commit", "files", "downloaded", "bytes_downloaded", "removed"):
        assert res[key] == want[key], key
    assert tree_bytes(offline) == tree_bytes(online), "same files and a byte-identical .hf_model.json"
    assert str(mirror) not in (offline / ".hf_model.json").read_text()
    assert not (offline / ".hf_model.tmp").exists()

    run = play("again", hf_task("source", dest=str(offline), **common))
    assert run.rc == 0 and run.changed() == 0 and run.results("source")["downloaded"] == []

    # broken sources, each in its own copy of the mirror
    def broken(name, mutate):
        path = tmp_path / "broken" / name / "models" / mirror.name
        shutil.copytree(mirror, path)
        mutate(path)
        return str(path)

    def corrupt(path):
        data = bytearray((path / "model.safetensors").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (path / "model.safetensors").write_bytes(bytes(data))

    corrupted = broken("corrupt", corrupt)
    missing = broken("missing", lambda p: (p / "tokenizer.json").unlink())
    cases = [
        ("corrupted file, fresh dest", dict(common, source=corrupted, dest=str(tmp_path / "fresh")),
         [f"source file {corrupted}/model.safetensors does not match the source manifest", "sha256"]),
        ("corrupted file, older install", dict(common, source=corrupted, dest=str(older)),
         [f"{corrupted}/model.safetensors does not match"]),
        ("missing file", dict(common, source=missing, dest=str(older)), [f"{missing}/tokenizer.json is missing"]),
        ("wrong repo_id", dict(common, repo_id="Org/Other", dest=str(tmp_path / "other")),
         [f"source {mirror} holds {REPO}", "not Org/Other"]),
        ("wrong revision", dict(common, revision=GPTQ_BRANCH, dest=str(older)),
         [f"holds revision main (commit {want['commit']}), not the requested revision {GPTQ_BRANCH}"]),
        ("source missing", dict(common, source=str(tmp_path / "nowhere"), dest=str(older)),
         [f"source {tmp_path / 'nowhere'} does not exist"]),
        ("source with endpoint", dict(common, endpoint=closed, dest=str(older)), ["mutually exclusive with endpoint"]),
    ]
    before = {"older": snapshot(older), "offline": snapshot(offline)}
    blocked = hf_task("online with the library blocked", ignore_errors=True, repo_id=REPO, endpoint=closed, dest=str(older))
    run = play("failures", *[hf_task(name, ignore_errors=True, **args) for name, args, dummy in cases], blocked)
    assert "huggingface_hub" in run.results("online with the library blocked")["msg"], "the stand-in blocks the library"
    for name, args, words in cases:
        res = run.results(name)
        assert res.get("failed"), (name, res)
        assert f"hf_model {args['repo_id']} (revision {args.get('revision', 'main')})" in res["msg"], (name, res["msg"])
        for word in words:
            assert word in res["msg"], (name, word, res["msg"])
    assert {"older": snapshot(older), "offline": snapshot(offline)} == before, "failed source runs change nothing"
    assert not (tmp_path / "fresh").exists() and not (tmp_path / "other").exists()
    assert is_gptq_install(older, want["commit"])


def is_gptq_install(dest, main_commit):
    manifest = json.loads((dest / ".hf_model.json").read_text())
    return manifest["revision"] == GPTQ_BRANCH and manifest["commit"] != main_commit and (dest / "quantize_config.json").is_file()


def test_models_role_installs_from_a_bundle_mirror(ansible_playbook, hub, tmp_path, hf_env):
    """Role models with models_source_dir: the same install root (files and manifests) as online, with the hub stopped."""
    catalog = [{"launcher": "run_tiny.sh", "repo": REPO, "revision": "main", "ignore_patterns": ["README.md"],
                "loras": [{"repo": REPO, "revision": GPTQ_BRANCH, "name": "tiny-lora"}]}]

    def role_play(name, root, **extra):
        webui = root / "text-generation-webui"
        webui.mkdir(parents=True, exist_ok=True)
        (webui / "server.py").write_text("# test stand-in of the web UI entry point\n")
        play = [{"name": name, "hosts": "localhost", "gather_facts": False,
                 "roles": [{"role": "hpcllm.webui.models", "models_install_root": str(root), "models_catalog": catalog,
                            "models_launchers": False, **extra}]}]
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        return ansible_playbook(path, env=hf_env)

    online = tmp_path / "online"
    run = role_play("online", online, models_hf_endpoint=hub.url)
    assert run.rc == 0, run.stdout[-3000:]
    # bundle_import's mirror layout: the folders relative to the install root (the lock's model keys)
    mirror = tmp_path / "mirror"
    for sub in ("models", "loras"):
        shutil.copytree(online / sub, mirror / sub)
    stopped = hub.url  # set in the inventory as before: with models_source_dir it is not used
    hub.stop()
    offline = tmp_path / "offline"
    run = role_play("offline", offline, models_source_dir=str(mirror) + "/", models_hf_endpoint=stopped)
    assert run.rc == 0, run.stdout[-3000:]
    for sub in ("models", "loras"):
        assert tree_bytes(offline / sub) == tree_bytes(online / sub), sub
    assert sorted(p.name for p in (offline / "loras").iterdir()) == ["tiny-lora"]
    run = role_play("offline-again", offline, models_source_dir=str(mirror))
    assert run.rc == 0 and run.changed() == 0, run.stdout[-3000:]
    run = role_play("relative", offline, models_source_dir="mirror")
    assert run.rc != 0 and "models_source_dir must be empty" in run.stdout and "'mirror'" in run.stdout
