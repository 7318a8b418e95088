"""Files generated from the collection's own sources (the example inventory, the role READMEs): write them, or
with check=True name those that differ from what would be written (a unit test per generator runs the check)."""

from __future__ import annotations

from pathlib import Path


def sync(root: Path, files: dict[Path, str], check: bool, script: str) -> int:
    """Write each path's text (check=False) or compare; 1 after naming the stale ones, else 0."""
    stale = []
    for path, want in files.items():
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != want:
                stale.append(str(path.relative_to(root)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(want, encoding="utf-8")
    if stale:
        print(f"out of date (run {script}): " + ", ".join(stale))
        return 1
    return 0
