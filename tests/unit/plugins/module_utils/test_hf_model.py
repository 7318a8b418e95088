"""Table-driven unit tests of plugins/module_utils/_hf_model.py (no network: a fake hub client)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections import namedtuple

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model import (
    MANIFEST_NAME,
    TMP_NAME,
    HfModel,
    HfModelError,
    build_manifest,
    check_inside,
    check_remote_path,
    expected_digest,
    file_digest,
    make_plan,
    read_manifest,
    remote_entry,
    select,
    validate_repo_id,
    write_manifest,
)

REPO = "Org/Model"
COMMIT = "a" * 40


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def entry_for(path: str, data: bytes, lfs: bool | None = None) -> dict:
    lfs = path.endswith(".safetensors") if lfs is None else lfs
    return remote_entry(path, len(data), hashlib.sha256(data).hexdigest() if lfs else None, git_sha1(data))


# ----------------------------------------------------------------------------- repo ids
@pytest.mark.parametrize(
    "repo_id,ok",
    [
        ("TheBloke/WizardCoder-Python-13B-V1.0-GPTQ", True),
        ("WizardLM/WizardCoder-1B-V1.0", True),
        ("a/b", True),
        ("org_1/model.v2_x", True),
        ("noslash", False),
        ("a/b/c", False),
        ("", False),
        ("/model", False),
        ("org/", False),
        ("org/-model", False),
        ("org/model-", False),
        ("org/.model", False),
        ("org/bad..name", False),
        ("org/bad--name", False),
        ("org/sp ace", False),
        ("org/" + "x" * 97, False),
        (None, False),
    ],
)
def test_validate_repo_id(repo_id, ok):
    assert (validate_repo_id(repo_id) is None) is ok


# ----------------------------------------------------------------------------- path safety
@pytest.mark.parametrize(
    "path,ok",
    [
        ("config.json", True),
        ("sub/dir/model.safetensors", True),
        ("..hidden", True),
        ("../evil", False),
        ("sub/../../evil", False),
        ("sub/./x", False),
        ("/etc/passwd", False),
        ("C:/windows", False),
        ("a\\..\\b", False),
        ("a//b", False),
        ("dir/", False),
        ("", False),
        ("nul\x00byte", False),
        (MANIFEST_NAME, False),
        (TMP_NAME + "/part", False),
    ],
)
def test_check_remote_path(path, ok):
    if ok:
        assert check_remote_path(path) == path
    else:
        with pytest.raises(HfModelError):
            check_remote_path(path)


def test_check_inside_follows_symlinks(tmp_path):
    dest = tmp_path / "dest"
    (dest / "inside").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "link").symlink_to(outside)
    assert check_inside(str(dest), "inside/x.json") == str(dest / "inside/x.json")
    with pytest.raises(HfModelError, match="outside dest"):
        check_inside(str(dest), "link/x.json")
    (dest / "file-link.json").symlink_to(outside / "x.json")
    assert check_inside(str(dest), "file-link.json") == str(dest / "file-link.json"), "a link is replaced, not followed"


def test_download_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    dest = tmp_path / "m"
    dest.mkdir()
    victim = tmp_path / "victim.json"
    victim.write_bytes(b"untouched")
    (dest / "config.json").symlink_to(victim)
    res = runner(dest, FakeHub(MODEL)).run()
    assert "config.json" in res["downloaded"]
    assert victim.read_bytes() == b"untouched" and not (dest / "config.json").is_symlink()
    assert (dest / "config.json").read_bytes() == OLD


# ----------------------------------------------------------------------------- patterns
FILES = ["README.md", "config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "sub/a.json"]


@pytest.mark.parametrize(
    "allow,ignore,expected",
    [
        (None, None, FILES),
        (["*.json"], None, ["config.json", "tokenizer.json", "sub/a.json"]),
        (None, ["*.bin", "*.md"], ["config.json", "model.safetensors", "tokenizer.json", "sub/a.json"]),
        (["sub/"], None, ["sub/a.json"]),
        ("*.safetensors", None, ["model.safetensors"]),
        (["*.json"], ["sub/*"], ["config.json", "tokenizer.json"]),
        ([], None, []),
    ],
)
def test_select(allow, ignore, expected):
    assert select(FILES, allow, ignore) == expected


# ----------------------------------------------------------------------------- manifest
def test_manifest_round_trip(tmp_path):
    files = {"config.json": entry_for("config.json", b"{}"), "model.safetensors": entry_for("model.safetensors", b"x" * 10)}
    data = build_manifest(REPO, "main", COMMIT, files, {}, ["*"], None)
    write_manifest(str(tmp_path), data)
    assert read_manifest(str(tmp_path)) == data
    assert set(data["files"]["config.json"]) == {"size", "sha256", "blob_id"}
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME], "no temporary file left behind"
    assert oct((tmp_path / MANIFEST_NAME).stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize(
    "content,error",
    [
        (None, None),
        ("{not json", "not valid JSON"),
        ('{"format": 99, "files": {}}', "unknown layout"),
        ('["a list"]', "unknown layout"),
        ('{"format": 1}', "unknown layout"),
    ],
)
def test_read_manifest(tmp_path, content, error):
    if content is not None:
        (tmp_path / MANIFEST_NAME).write_text(content)
    if error is None:
        assert read_manifest(str(tmp_path)) is None
    else:
        with pytest.raises(HfModelError, match=error):
            read_manifest(str(tmp_path))


# ----------------------------------------------------------------------------- plan
OLD = b'{"v": 1}'
NEW = b'{"v": 2}'
WEIGHTS = b"W" * 64
BAD_WEIGHTS = b"X" * 64


def no_read(path, entry):
    raise AssertionError("a no-op plan must not read %s" % path)


# disk: {path: bytes}; recorded: {path: bytes recorded in the manifest}; remote: {path: bytes}
PLAN_CASES = [
    # id, disk, recorded, remote, verify, prune, fetch, keep, adopt, remove, stale, reads
    ("fresh", {}, {}, {"c.json": OLD, "w.safetensors": WEIGHTS}, "size", False,
     ["c.json", "w.safetensors"], [], [], [], [], False),
    ("no-op size", {"c.json": OLD, "w.safetensors": WEIGHTS}, {"c.json": OLD, "w.safetensors": WEIGHTS},
     {"c.json": OLD, "w.safetensors": WEIGHTS}, "size", False, [], ["c.json", "w.safetensors"], [], [], [], False),
    ("no-op none", {"c.json": OLD}, {"c.json": OLD}, {"c.json": OLD}, "none", False, [], ["c.json"], [], [], [], False),
    ("changed upstream", {"c.json": OLD, "w.safetensors": WEIGHTS}, {"c.json": OLD, "w.safetensors": WEIGHTS},
     {"c.json": NEW, "w.safetensors": WEIGHTS}, "size", False, ["c.json"], ["w.safetensors"], [], [], [], False),
    ("missing on disk", {"c.json": OLD}, {"c.json": OLD, "w.safetensors": WEIGHTS},
     {"c.json": OLD, "w.safetensors": WEIGHTS}, "none", False, ["w.safetensors"], ["c.json"], [], [], [], False),
    ("size differs", {"w.safetensors": WEIGHTS[:10]}, {"w.safetensors": WEIGHTS}, {"w.safetensors": WEIGHTS}, "size", False,
     ["w.safetensors"], [], [], [], [], False),
    ("size differs trusted by none", {"w.safetensors": WEIGHTS[:10]}, {"w.safetensors": WEIGHTS}, {"w.safetensors": WEIGHTS},
     "none", False, [], ["w.safetensors"], [], [], [], False),
    ("corrupt same size, size", {"w.safetensors": BAD_WEIGHTS}, {"w.safetensors": WEIGHTS}, {"w.safetensors": WEIGHTS},
     "size", False, [], ["w.safetensors"], [], [], [], False),
    ("corrupt same size, sha256", {"w.safetensors": BAD_WEIGHTS}, {"w.safetensors": WEIGHTS}, {"w.safetensors": WEIGHTS},
     "sha256", False, ["w.safetensors"], [], [], [], [], True),
    ("corrupt small file, sha256 (git blob id)", {"c.json": NEW}, {"c.json": OLD}, {"c.json": OLD}, "sha256", False,
     ["c.json"], [], [], [], [], True),
    ("adopt an untracked identical file", {"w.safetensors": WEIGHTS}, {}, {"w.safetensors": WEIGHTS}, "size", False,
     [], [], ["w.safetensors"], [], [], True),
    ("untracked different file", {"w.safetensors": BAD_WEIGHTS}, {}, {"w.safetensors": WEIGHTS}, "size", False,
     ["w.safetensors"], [], [], [], [], True),
    ("left the revision, kept", {"c.json": OLD, "old.bin": WEIGHTS}, {"c.json": OLD, "old.bin": WEIGHTS}, {"c.json": OLD},
     "size", False, [], ["c.json"], [], [], ["old.bin"], False),
    ("left the revision, pruned", {"c.json": OLD, "old.bin": WEIGHTS}, {"c.json": OLD, "old.bin": WEIGHTS}, {"c.json": OLD},
     "size", True, [], ["c.json"], [], ["old.bin"], [], False),
]


@pytest.mark.parametrize(
    "disk,recorded,remote,verify,prune,fetch,keep,adopt,remove,stale,reads",
    [c[1:] for c in PLAN_CASES],
    ids=[c[0] for c in PLAN_CASES],
)
def test_make_plan(tmp_path, disk, recorded, remote, verify, prune, fetch, keep, adopt, remove, stale, reads):
    for path, data in disk.items():
        (tmp_path / path).write_bytes(data)
    manifest = build_manifest(REPO, "main", COMMIT, {p: entry_for(p, d) for p, d in recorded.items()}) if recorded else None
    listing = [entry_for(p, d) for p, d in remote.items()]
    calls = []

    def digest(path, entry):
        calls.append(path)
        return file_digest(path, entry)

    plan = make_plan(str(tmp_path), listing, manifest, verify, prune, digest=digest if reads else no_read)
    assert sorted(e["path"] for e, dummy in plan["fetch"]) == fetch
    assert plan["keep"] == keep
    assert plan["adopt"] == adopt
    assert plan["remove"] == remove
    assert sorted(plan["stale"]) == stale
    if reads:
        assert calls, "this case must hash"


def test_plan_prunes_previous_stale_entries(tmp_path):
    (tmp_path / "old.bin").write_bytes(WEIGHTS)
    manifest = build_manifest(REPO, "main", COMMIT, {"c.json": entry_for("c.json", OLD)}, {"old.bin": entry_for("old.bin", WEIGHTS)})
    (tmp_path / "c.json").write_bytes(OLD)
    plan = make_plan(str(tmp_path), [entry_for("c.json", OLD)], manifest, "size", True, digest=no_read)
    assert plan["remove"] == ["old.bin"]
    plan = make_plan(str(tmp_path), [entry_for("c.json", OLD)], manifest, "size", False, digest=no_read)
    assert list(plan["stale"]) == ["old.bin"]


@pytest.mark.parametrize("path,lfs,kind", [("w.safetensors", True, "sha256"), ("c.json", False, "git-sha1")])
def test_file_digest_matches_hub_identity(tmp_path, path, lfs, kind):
    (tmp_path / path).write_bytes(WEIGHTS)
    entry = entry_for(path, WEIGHTS, lfs)
    assert file_digest(str(tmp_path / path), entry) == expected_digest(entry)
    assert expected_digest(entry)[0] == kind


# ----------------------------------------------------------------------------- runner with a fake hub
Usage = namedtuple("Usage", "total used free")


class FakeHub:
    def __init__(self, files, commit=COMMIT, fail_on=None, error=None):
        self.files = files
        self.commit = commit
        self.fail_on = fail_on or {}
        self.error = error
        self.downloads = []

    def listing(self, repo_id, revision):
        if self.error:
            raise HfModelError(self.error)
        return self.commit, [entry_for(p, d) for p, d in self.files.items()]

    def download(self, repo_id, commit, entry, fh):
        self.downloads.append(entry["path"])
        behaviour = self.fail_on.get(entry["path"])
        if behaviour == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        if behaviour == "fatal":
            raise HfModelError("HTTP 404 from hub")
        data = self.files[entry["path"]]
        fh.write(data[:-1] + b"?" if behaviour == "corrupt" else data)

    def pause(self, attempt):
        pass


def params(dest, **kw):
    base = dict(repo_id=REPO, revision="main", dest=str(dest), state="present", allow_patterns=None, ignore_patterns=None,
                endpoint="http://hub.invalid", token=None, verify="size", prune=False, offline=False, max_workers=2, timeout=5)
    base.update(kw)
    return base


def runner(dest, hub, check_mode=False, free=10**12, **kw):
    return HfModel(params(dest, **kw), check_mode=check_mode, diff_mode=True, hub_factory=lambda *a: hub,
                   disk_usage=lambda p: Usage(0, 0, free))


MODEL = {"config.json": OLD, "w.safetensors": WEIGHTS, "sub/tok.json": b"{}"}


def test_runner_downloads_then_noop(tmp_path):
    dest = tmp_path / "m"
    hub = FakeHub(MODEL)
    res = runner(dest, hub).run()
    assert res["changed"] and sorted(res["downloaded"]) == sorted(MODEL) and res["bytes_downloaded"] == sum(map(len, MODEL.values()))
    assert (dest / "sub/tok.json").read_bytes() == b"{}" and not (dest / TMP_NAME).exists()
    hub.downloads.clear()
    res = runner(dest, hub).run()
    assert not res["changed"] and hub.downloads == [] and res["diff"]["before"] == res["diff"]["after"]


def test_runner_check_mode_writes_nothing(tmp_path):
    dest = tmp_path / "m"
    hub = FakeHub(MODEL)
    res = runner(dest, hub, check_mode=True).run()
    assert res["changed"] and sorted(res["downloaded"]) == sorted(MODEL) and hub.downloads == []
    assert not dest.exists()


@pytest.mark.parametrize(
    "kw,fail_on,error,message",
    [
        (dict(free=10), {}, None, "ENOSPC"),
        ({}, {"w.safetensors": "enospc"}, None, "disk full (ENOSPC)"),
        ({}, {"w.safetensors": "corrupt"}, None, "sha256 of the received bytes does not match"),
        ({}, {"w.safetensors": "fatal"}, None, "cannot download w.safetensors"),
        ({}, {}, "repository not found", "repository not found"),
        (dict(repo_id="bad"), {}, None, "invalid repo_id"),
        (dict(revision="has space"), {}, None, "invalid revision"),
        (dict(max_workers=0), {}, None, "max_workers"),
    ],
)
def test_runner_errors_name_repo_and_revision(tmp_path, kw, fail_on, error, message):
    dest = tmp_path / "m"
    hub = FakeHub(MODEL, fail_on=fail_on, error=error)
    with pytest.raises(HfModelError) as info:
        runner(dest, hub, **kw).run()
    assert message in info.value.msg
    assert "revision %s" % kw.get("revision", "main") in info.value.msg and kw.get("repo_id", REPO) in info.value.msg
    assert not (dest / "w.safetensors").exists(), "no wrong or partial file under the final name"
    assert not (dest / TMP_NAME).exists()
    if not (dest / MANIFEST_NAME).exists():
        assert not dest.exists(), "a failed run that placed nothing leaves no folder behind"


def test_runner_keeps_a_truthful_record_after_a_partial_failure(tmp_path):
    dest = tmp_path / "m"
    hub = FakeHub(MODEL, fail_on={"w.safetensors": "corrupt"})
    with pytest.raises(HfModelError):
        runner(dest, hub, max_workers=1).run()
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == ["config.json"] and manifest["commit"] is None
    hub = FakeHub(MODEL)
    res = runner(dest, hub, max_workers=1).run()
    assert res["downloaded"] == ["w.safetensors", "sub/tok.json"] == hub.downloads


def test_runner_refuses_a_dest_holding_another_repo(tmp_path):
    dest = tmp_path / "m"
    runner(dest, FakeHub(MODEL)).run()
    with pytest.raises(HfModelError, match="holds Org/Model"):
        runner(dest, FakeHub(MODEL), repo_id="Other/Model").run()
    with pytest.raises(HfModelError, match="refusing to remove"):
        runner(dest, FakeHub(MODEL), repo_id="Other/Model", state="absent").run()


@pytest.mark.parametrize("check_mode", [True, False])
def test_runner_absent(tmp_path, check_mode):
    stranger = tmp_path / "s"
    stranger.mkdir()
    with pytest.raises(HfModelError, match="refusing to remove"):
        runner(stranger, FakeHub(MODEL), state="absent").run()
    dest = tmp_path / "m"
    runner(dest, FakeHub(MODEL)).run()
    res = runner(dest, FakeHub(MODEL), state="absent", check_mode=check_mode).run()
    assert res["changed"] and dest.exists() is check_mode


@pytest.mark.parametrize(
    "mutate,revision,message",
    [
        (None, "main", None),
        (None, COMMIT, None),
        ("delete", "main", "incomplete"),
        ("truncate", "main", "size differs"),
        (None, "other-branch", "holds revision main"),
    ],
)
def test_runner_offline(tmp_path, mutate, revision, message):
    dest = tmp_path / "m"
    runner(dest, FakeHub(MODEL)).run()
    if mutate == "delete":
        (dest / "config.json").unlink()
    elif mutate == "truncate":
        (dest / "w.safetensors").write_bytes(b"short")

    def no_hub(*args):
        raise AssertionError("offline must not build a hub client")

    module = HfModel(params(dest, offline=True, revision=revision), hub_factory=no_hub)
    if message is None:
        res = module.run()
        assert not res["changed"] and res["commit"] == COMMIT
    else:
        with pytest.raises(HfModelError, match=message):
            module.run()


def test_runner_refuses_escaping_listing_before_writing(tmp_path):
    dest = tmp_path / "m"
    hub = FakeHub({"config.json": OLD, "../evil.json": OLD})
    with pytest.raises(HfModelError, match="escape dest"):
        runner(dest, hub).run()
    assert not dest.exists() and not (tmp_path / "evil.json").exists() and hub.downloads == []


def test_runner_not_writable(tmp_path, monkeypatch):
    dest = tmp_path / "m"
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(HfModelError, match="not writable"):
        runner(dest, FakeHub(MODEL)).run()
    assert not dest.exists()


# ----------------------------------------------------------------------------- streamed hashing
@pytest.mark.parametrize(
    "path,ops,valid",
    [
        ("w.safetensors", [("write", WEIGHTS[:10]), ("write", WEIGHTS[10:])], True),
        ("c.json", [("write", OLD)], True),
        # a server ignoring Range: the transfer rewinds to 0 and truncates, then writes everything again
        ("w.safetensors", [("write", WEIGHTS[:10]), ("seek", 0), ("truncate", None), ("write", WEIGHTS)], True),
        ("w.safetensors", [("write", WEIGHTS[:10]), ("seek", 5), ("write", WEIGHTS[5:])], False),
        ("w.safetensors", [("write", WEIGHTS), ("truncate", 10)], False),
    ],
)
def test_hashing_writer(tmp_path, path, ops, valid):
    from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model_hub import HashingWriter

    data = WEIGHTS if path.endswith(".safetensors") else OLD
    entry = entry_for(path, data)
    with open(tmp_path / "f", "wb") as fh:
        writer = HashingWriter(fh, entry)
        for op, arg in ops:
            if arg is None:
                getattr(writer, op)()
            else:
                getattr(writer, op)(arg)
    digest = writer.digest()
    if valid:
        assert digest == expected_digest(entry) == file_digest(str(tmp_path / "f"), entry)
    else:
        assert digest is None
