"""Tests of the models role's catalog filters: validation messages, derived folders/links/arguments, the defaults."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.hpcllm.webui.plugins.filter.models_catalog import (
    FilterModule,
    models_catalog_errors,
    models_catalog_plan,
    models_folder_name,
    models_link_report,
)

REPO_ROOT = Path(__file__).resolve().parents[4]
DEFAULTS = yaml.safe_load((REPO_ROOT / "roles" / "models" / "defaults" / "main.yml").read_text())
TEMPLATE = (REPO_ROOT / "roles" / "models" / "templates" / "run_model.sh.j2").read_text()
ROOT = "/opt/ai_apps/webui_llama2"

SEED = [
    ("run_wizard_13b_8bit_code.sh", "WizardLM/WizardCoder-Python-13B-V1.0", ["--load-in-8bit"]),
    ("run_wizard_7b_16bit_code.sh", "WizardLM/WizardCoder-Python-7B-V1.0", []),
    ("run_wizard_13b_4bit_code.sh", "TheBloke/WizardCoder-Python-13B-V1.0-GPTQ", []),
    ("run_wizard_7b_4bit_code.sh", "TheBloke/WizardCoder-Python-7B-V1.0-GPTQ", ["--no_inject_fused_attention"]),
    ("run_wizard_1b_32bit_code.sh", "WizardLM/WizardCoder-1B-V1.0", []),
]


def entry(**kw):
    base = {"launcher": "run_x.sh", "repo": "Org/Model", "revision": "main"}
    base.update(kw)
    return base


def render_launcher(plan_entry):
    """Render run_model.sh.j2 with Jinja2 as the template module does (trim_blocks, Ansible's quote filter)
    and return the text and the exec argv as bash would split it."""
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["quote"] = shlex.quote
    text = env.from_string(TEMPLATE).render(_models_entry=plan_entry, models_install_root=ROOT, ansible_managed="managed")
    exec_line = [line for line in text.splitlines() if line.startswith("exec ")]
    assert len(exec_line) == 1, text
    return text, shlex.split(exec_line[0])[1:]


# --------------------------------------------------------------------------- defaults
def test_defaults_reproduce_the_seed_catalog():
    got = [(e["launcher"], e["repo"], e["load_args"]) for e in DEFAULTS["models_catalog"]]
    assert got == SEED
    assert all(e.get("vram") for e in DEFAULTS["models_catalog"])
    assert models_catalog_errors(DEFAULTS["models_catalog"]) == []


def test_defaults_have_a_gptq_branch_revision():
    revisions = {e["repo"]: e["revision"] for e in DEFAULTS["models_catalog"]}
    assert revisions["TheBloke/WizardCoder-Python-13B-V1.0-GPTQ"] == "gptq-4bit-32g-actorder_True"


@pytest.mark.parametrize("index", range(len(SEED)))
def test_each_default_launcher_loads_its_own_folder(index):
    """The seed linked the 13B and 1B models to the 7B folder: each launcher's --model must name its own entry."""
    plan = models_catalog_plan(DEFAULTS["models_catalog"], ROOT)
    ent = plan["entries"][index]
    own = models_folder_name(SEED[index][1], DEFAULTS["models_catalog"][index]["revision"])
    assert ent["launcher"] == SEED[index][0]
    assert ent["name"] == own
    assert ent["dest"] == f"{ROOT}/models/{own}"
    assert ent["link"] == f"{ROOT}/text-generation-webui/models/{own}"
    assert ent["link_target"] == f"../../models/{own}"
    text, argv = render_launcher(ent)
    assert argv[0] == f"{ROOT}/webui_launch.sh"
    assert argv[argv.index("--model") + 1] == own
    assert argv.count("--model") == 1
    assert argv[-1] == "$@"
    assert "hpcllm.webui.models:catalog-launcher" in text
    # no other entry's folder appears anywhere in the launcher
    others = {e["name"] for e in plan["entries"]} - {own}
    assert not [o for o in others if o in text]


def test_default_folders_and_links_are_all_different():
    plan = models_catalog_plan(DEFAULTS["models_catalog"], ROOT)
    for key in ("name", "dest", "link", "launcher"):
        values = [e[key] for e in plan["entries"]]
        assert len(set(values)) == len(values) == 5, key


# --------------------------------------------------------------------------- derivation
@pytest.mark.parametrize("repo, revision, name", [
    ("WizardLM/WizardCoder-1B-V1.0", "main", "WizardLM_WizardCoder-1B-V1.0"),
    ("TheBloke/X-GPTQ", "gptq-4bit-32g-actorder_True", "TheBloke_X-GPTQ_gptq-4bit-32g-actorder_True"),
    ("Org/M", "refs/pr/1", "Org_M_refs_pr_1"),
    ("Org/M", None, "Org_M"),
])
def test_folder_name_like_download_model_py(repo, revision, name):
    assert models_folder_name(repo, revision) == name


def test_plan_args_loras_extra_and_downloads():
    catalog = [
        entry(launcher="run_a.sh", repo="Org/A", load_args=["--load-in-8bit"], extra_args=["--cpu"],
              loras=[{"repo": "Org/LoraOne"}, {"repo": "Org/LoraTwo", "revision": "v2", "name": "two"}]),
        entry(launcher="run_b.sh", repo="Org/B", name="bee", loras=[{"repo": "Org/LoraOne"}]),
        entry(launcher="run_c.sh", repo="Org/C", enabled=False),
    ]
    plan = models_catalog_plan(catalog, ROOT + "/")
    a, b = plan["entries"]
    assert a["args"] == ["--model", "Org_A", "--load-in-8bit", "--lora", "Org_LoraOne", "two", "--cpu"]
    assert b["args"] == ["--model", "bee", "--lora", "Org_LoraOne"]
    assert b["dest"] == f"{ROOT}/models/bee"
    assert plan["launchers"] == ["run_a.sh", "run_b.sh"]
    assert plan["disabled"] == [{"index": 2, "launcher": "run_c.sh", "name": "Org_C", "repo": "Org/C"}]
    assert [(d["kind"], d["name"]) for d in plan["downloads"]] == [
        ("model", "Org_A"), ("model", "bee"), ("lora", "Org_LoraOne"), ("lora", "two")]
    lora_two = plan["downloads"][3]
    assert lora_two["dest"] == f"{ROOT}/loras/two"
    assert lora_two["link"] == f"{ROOT}/text-generation-webui/loras/two"
    assert lora_two["link_target"] == "../../loras/two"
    assert lora_two["revision"] == "v2"
    assert plan["downloads"][0]["allow_patterns"] is None


def test_plan_with_another_webui_dir_links_relative_to_it():
    plan = models_catalog_plan([entry()], "/opt/r", "/opt/r/apps/tgw")
    assert plan["entries"][0]["link"] == "/opt/r/apps/tgw/models/Org_Model"
    assert plan["entries"][0]["link_target"] == "../../../models/Org_Model"


def test_launcher_quotes_arguments():
    plan = models_catalog_plan([entry(extra_args=["--gradio-auth", "a b:c'd"])], ROOT)
    argv = render_launcher(plan["entries"][0])[1]
    assert argv[1:] == ["--model", "Org_Model", "--gradio-auth", "a b:c'd", "$@"]


def test_plan_refuses_an_invalid_catalog_and_a_relative_root():
    with pytest.raises(AnsibleFilterError, match=r"models_catalog\[0\]\.repo"):
        models_catalog_plan([entry(repo="nope")], ROOT)
    with pytest.raises(AnsibleFilterError, match="absolute"):
        models_catalog_plan([entry()], "opt/x")


# --------------------------------------------------------------------------- validation
ERROR_CASES = [
    ("not a list", {"launcher": "x"}, r"^models_catalog: must be a list"),
    ("entry not a dict", ["run_x.sh"], r"^models_catalog\[0\]: must be a dict"),
    ("unknown key", [entry(lauras=[])], r"^models_catalog\[0\]: unknown key\(s\) lauras"),
    ("launcher without .sh", [entry(launcher="run_x")], r"^models_catalog\[0\]\.launcher: 'run_x' must be a file name ending in \.sh"),
    ("launcher with a slash", [entry(launcher="../run_x.sh")], r"^models_catalog\[0\]\.launcher: '\.\./run_x\.sh'"),
    ("launcher missing", [{"repo": "Org/M"}], r"^models_catalog\[0\]\.launcher: None"),
    ("reserved launcher", [entry(launcher="webui_launch.sh")], r"^models_catalog\[0\]\.launcher: 'webui_launch\.sh' is reserved"),
    ("duplicate launcher", [entry(), entry(repo="Org/Other")], r"^models_catalog\[1\]\.launcher: 'run_x\.sh' is already used by models_catalog\[0\]"),
    ("bad repo", [entry(repo="Org/../x")], r"^models_catalog\[0\]\.repo: 'Org/\.\./x' must be owner/name"),
    ("repo without owner", [entry(repo="Model")], r"^models_catalog\[0\]\.repo: 'Model' must be owner/name"),
    ("empty revision", [entry(revision="")], r"^models_catalog\[0\]\.revision: must be a non-empty"),
    ("revision with space", [entry(revision="a b")], r"^models_catalog\[0\]\.revision: must be a non-empty"),
    ("name with a slash", [entry(name="a/b")], r"^models_catalog\[0\]\.name: 'a/b' must be one safe path component"),
    ("name dot-dot", [entry(name="..")], r"^models_catalog\[0\]\.name: '\.\.' must be one safe path component"),
    ("name hidden", [entry(name=".x")], r"^models_catalog\[0\]\.name: '\.x'"),
    ("duplicate folder", [entry(), entry(launcher="run_y.sh")], r"^models_catalog\[1\]\.name: folder 'Org_Model' is already used by models_catalog\[0\]"),
    ("duplicate explicit name", [entry(name="m"), entry(launcher="run_y.sh", repo="Org/N", name="m")], r"^models_catalog\[1\]\.name: folder 'm'"),
    ("load_args a string", [entry(load_args="--load-in-8bit")], r"^models_catalog\[0\]\.load_args: must be a list of strings"),
    ("--model in extra_args", [entry(extra_args=["--model", "x"])], r"^models_catalog\[0\]: --model is derived from the entry"),
    ("--lora= in load_args", [entry(load_args=["--lora=x"])], r"^models_catalog\[0\]: --lora=x is derived"),
    ("enabled a string", [entry(enabled="no")], r"^models_catalog\[0\]\.enabled: must be true or false"),
    ("vram a number", [entry(vram=6)], r"^models_catalog\[0\]\.vram: must be a string"),
    ("loras not a list", [entry(loras={"repo": "Org/L"})], r"^models_catalog\[0\]\.loras: must be a list"),
    ("lora bad repo", [entry(loras=[{"repo": "L"}])], r"^models_catalog\[0\]\.loras\[0\]\.repo: 'L' must be owner/name"),
    ("lora bad name", [entry(loras=[{"repo": "Org/L", "name": "a/b"}])], r"^models_catalog\[0\]\.loras\[0\]\.name: 'a/b'"),
    ("lora unknown key", [entry(loras=[{"repo": "Org/L", "rev": "x"}])], r"^models_catalog\[0\]\.loras\[0\]: unknown key\(s\) rev"),
    ("lora name clash", [entry(loras=[{"repo": "Org/L", "name": "l"}]),
                         entry(launcher="run_y.sh", repo="Org/N", loras=[{"repo": "Org/K", "name": "l"}])],
     r"^models_catalog\[1\]\.loras\[0\]\.name: LoRA folder 'l' is already used by models_catalog\[0\]\.loras\[0\] for Org/L@main"),
]


@pytest.mark.parametrize("case, catalog, pattern", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_name_the_entry_and_field(case, catalog, pattern):
    errors = models_catalog_errors(catalog)
    assert errors, case
    assert any(re.search(pattern, e) for e in errors), errors


def test_same_lora_on_two_entries_is_fine_and_downloaded_once():
    lora = {"repo": "Org/L"}
    catalog = [entry(loras=[lora]), entry(launcher="run_y.sh", repo="Org/N", loras=[copy.deepcopy(lora)])]
    assert models_catalog_errors(catalog) == []
    assert [d["name"] for d in models_catalog_plan(catalog, ROOT)["downloads"]] == ["Org_Model", "Org_N", "Org_L"]


def test_every_error_is_reported_at_once():
    errors = models_catalog_errors([entry(launcher="x", repo="y", revision="")])
    assert [e.split(":")[0] for e in errors] == [
        "models_catalog[0].launcher", "models_catalog[0].repo", "models_catalog[0].revision"]


# --------------------------------------------------------------------------- link report
def test_link_report():
    results = [
        {"item": {"link": "/r/m/a", "link_target": "../../models/a"}, "stat": {"exists": False}},
        {"item": {"link": "/r/m/b", "link_target": "../../models/b"}, "stat": {"exists": True, "islnk": True, "lnk_target": "../../models/b"}},
        {"item": {"link": "/r/m/c", "link_target": "../../models/c"}, "stat": {"exists": True, "islnk": True, "lnk_target": "../../models/a"}},
        {"item": {"link": "/r/m/d", "link_target": "../../models/d"}, "stat": {"exists": True, "islnk": False, "isdir": True}},
    ]
    assert models_link_report(results) == {
        "misdirected": ["/r/m/c -> ../../models/a (should be -> ../../models/c)"],
        "obstacles": ["/r/m/d is a directory, not a link"],
    }


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {
        "models_catalog_errors", "models_catalog_plan", "models_folder_name", "models_link_report"}


def test_model_menu_launcher_has_no_model_and_no_catalog_marker():
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["quote"] = shlex.quote
    text = env.from_string(TEMPLATE).render(models_install_root=ROOT, ansible_managed="managed")
    assert "catalog-launcher" not in text
    exec_line = [line for line in text.splitlines() if line.startswith("exec ")]
    assert shlex.split(exec_line[0])[1:] == [f"{ROOT}/webui_launch.sh", "--model-menu", "$@"]
