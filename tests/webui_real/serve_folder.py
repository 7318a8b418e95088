# Test stand-in: serves one model folder as a repo of the local hub (tests/hubserver/hubserver.py), not the real Hub.
"""Serve the files of a folder as one Hub repo on 127.0.0.1:PORT until killed.

usage: serve_folder.py PORT REPO_ID FOLDER EXPECTED_JSON [--tls CERT KEY]

EXPECTED_JSON receives {"commit": id, "files": {path: sha256}} once the server answers.
With --tls it serves HTTPS with that certificate and key (PEM files), for clients that
hard-code https://huggingface.co while the test points that name at 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import ssl
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hubserver"))

from hubserver import Blob, Hub, serve_until_killed  # noqa: E402  pylint: disable=wrong-import-position


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("repo_id")
    parser.add_argument("folder", type=Path)
    parser.add_argument("expected_path")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    files = {p.relative_to(args.folder).as_posix(): p.read_bytes() for p in sorted(args.folder.rglob("*")) if p.is_file()}
    hub = Hub()
    hub.create_repo(args.repo_id)
    commit = hub.commit(args.repo_id, "main", {path: Blob.from_bytes(data, lfs=path.endswith(".safetensors"))
                                               for path, data in files.items()})
    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)

    expected = {"commit": commit, "files": {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}}
    scheme = "https" if args.tls else "http"
    serve_until_killed(hub, args.port, args.expected_path, expected,
                       f"serving {args.repo_id} ({len(files)} files) on {scheme}://127.0.0.1:{args.port}", ssl_context=context)


if __name__ == "__main__":
    main()
