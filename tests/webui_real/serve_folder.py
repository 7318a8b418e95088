# Test stand-in: serves one model folder as a repo of the local hub (tests/hubserver/hubserver.py), not the real Hub.
"""Serve the files of a folder as one Hub repo on 127.0.0.1:PORT until killed.

usage: serve_folder.py PORT REPO_ID FOLDER EXPECTED_JSON

EXPECTED_JSON receives {"commit": id, "files": {path: sha256}} once the server answers.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hubserver"))

from hubserver import Blob, Hub, serve_until_killed  # noqa: E402  pylint: disable=wrong-import-position


def main() -> None:
    port, repo_id, folder, expected_path = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    hub = Hub()
    hub.create_repo(repo_id)
    commit = hub.commit(repo_id, "main", {path: Blob.from_bytes(data, lfs=path.endswith(".safetensors"))
                                          for path, data in files.items()})

    expected = {"commit": commit, "files": {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}}
    serve_until_killed(hub, port, expected_path, expected, f"serving {repo_id} ({len(files)} files) on http://127.0.0.1:{port}")


if __name__ == "__main__":
    main()
