"""module_utils._wheel_hashes on locks, wheelhouses and records laid out in tmp folders."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.hpcllm.webui.plugins.module_utils._wheel_hashes import (
    WheelHashes,
    WheelHashesError,
    logical_lines,
    parse_lock,
)

HEX_A = "a" * 64
GPTQ = "auto_gptq-0.4.2+cu117-cp311-cp311-linux_x86_64.whl"
TORCH = "torch-2.0.1+cu118-cp311-cp311-linux_x86_64.whl"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def layout(tmp_path):
    """A lock with hashed lines, two unhashed pins, their wheels in the wheelhouse."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    (house / GPTQ).write_bytes(b"gptq wheel")
    (house / TORCH).write_bytes(b"torch wheel")
    (house / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"six")
    conf = tmp_path / "webui"
    conf.mkdir()
    lock = conf / "lock.txt"
    lock.write_text(
        "# a lock\n"
        f"six==1.16.0 --hash=sha256:{HEX_A}  # hashed by its writer\n"
        "--only-binary :all:\n"
        "Auto_GPTQ==0.4.2+cu117  # a GitHub release wheel\n"
        "\n"
        "torch==2.0.1+cu118 ; platform_system == 'Linux'\n",
        encoding="utf-8")
    params = {"lock": str(lock), "wheelhouse": str(house), "record": str(conf / "wheel-sha256.json"),
              "dest": str(conf / "lock-hashed.txt")}
    return params


def run(params, check_mode=False):
    return WheelHashes(params, check_mode=check_mode).run()


def test_first_run_records_and_writes_the_hashed_lock(layout):
    result = run(layout)
    assert result["changed"] is True
    assert result["recorded"] == sorted([GPTQ, TORCH])
    record = json.loads(open(layout["record"], encoding="utf-8").read())
    assert record == {"format": 1, "files": {GPTQ: sha(b"gptq wheel"), TORCH: sha(b"torch wheel")}}
    lines = open(layout["dest"], encoding="utf-8").read().splitlines()
    # a header without paths (the same lock and wheels give the same bytes on any master)
    assert lines[0].startswith("# ") and lines[1].startswith("# ")
    assert layout["lock"] not in "".join(lines[:2]) and layout["record"] not in "".join(lines[:2])
    assert lines[2:] == [
        f"six==1.16.0 --hash=sha256:{HEX_A}",
        "--only-binary :all:",
        f"Auto_GPTQ==0.4.2+cu117 --hash=sha256:{sha(b'gptq wheel')}",
        f"torch==2.0.1+cu118 ; platform_system == 'Linux' --hash=sha256:{sha(b'torch wheel')}",
    ]
    assert result["hashed"] == {"Auto_GPTQ==0.4.2+cu117": [sha(b"gptq wheel")],
                                "torch==2.0.1+cu118": [sha(b"torch wheel")]}
    # the second run: nothing to record, nothing to write
    mtime = os.stat(layout["dest"]).st_mtime_ns
    again = run(layout)
    assert again["changed"] is False and again["actions"] == [] and again["recorded"] == []
    assert os.stat(layout["dest"]).st_mtime_ns == mtime


def test_a_different_file_under_a_recorded_name_is_refused(layout):
    run(layout)
    before = open(layout["dest"], encoding="utf-8").read()
    swapped = os.path.join(layout["wheelhouse"], GPTQ)
    with open(swapped, "wb") as handle:
        handle.write(b"another gptq wheel")
    with pytest.raises(WheelHashesError) as err:
        run(layout)
    msg = str(err.value)
    assert msg.startswith(f"{swapped} (Auto_GPTQ==0.4.2+cu117) is not the file first fetched under that name: "
                          f"its sha256 is {sha(b'another gptq wheel')}, {layout['record']} recorded "
                          f"{sha(b'gptq wheel')}"), msg
    assert "Remove the file to fetch it again" in msg
    # nothing rewritten
    assert open(layout["dest"], encoding="utf-8").read() == before
    assert json.loads(open(layout["record"], encoding="utf-8").read())["files"][GPTQ] == sha(b"gptq wheel")


def test_a_pin_without_its_wheel_fails_naming_it_and_writes_nothing(layout):
    os.unlink(os.path.join(layout["wheelhouse"], TORCH))
    with pytest.raises(WheelHashesError) as err:
        run(layout)
    assert str(err.value).startswith(f"torch==2.0.1+cu118 ({layout['lock']} line 6) has no --hash in the lock and "
                                     f"no wheel in {layout['wheelhouse']}: "), err.value
    assert not os.path.exists(layout["record"]) and not os.path.exists(layout["dest"])


def test_check_mode_reports_and_writes_nothing(layout):
    os.unlink(os.path.join(layout["wheelhouse"], TORCH))  # not fetched in check mode
    result = run(layout, check_mode=True)
    assert result["changed"] is True
    assert result["actions"] == [f"record the sha256 of {GPTQ} in {layout['record']}",
                                 "fetch and record torch==2.0.1+cu118"]
    assert not os.path.exists(layout["record"]) and not os.path.exists(layout["dest"])


def test_a_new_pin_is_recorded_beside_the_old_ones(layout):
    run(layout)
    with open(layout["lock"], "a", encoding="utf-8") as handle:
        handle.write("exllama==0.0.17+cu117\n")
    with open(os.path.join(layout["wheelhouse"], "exllama-0.0.17+cu117-cp311-cp311-linux_x86_64.whl"), "wb") as handle:
        handle.write(b"exllama")
    result = run(layout)
    assert result["recorded"] == ["exllama-0.0.17+cu117-cp311-cp311-linux_x86_64.whl"]
    files = json.loads(open(layout["record"], encoding="utf-8").read())["files"]
    assert sorted(files) == sorted([GPTQ, TORCH, "exllama-0.0.17+cu117-cp311-cp311-linux_x86_64.whl"])


@pytest.mark.parametrize(
    "line, message",
    [
        ("-r other.txt", "-r cannot be installed with --require-hashes from a lock"),
        ("--constraint=c.txt", "--constraint cannot be installed with --require-hashes from a lock"),
        ("-e git+https://example.org/x.git#egg=x", "-e cannot be installed with --require-hashes from a lock"),
        ("torch>=2.0", "a line without --hash must pin one version (name==version)"),
        ("x @ https://example.org/x-1.0-py3-none-any.whl", "a line without --hash must pin one version"),
        ("six==1.16.0 --hash=md5:abc", "'--hash=md5:abc' is not a --hash=sha256:<64 hex digits> option"),
    ],
)
def test_lines_that_cannot_be_hashed_are_named(tmp_path, line, message):
    lock = tmp_path / "lock.txt"
    lock.write_text(f"six==1.16.0 --hash=sha256:{HEX_A}\n{line}\n", encoding="utf-8")
    with pytest.raises(WheelHashesError) as err:
        parse_lock(lock.read_text(encoding="utf-8"), str(lock))
    assert str(err.value).startswith(f"{lock} line 2 ({line}): "), err.value
    assert message in str(err.value)


def test_continuations_and_comments_make_logical_lines():
    text = ("pyarrow==13.0.0 \\\n"
            f"    --hash=sha256:{HEX_A} \\\n"
            f"    --hash sha256:{'b' * 64}\n"
            "    # datasets 2.14.5\n"
            "x==1#not-a-comment\n")
    assert logical_lines(text) == [(1, f"pyarrow==13.0.0 --hash=sha256:{HEX_A} --hash sha256:{'b' * 64}"),
                                   (5, "x==1#not-a-comment")]
    kinds = [e["kind"] for e in parse_lock(text.replace("x==1#not-a-comment", "x==1"), "lock")]
    assert kinds == ["hashed", "pin"]


def test_a_broken_record_is_named(layout):
    with open(layout["record"], "w", encoding="utf-8") as handle:
        handle.write("[]")
    with pytest.raises(WheelHashesError) as err:
        run(layout)
    assert str(err.value) == (f"the record {layout['record']} is not a format 1 record "
                              '({"format": 1, "files": {...}})')


def test_plan_only_names_the_wheels_to_fetch_and_writes_nothing(layout):
    os.unlink(os.path.join(layout["wheelhouse"], TORCH))
    result = run(dict(layout, plan_only=True))
    assert result["changed"] is False
    assert result["missing"] == ["torch==2.0.1+cu118"]
    assert not os.path.exists(layout["record"]) and not os.path.exists(layout["dest"])
    # a recorded file that changed is refused in the plan too
    with open(os.path.join(layout["wheelhouse"], TORCH), "wb") as handle:
        handle.write(b"torch wheel")
    run(layout)
    with open(os.path.join(layout["wheelhouse"], TORCH), "wb") as handle:
        handle.write(b"another torch wheel")
    with pytest.raises(WheelHashesError, match="is not the file first fetched under that name"):
        run(dict(layout, plan_only=True))
