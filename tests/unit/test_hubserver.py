"""The hub stand-in (tests/hubserver/hubserver.py) pages its tree listing as text-generation-webui's downloader asks, and serves HTTPS."""

import base64
import json
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "hubserver"))
from hubserver import Hub  # noqa: E402  pylint: disable=wrong-import-position

REPO = "hpcllm-test/paged"
FILES = {"config.json": b"{}", "merges.txt": b"#version: 0.2\n", "model.safetensors": b"\0" * 64, "sub/vocab.json": b"{}"}


@pytest.fixture(scope="module")
def hub():
    hub = Hub()
    hub.create_repo(REPO)
    hub.commit(REPO, "main", FILES)
    hub.start()
    yield hub
    hub.stop()


def get(url, context=None):
    with urllib.request.urlopen(url, timeout=10, context=context) as answer:
        return answer.status, json.loads(answer.read())


def upstream_cursor(path):
    """download-model.py (8466cf2) get_download_links_from_huggingface: the cursor of the page after `path`."""
    cursor = base64.b64encode(f'{{"file_name":"{path}"}}'.encode()) + b':50'
    return base64.b64encode(cursor).replace(b'=', b'%3D').decode()


def test_pages_as_the_web_uis_downloader_walks_them_until_an_empty_one(hub):
    page, seen, requests = f"/api/models/{REPO}/tree/main", [], 0
    cursor = ""
    while True:
        requests += 1
        assert requests < 5, f"the listing never ended: {seen}"
        _status, entries = get(f"{hub.url}{page}" + (f"?cursor={cursor}" if cursor else ""))
        if not entries:
            break
        seen += [e["path"] for e in entries]
        cursor = upstream_cursor(entries[-1]["path"])
    # the top level only (no recursive=true), each entry once
    assert seen == ["config.json", "merges.txt", "model.safetensors", "sub"] and requests == 2, seen


def test_a_cursor_gives_the_entries_after_the_path_it_names(hub):
    _status, entries = get(f"{hub.url}/api/models/{REPO}/tree/main?recursive=true&cursor={upstream_cursor('merges.txt')}")
    assert [e["path"] for e in entries] == ["model.safetensors", "sub/vocab.json", "sub"], entries
    assert entries[0]["lfs"]["oid"] == hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]["model.safetensors"].sha256


@pytest.mark.parametrize("cursor", ["not-base64!", upstream_cursor("no-such-file"), base64.b64encode(b"[1]:50").decode()])
def test_a_cursor_that_names_no_entry_is_refused(hub, cursor):
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(f"{hub.url}/api/models/{REPO}/tree/main?cursor={cursor}")
    assert refused.value.code == 400


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl to make the test certificates")
def test_https_with_a_test_cas_certificate(tmp_path):
    ca, leaf = tmp_path / "ca", tmp_path / "hub"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-subj", "/CN=hpcllm test CA", "-keyout", f"{ca}.key", "-out", f"{ca}.crt"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", *ec, "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE",
                    "-keyout", f"{leaf}.key", "-out", f"{leaf}.crt"], check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(f"{leaf}.crt", f"{leaf}.key")
    hub = Hub()
    hub.create_repo(REPO)
    hub.commit(REPO, "main", FILES)
    hub.start(ssl_context=server)
    try:
        assert hub.url.startswith("https://127.0.0.1:")
        status, entries = get(f"{hub.url}/api/models/{REPO}/tree/main", ssl.create_default_context(cafile=f"{ca}.crt"))
        assert status == 200 and entries[0]["path"] == "config.json", entries
        # the client checks the certificate: without the test CA it is refused, and the server goes on serving
        with pytest.raises(urllib.error.URLError) as refused:
            get(f"{hub.url}/api/models/{REPO}/tree/main", ssl.create_default_context(cafile=f"{leaf}.crt"))
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError), refused.value
        with urllib.request.urlopen(f"{hub.url}/{REPO}/resolve/main/config.json", timeout=10,
                                    context=ssl.create_default_context(cafile=f"{ca}.crt")) as answer:
            assert answer.read() == b"{}" and answer.headers["X-Repo-Commit"] == hub.repos[REPO].refs["main"]
    finally:
        hub.stop()
