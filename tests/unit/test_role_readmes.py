"""Every role has a README.md generated from its argument specs (tests/docs/gen_role_readmes.py)."""

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gen_role_readmes", ROOT / "tests" / "docs" / "gen_role_readmes.py")
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())


def test_every_role_has_argument_specs_and_thus_a_readme():
    assert gen.roles() == ROLES


def test_role_readmes_are_up_to_date():
    assert gen.main(check=True) == 0


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_names_every_entry_point_and_variable(role):
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    text = (ROOT / "roles" / role / "README.md").read_text()
    for entry, body in specs.items():
        assert f"## Entry point `{entry}`" in text
        for option in body.get("options") or {}:
            assert f"| `{option}` |" in text, (entry, option)


def test_a_change_of_the_specs_makes_the_readme_stale(tmp_path, monkeypatch):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "demo.yml").write_text("- hosts: all\n  roles:\n    - name: hpcllm.webui.demo\n")
    specs = {"argument_specs": {"main": {"short_description": "Demo.", "options": {
        "demo_size": {"type": "int", "default": 3, "description": "How many | which."}}}}}
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(specs))
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main() == 0
    text = (role / "README.md").read_text()
    assert "| `demo_size` | int | `3` | How many \\| which. |" in text and "`playbooks/demo.yml`" in text
    assert gen.main(check=True) == 0
    # what is written by hand after the block stays through a regeneration
    (role / "README.md").write_text(text + "\n## Notes\n\nKept by hand.\n")
    specs["argument_specs"]["main"]["options"]["demo_size"]["default"] = 4
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(specs))
    assert gen.main(check=True) == 1
    assert gen.main() == 0
    text = (role / "README.md").read_text()
    assert "| `demo_size` | int | `4` |" in text and text.endswith(gen.END + "\n\n## Notes\n\nKept by hand.\n")
