# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the models role: validate the model catalog and derive folders, links and launcher arguments.

One catalog entry is the only place a model is named: its folder under <root>/models, the link in the
web UI's models/ folder and the --model argument of its launcher all come from models_catalog_plan,
so they cannot disagree (the seed linked two models to another model's folder).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: models_catalog_plan
short_description: Derive folders, links and launcher arguments from the models role's catalog
version_added: 0.1.0
description:
  - Takes C(models_catalog) (a list of entries with C(launcher), C(repo), C(revision), C(load_args), C(extra_args),
    C(loras), C(enabled), ...) and returns, for every enabled entry, its folder name, download folder, link,
    relative link target and the launcher's arguments; plus the list of downloads (models and unique LoRAs).
  - Invalid catalogs raise an error; use C(models_catalog_errors) first to get every problem as a list.
  - The companion filters are C(models_catalog_errors) (list of messages naming C(models_catalog[i].field)),
    C(models_folder_name) (the folder name a repo and revision get) and C(models_link_report) (links found
    pointing elsewhere, and obstacles that are not links).
positional: install_root, webui_dir
options:
  _input:
    description: The catalog (C(models_catalog)).
    type: list
    elements: dict
    required: true
  install_root:
    description: The install root (C(models_install_root)).
    type: str
    required: true
  webui_dir:
    description: The web UI checkout; default C(<install_root>/text-generation-webui).
    type: str
"""

EXAMPLES = r"""
- name: Derive the plan
  ansible.builtin.set_fact:
    plan: "{{ models_catalog | hpcllm.webui.models_catalog_plan('/opt/ai_apps/webui_llama2') }}"
"""

RETURN = r"""
_value:
  description: C(entries) (enabled entries with name, dest, link, link_target, args, loras), C(disabled), C(downloads),
    C(launchers) and C(names).
  type: dict
"""

import posixpath
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

VAR = "models_catalog"
SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LAUNCHER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.sh$")
# Files of the install root the launchers must never overwrite.
RESERVED_LAUNCHERS = ("webui_launch.sh", "run_webui_server.sh", "run_python.sh", "webui_health.sh")
ENTRY_KEYS = ("launcher", "repo", "revision", "name", "load_args", "extra_args", "vram", "loras", "enabled",
              "allow_patterns", "ignore_patterns", "description")
LORA_KEYS = ("repo", "revision", "name", "allow_patterns", "ignore_patterns")
DEFAULT_REVISION = "main"


def models_folder_name(repo, revision=DEFAULT_REVISION):
    """The folder a repo revision gets, as text-generation-webui's download-model.py names it:
    owner_name, plus _<revision> when the revision is not main; characters outside [A-Za-z0-9._+-] become _."""
    name = "_".join(str(repo).split("/")[-2:])
    revision = str(revision or DEFAULT_REVISION)
    if revision != DEFAULT_REVISION:
        name += "_" + revision
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def _is_str_list(value):
    return isinstance(value, list) and all(isinstance(v, string_types) for v in value)


def _check_name(where, value, errors):
    if not isinstance(value, string_types) or not SAFE_COMPONENT.match(value) or value in (".", ".."):
        errors.append("%s.name: %r must be one safe path component (letters, digits, . _ + -; not starting with . or -)"
                      % (where, value))
        return False
    return True


def _check_repo(where, value, errors):
    parts = value.split("/") if isinstance(value, string_types) else []
    if len(parts) != 2 or not all(REPO_PART.match(p) and ".." not in p for p in parts):
        errors.append("%s.repo: %r must be owner/name (letters, digits, . _ -)" % (where, value))
        return False
    return True


def _check_revision(where, entry, errors):
    if "revision" not in entry:
        return True
    value = entry["revision"]
    if not isinstance(value, string_types) or not value.strip() or any(c.isspace() for c in value):
        errors.append("%s.revision: must be a non-empty branch, tag or commit without spaces (got %r)" % (where, value))
        return False
    return True


def _check_lists(where, entry, keys, errors):
    for key in keys:
        if key in entry and entry[key] is not None and not _is_str_list(entry[key]):
            errors.append("%s.%s: must be a list of strings (got %r)" % (where, key, entry[key]))


def _folder(item):
    """The folder of a catalog entry or LoRA: its name, else derived from repo and revision."""
    return item.get("name") or models_folder_name(item["repo"], item.get("revision"))


def models_catalog_errors(catalog, var=VAR):
    """Every problem of the catalog, one message each, naming <var>[i].field."""
    errors = []
    if not isinstance(catalog, list):
        return ["%s: must be a list of entries (got %s)" % (var, type(catalog).__name__)]
    launchers, names, loras = {}, {}, {}
    for i, entry in enumerate(catalog):
        where = "%s[%d]" % (var, i)
        if not isinstance(entry, dict):
            errors.append("%s: must be a dict with launcher and repo (got %r)" % (where, entry))
            continue
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            errors.append("%s: unknown key(s) %s (known: %s)" % (where, ", ".join(unknown), ", ".join(ENTRY_KEYS)))
        launcher = entry.get("launcher")
        if not isinstance(launcher, string_types) or not LAUNCHER.match(launcher):
            errors.append("%s.launcher: %r must be a file name ending in .sh (letters, digits, . _ -)" % (where, launcher))
        elif launcher in RESERVED_LAUNCHERS:
            errors.append("%s.launcher: %r is reserved (%s)" % (where, launcher, ", ".join(RESERVED_LAUNCHERS)))
        elif launcher in launchers:
            errors.append("%s.launcher: %r is already used by %s[%d]" % (where, launcher, var, launchers[launcher]))
        else:
            launchers[launcher] = i
        repo_ok = _check_repo(where, entry.get("repo"), errors)
        rev_ok = _check_revision(where, entry, errors)
        if "name" in entry:
            name_ok = _check_name(where, entry["name"], errors)
        else:
            name_ok = repo_ok and rev_ok and _check_name(where, _folder(entry), errors)
        if name_ok and repo_ok and rev_ok:
            name = _folder(entry)
            if name in names:
                errors.append("%s.name: folder %r is already used by %s[%d]" % (where, name, var, names[name]))
            else:
                names[name] = i
        _check_lists(where, entry, ("load_args", "extra_args", "allow_patterns", "ignore_patterns"), errors)
        if "enabled" in entry and not isinstance(entry["enabled"], bool):
            errors.append("%s.enabled: must be true or false (got %r)" % (where, entry["enabled"]))
        for key in ("vram", "description"):
            if key in entry and not isinstance(entry[key], string_types):
                errors.append("%s.%s: must be a string (got %r)" % (where, key, entry[key]))
        args = [a for key in ("load_args", "extra_args") if _is_str_list(entry.get(key)) for a in entry[key]]
        for arg in args:
            if arg in ("--model", "--model-menu", "--lora") or arg.startswith(("--model=", "--lora=")):
                errors.append("%s: %s is derived from the entry; do not put it in load_args or extra_args" % (where, arg))
        entry_loras = entry.get("loras", [])
        if entry_loras is None:
            entry_loras = []
        if not isinstance(entry_loras, list):
            errors.append("%s.loras: must be a list (got %r)" % (where, entry_loras))
            continue
        for j, lora in enumerate(entry_loras):
            lwhere = "%s.loras[%d]" % (where, j)
            if not isinstance(lora, dict):
                errors.append("%s: must be a dict with repo (got %r)" % (lwhere, lora))
                continue
            unknown = sorted(set(lora) - set(LORA_KEYS))
            if unknown:
                errors.append("%s: unknown key(s) %s (known: %s)" % (lwhere, ", ".join(unknown), ", ".join(LORA_KEYS)))
            ok = _check_repo(lwhere, lora.get("repo"), errors) and _check_revision(lwhere, lora, errors)
            if "name" in lora:
                ok = _check_name(lwhere, lora["name"], errors) and ok
            elif ok:
                ok = _check_name(lwhere, _folder(lora), errors)
            _check_lists(lwhere, lora, ("allow_patterns", "ignore_patterns"), errors)
            if ok:
                name = _folder(lora)
                key = (lora["repo"], lora.get("revision") or DEFAULT_REVISION)
                seen = loras.get(name)
                if seen is not None and seen[0] != key:
                    errors.append("%s.name: LoRA folder %r is already used by %s for %s@%s"
                                  % (lwhere, name, seen[1], seen[0][0], seen[0][1]))
                elif seen is None:
                    loras[name] = (key, lwhere)
    return errors


def _download(kind, name, item, base, webui_dir, sub):
    return {
        "kind": kind,
        "name": name,
        "repo": item["repo"],
        "revision": item.get("revision") or DEFAULT_REVISION,
        "dest": posixpath.join(base, sub, name),
        "link": posixpath.join(webui_dir, sub, name),
        "link_target": posixpath.relpath(posixpath.join(base, sub, name), posixpath.join(webui_dir, sub)),
        "allow_patterns": item.get("allow_patterns") or None,
        "ignore_patterns": item.get("ignore_patterns") or None,
    }


def models_catalog_plan(catalog, install_root, webui_dir=None):
    """Enabled entries with derived folder, link and launcher arguments; downloads (models, then unique LoRAs)."""
    errors = models_catalog_errors(catalog)
    if errors:
        raise AnsibleFilterError("invalid %s: %s" % (VAR, "; ".join(errors)))
    if not isinstance(install_root, string_types) or not install_root.startswith("/"):
        raise AnsibleFilterError("models_catalog_plan: install_root must be an absolute path (got %r)" % (install_root,))
    root = posixpath.normpath(install_root)
    webui_dir = posixpath.normpath(webui_dir or posixpath.join(root, "text-generation-webui"))
    entries, disabled, model_downloads, lora_downloads, seen_loras = [], [], [], [], set()
    for i, entry in enumerate(catalog):
        name = _folder(entry)
        if not entry.get("enabled", True):
            disabled.append({"index": i, "launcher": entry["launcher"], "name": name, "repo": entry["repo"]})
            continue
        model = _download("model", name, entry, root, webui_dir, "models")
        loras = []
        for lora in entry.get("loras") or []:
            lname = _folder(lora)
            ldl = _download("lora", lname, lora, root, webui_dir, "loras")
            loras.append(ldl)
            if lname not in seen_loras:
                seen_loras.add(lname)
                lora_downloads.append(ldl)
        args = ["--model", name] + list(entry.get("load_args") or [])
        if loras:
            # --lora takes several names (nargs="+"); given twice, the second would replace the first
            args += ["--lora"] + [lora["name"] for lora in loras]
        args += list(entry.get("extra_args") or [])
        model_downloads.append(model)
        entries.append(dict(model, index=i, launcher=entry["launcher"], launcher_path=posixpath.join(root, entry["launcher"]),
                            vram=entry.get("vram", ""), description=entry.get("description", ""),
                            load_args=list(entry.get("load_args") or []), extra_args=list(entry.get("extra_args") or []),
                            loras=loras, args=args))
    return {
        "entries": entries,
        "disabled": disabled,
        "downloads": model_downloads + lora_downloads,
        "launchers": [e["launcher"] for e in entries],
        "names": {"models": [d["name"] for d in model_downloads], "loras": [d["name"] for d in lora_downloads]},
    }


def models_link_report(stat_results):
    """From a looped stat (follow: false) over plan downloads: links to correct and obstacles.

    Returns {"misdirected": ["<link> -> <found> (should be -> <target>)"], "obstacles": ["<link> is a <kind>, not a link"]}.
    """
    misdirected, obstacles = [], []
    for res in stat_results or []:
        item, st = res.get("item", {}), res.get("stat", {})
        if not st.get("exists"):
            continue
        if st.get("islnk"):
            if st.get("lnk_target") != item.get("link_target"):
                misdirected.append("%s -> %s (should be -> %s)" % (item.get("link"), st.get("lnk_target"), item.get("link_target")))
        else:
            kind = "directory" if st.get("isdir") else "file"
            obstacles.append("%s is a %s, not a link" % (item.get("link"), kind))
    return {"misdirected": misdirected, "obstacles": obstacles}


class FilterModule(object):
    def filters(self):
        return {
            "models_catalog_errors": models_catalog_errors,
            "models_catalog_plan": models_catalog_plan,
            "models_folder_name": models_folder_name,
            "models_link_report": models_link_report,
        }
