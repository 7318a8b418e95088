"""inventories/example shows every knob of every role (generated from the role defaults)."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gen_example", ROOT / "tests" / "inventory" / "gen_example.py")
gen_example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_example)

ROLES = [r for r in gen_example.ROLES if (ROOT / "roles" / r / "defaults" / "main.yml").exists()]


def test_example_inventory_is_up_to_date():
    assert gen_example.main(check=True) == 0


@pytest.mark.parametrize("role", ROLES)
def test_every_documented_option_is_in_the_example(role):
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = set()
    for entry in specs.values():
        options.update((entry.get("options") or {}).keys())
    text = (ROOT / "inventories" / "example" / "group_vars" / "all" / f"{role}.yml").read_text()
    shown = set(re.findall(r"^# ([a-z][a-z0-9_]*):", text, re.MULTILINE))
    shown |= set(re.findall(r"^([a-z][a-z0-9_]*):", text, re.MULTILINE))
    missing = sorted(o for o in options if o not in shown and o not in MAIN_VARS)
    assert not missing, f"{role}: options documented but not in the example inventory: {missing}"


MAIN_VARS = set(re.findall(r"^([a-z][a-z0-9_]*):", (ROOT / "inventories" / "example" / "group_vars" / "all" / "main.yml").read_text(),
                           re.MULTILINE))


def test_example_inventory_parses_and_sets_no_role_default_twice():
    active = {}
    for path in sorted((ROOT / "inventories" / "example" / "group_vars" / "all").glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for key in data:
            assert key not in active, f"{key} set in {path.name} and {active[key]}"
            active[key] = path.name
    assert "chroot_prep_images" in active
