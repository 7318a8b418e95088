"""Table-driven unit tests of hf_model's `source` option (plugins/module_utils/_hf_model_source.py): no network, no huggingface_hub."""

from __future__ import annotations

import hashlib
import json
import os
from collections import namedtuple

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model_source import SourceClient
from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model import (
    MANIFEST_NAME,
    TMP_NAME,
    HfModel,
    HfModelError,
    remote_entry,
)

REPO = "Org/Model"
COMMIT = "c" * 40
CONFIG = b'{"v": 1}'
WEIGHTS = bytes(range(256)) * 4
MODEL = {"config.json": CONFIG, "w.safetensors": WEIGHTS, "sub/tok.json": b"{}", "extra.bin": b"B" * 32}
Usage = namedtuple("Usage", "total used free")


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def entry_for(path: str, data: bytes) -> dict:
    lfs = path.endswith((".safetensors", ".bin"))
    return remote_entry(path, len(data), hashlib.sha256(data).hexdigest() if lfs else None, git_sha1(data))


class FakeHub:
    """The Hub side of an online run (the same stand-in as test_hf_model.py)."""

    def __init__(self, files, commit=COMMIT):
        self.files, self.commit = files, commit

    def listing(self, repo_id, revision):
        return self.commit, [entry_for(p, d) for p, d in self.files.items()]

    def download(self, repo_id, commit, entry, fh):
        fh.write(self.files[entry["path"]])

    def pause(self, attempt):
        pass


def no_hub(*args):
    raise AssertionError("a run with source must not build a Hub client")


def params(dest, **kw):
    base = dict(repo_id=REPO, revision="main", dest=str(dest), state="present", allow_patterns=None, ignore_patterns=None,
                endpoint=None, token=None, verify="size", prune=False, offline=False, max_workers=2, timeout=5, source=None)
    base.update(kw)
    return base


def online(dest, files=None, **kw):
    kw.setdefault("endpoint", "http://hub.invalid")
    hub = FakeHub(MODEL if files is None else files)
    return HfModel(params(dest, **kw), diff_mode=True, hub_factory=lambda *a: hub, disk_usage=lambda p: Usage(0, 0, 10**12)).run()


def from_source(dest, source, check_mode=False, **kw):
    return HfModel(params(dest, source=str(source), **kw), check_mode=check_mode, diff_mode=True, hub_factory=no_hub,
                   disk_usage=lambda p: Usage(0, 0, 10**12)).run()


def tree(root):
    """{relative path: bytes} of every file under root ({} if it does not exist)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


def snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def source(tmp_path):
    """A complete earlier download (no patterns) of REPO at main."""
    path = tmp_path / "mirror" / "models" / "Org_Model"
    online(path)
    return path


# ----------------------------------------------------------------------------- same bytes as online
SAME_CASES = [
    # id, source patterns (allow, ignore), run kwargs
    ("everything", (None, None), {}),
    ("pinned by commit", (None, None), dict(revision=COMMIT)),
    ("ignore from a full source", (None, None), dict(ignore_patterns=["*.bin"])),
    ("allow from a full source", (None, None), dict(allow_patterns=["*.json", "sub/"])),
    ("the source's own patterns", (["*.json", "*.safetensors"], ["sub/*"]),
     dict(allow_patterns=["*.json", "*.safetensors"], ignore_patterns=["sub/*"])),
]


@pytest.mark.parametrize("patterns,kw", [c[1:] for c in SAME_CASES], ids=[c[0] for c in SAME_CASES])
def test_source_writes_what_online_writes(tmp_path, patterns, kw):
    src = tmp_path / "src"
    online(src, allow_patterns=patterns[0], ignore_patterns=patterns[1])
    want = online(tmp_path / "online", **kw)
    got = from_source(tmp_path / "offline", src, **kw)
    assert tree(tmp_path / "offline") == tree(tmp_path / "online"), "same files and byte-identical manifest"
    assert str(src) not in (tmp_path / "offline" / MANIFEST_NAME).read_text(), "the source path is not recorded"
    for key in ("changed", "commit", "files", "downloaded", "bytes_downloaded", "removed", "actions", "diff", "revision"):
        assert sorted(got[key]) == sorted(want[key]) if isinstance(got[key], list) else got[key] == want[key], key
    assert not (tmp_path / "offline" / TMP_NAME).exists()
    again = from_source(tmp_path / "offline", src, **kw)
    assert not again["changed"] and again["downloaded"] == [] and again["actions"] == []


def test_source_check_mode_writes_nothing_and_predicts(tmp_path, source):
    dest = tmp_path / "dest"
    res = from_source(dest, source, check_mode=True)
    assert res["changed"] and sorted(res["downloaded"]) == sorted(MODEL) and res["commit"] == COMMIT
    assert res["bytes_downloaded"] == sum(map(len, MODEL.values()))
    assert not dest.exists()
    from_source(dest, source)
    before = snapshot(dest)
    res = from_source(dest, source, check_mode=True)
    assert not res["changed"] and snapshot(dest) == before


def test_source_repairs_and_prunes_like_online(tmp_path, source):
    dest = tmp_path / "dest"
    online(dest, files=dict(MODEL, **{"old.json": b"[]"}))
    (dest / "config.json").write_bytes(b"{}")
    res = from_source(dest, source, verify="sha256", prune=True)
    assert res["downloaded"] == ["config.json"] and res["removed"] == ["old.json"]
    assert tree(dest) == tree(source)


# ----------------------------------------------------------------------------- failures change nothing
def _set_manifest(src, **changes):
    path = src / MANIFEST_NAME
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "file":
            data["files"].update(value)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


FAIL_CASES = [
    # id, mutate(source), run kwargs, words the message must contain ({src} is the source folder)
    ("source missing", lambda s: None, dict(source_name="nowhere"), ["source {src}", "does not exist"]),
    ("source is a file", lambda s: (s.parent / "file").write_text("x"), dict(source_name="file"), ["is not a directory"]),
    ("no manifest", lambda s: (s / MANIFEST_NAME).unlink(), {}, ["{src} has no .hf_model.json"]),
    ("manifest not JSON", lambda s: (s / MANIFEST_NAME).write_text("{oops"), {}, ["{src}", "not valid JSON"]),
    ("manifest wrong layout", lambda s: (s / MANIFEST_NAME).write_text('{"format": 7, "files": {}}'), {}, ["unknown layout"]),
    ("another repo", lambda s: _set_manifest(s, repo_id="Other/Model"), {}, ["holds Other/Model", "not Org/Model"]),
    ("another revision", lambda s: None, dict(revision="v2"),
     ["holds revision main (commit %s), not the requested revision v2" % COMMIT]),
    ("partial manifest", lambda s: _set_manifest(s, commit=None), {}, ["records no commit"]),
    ("narrower source", lambda s: _set_manifest(s, ignore_patterns=["*.bin"]), {}, ["ignore_patterns ['*.bin']", "may lack"]),
    ("missing file", lambda s: (s / "sub" / "tok.json").unlink(), {}, ["{src}/sub/tok.json is missing"]),
    ("truncated file", lambda s: (s / "w.safetensors").write_bytes(WEIGHTS[:10]), {},
     ["{src}/w.safetensors has 10 bytes, the manifest records %d" % len(WEIGHTS)]),
    ("a folder in place of a file", lambda s: ((s / "config.json").unlink(), (s / "config.json").mkdir()), {},
     ["{src}/config.json is not a regular file"]),
    ("corrupt LFS file", lambda s: _flip_last_byte(s / "w.safetensors"), {},
     ["cannot download w.safetensors", "source file {src}/w.safetensors does not match", "sha256"]),
    ("corrupt small file (git blob id)", lambda s: _flip_last_byte(s / "config.json"), {},
     ["source file {src}/config.json does not match", "git-sha1"]),
    ("bad record", lambda s: _set_manifest(s, file={"x.json": {"size": "12", "sha256": None, "blob_id": None}}), {},
     ["is invalid", "x.json: invalid size"]),
    ("unverifiable record", lambda s: _set_manifest(s, file={"x.json": {"size": 2, "sha256": None, "blob_id": None}}), {},
     ["x.json: neither sha256 nor blob_id"]),
    ("escaping path", lambda s: _set_manifest(s, file={"../x.json": {"size": 2, "sha256": None, "blob_id": "b" * 40}}), {},
     ["escape dest"]),
    ("with endpoint", lambda s: None, dict(endpoint="http://hub.invalid"), ["mutually exclusive with endpoint"]),
    ("with token and offline", lambda s: None, dict(token="hf_x", offline=True), ["mutually exclusive with token, offline"]),
]


@pytest.mark.parametrize("existing", [False, True], ids=["fresh dest", "older install"])
@pytest.mark.parametrize("case,mutate,kw,words", FAIL_CASES, ids=[c[0] for c in FAIL_CASES])
def test_source_failures_name_the_path_and_leave_dest_as_it_was(tmp_path, source, existing, case, mutate, kw, words):
    dest = tmp_path / "dest"
    if existing:
        online(dest, files={"config.json": b'{"v": 0}', "w.safetensors": WEIGHTS[::-1]}, commit="d" * 40)
    mutate(source)
    kw = dict(kw)
    src = source.parent / kw.pop("source_name") if "source_name" in kw else source
    before = snapshot(dest) if existing else None
    # check mode reads the manifest and stats the files; a wrong hash is only seen while copying
    for check_mode in (False,) if case.startswith("corrupt") else (True, False):
        with pytest.raises(HfModelError) as info:
            from_source(dest, src, check_mode=check_mode, max_workers=1, **kw)
        msg = info.value.msg
        assert "hf_model %s (revision %s)" % (REPO, kw.get("revision", "main")) in msg
        for word in words:
            assert word.format(src=src) in msg, (word, msg)
        if existing:
            assert snapshot(dest) == before, "dest is left as it was"
        else:
            assert not dest.exists(), "a failed install leaves no folder behind"


def test_a_bad_file_late_in_the_run_places_nothing(tmp_path, source):
    """Copies are renamed only when all succeeded: the good files copied before the bad one are not placed either."""
    _flip_last_byte(source / "w.safetensors")
    for workers in (1, 4):
        with pytest.raises(HfModelError, match="w.safetensors"):
            from_source(tmp_path / "dest", source, max_workers=workers)
        assert not (tmp_path / "dest").exists()


def test_source_client_alone(tmp_path, source):
    client = SourceClient(str(source))
    commit, entries = client.listing(REPO, "main")
    assert commit == COMMIT and [e["path"] for e in entries] == sorted(MODEL)
    with open(tmp_path / "out", "wb") as fh:
        digest = client.download(REPO, commit, entries[-1], fh)
    assert digest == ("sha256", hashlib.sha256(WEIGHTS).hexdigest()) and (tmp_path / "out").read_bytes() == WEIGHTS
    assert client.stage_all is True
