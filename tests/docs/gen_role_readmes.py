"""Write roles/<role>/README.md from the role's meta/argument_specs.yml and the playbooks that use it.

The argument specs are the roles' documentation (STYLE.md): what each entry point does, its
variables, their types, defaults and choices. Galaxy (and galaxy-importer) want a README in
every role; generating it from the specs keeps it from drifting. Run after changing a role's
argument specs:

    .venv/bin/python tests/docs/gen_role_readmes.py

Only the block between the BEGIN and END markers is generated: what a README says outside it
(written by hand, after the block) is kept. A README without the markers gets the block on top.

tests/unit/test_role_readmes.py fails when a README is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from generated import sync  # noqa: E402  pylint: disable=wrong-import-position
NAMESPACE = "hpcllm.webui"
BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by tests/docs/gen_role_readmes.py: edit the specs -->"
END = "<!-- END generated: what follows is written by hand -->"


def roles() -> list[str]:
    return sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


def cell(text) -> str:
    """One Markdown table cell: one line, pipes escaped."""
    return re.sub(r"\s+", " ", str(text)).strip().replace("|", "\\|")


def value(default) -> str:
    if default is None:
        return ""
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, str) and default == "":
        return '`""`'
    if isinstance(default, (list, dict)):
        return f"`{yaml.safe_dump(default, default_flow_style=True, width=1000).strip()}`"
    return f"`{default}`"


def paragraphs(description) -> list[str]:
    if description is None:
        return []
    items = description if isinstance(description, list) else [description]
    return [re.sub(r"\s+", " ", str(item)).strip() for item in items]


def users(role: str) -> list[str]:
    """Playbooks of the collection that run the role (by its fully qualified name)."""
    name = re.compile(r"^[\s-]*(?:name|role):\s*" + re.escape(f"{NAMESPACE}.{role}") + r"\s*$", re.MULTILINE)
    found = []
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        if name.search(path.read_text(encoding="utf-8")):
            found.append(str(path.relative_to(ROOT)))
    return found


def options_table(options: dict) -> list[str]:
    if not options:
        return ["This entry point takes no variables.", ""]
    out = ["| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name in sorted(options):
        spec = options[name] or {}
        kind = spec.get("type", "str")
        if kind == "list" and spec.get("elements"):
            kind = f"list of {spec['elements']}"
        text = " ".join(paragraphs(spec.get("description")))
        if spec.get("choices"):
            text += " Choices: " + ", ".join(value(c) for c in spec["choices"]) + "."
        if spec.get("required"):
            text = "**Required.** " + text
        out.append(f"| `{name}` | {cell(kind)} | {cell(value(spec.get('default')))} | {cell(text)} |")
    out.append("")
    return out


def block(role: str) -> str:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    entries = specs["argument_specs"]
    order = sorted(entries, key=lambda e: (e != "main", list(entries).index(e)))
    first = entries[order[0]]
    out = [BEGIN, f"# {NAMESPACE}.{role}", "", cell(first.get("short_description", "")), ""]
    out += [f"This part is generated from `roles/{role}/meta/argument_specs.yml` by `tests/docs/gen_role_readmes.py`:",
            "edit the argument specs and run it again. The role checks its variables against the same specs",
            "when it starts.", ""]
    used = users(role)
    if used:
        out += ["Run by " + ", ".join(f"`{u}`" for u in used) + " (through `site.yml`).", ""]
    out += ["## Entry points", ""]
    for entry in order:
        tasks = "tasks/main.yml" if entry == "main" else f"tasks/{entry}.yml"
        out.append(f"- [`{entry}`](#entry-point-{entry.replace('_', '-')}) (`{tasks}`): "
                   f"{cell(entries[entry].get('short_description', ''))}")
    out.append("")
    for entry in order:
        spec = entries[entry]
        out += [f"## Entry point `{entry}`", ""]
        for para in paragraphs(spec.get("description")):
            out += [f"- {para}"]
        out += ["", "```yaml", f"- name: {cell(spec.get('short_description', entry)).rstrip('.')}",
                "  ansible.builtin.include_role:", f"    name: {NAMESPACE}.{role}"]
        if entry != "main":
            out.append(f"    tasks_from: {entry}")
        out += ["```", ""]
        out += options_table(spec.get("options") or {})
    return "\n".join(out).rstrip("\n") + "\n" + END + "\n"


def readme(role: str, current: str | None) -> str:
    """The README with its generated block renewed (current: the README as it is, or None)."""
    new = block(role)
    if current and BEGIN in current and END in current:
        start = current.index(BEGIN)
        stop = current.index(END) + len(END) + 1
        return current[:start] + new + current[stop:]
    return new + ("\n" + current if current else "")


def main(check: bool = False) -> int:
    files = {}
    for role in roles():
        path = ROOT / "roles" / role / "README.md"
        files[path] = readme(role, path.read_text(encoding="utf-8") if path.exists() else None)
    return sync(ROOT, files, check, "tests/docs/gen_role_readmes.py")


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))
