#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpcllm.webui contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: hf_model
short_description: Download one Hugging Face Hub model revision into a folder, idempotently
version_added: 0.1.0
description:
  - Resolves O(revision) of O(repo_id) to a commit, lists the files of that commit with their size and
    (for LFS files) sha256, compares them with what is in O(dest), and downloads only what is missing or different.
  - Every file is written under a temporary name inside O(dest) (C(.hf_model.tmp/)), checked for its size and
    its hash (sha256 for LFS files, the git blob id for small files) and only then renamed to its final name,
    so a partial or corrupt transfer never appears under a model file's name.
  - Records what it downloaded in a manifest, C(.hf_model.json) in O(dest) (repo, revision, commit, files with
    size and sha256). A run that changes nothing reads no file contents unless O(verify=sha256); its cost
    grows with the number of files, not with their size.
  - Uses the C(huggingface_hub) library (the model listing, each file's metadata and the Hub's errors) but not its
    cache, so nothing is written outside O(dest), not even under E(HF_HOME). Telemetry and Xet transfers are turned
    off. The bytes are read with ansible-core's C(open_url) into large reused buffers and hashed by a second thread
    as they arrive (a single stream uses two cores); the token is sent to the Hub's own host only, never to a CDN
    an LFS file redirects to, and never on a redirect. A broken transfer resumes from the bytes it has (HTTP Range);
    a server that ignores the Range is read again from the start.
  - Files are not flushed to disk (fsync) before their rename, as C(curl), C(pip) and C(ansible.builtin.get_url) do
    not; a file a host crash cut short has the wrong size, which the next run (O(verify=size)) downloads again;
    O(verify=sha256) checks every byte after a crash of a kind that could keep the size.
  - With O(source), installs from a local folder holding an earlier download of the same repo (for example an
    unpacked offline bundle) instead of a Hub, through the same staging and checks, and writes the same manifest
    byte for byte as a Hub download of that revision with the same patterns.
requirements:
  - huggingface_hub >= 1.0 (tested with 2.4); not needed with O(source), O(offline=true) or O(state=absent)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hpcllm.webui.common
attributes:
  check_mode:
    support: full
    details:
      - Lists the remote revision (read-only requests; with O(source), reads the source's manifest) and reports what
        would be downloaded or removed; writes nothing.
  diff_mode:
    support: full
    details:
      - Shows the repo, revision, commit and file list recorded in O(dest) before and after.
options:
  repo_id:
    description:
      - The model repository, C(owner/name), for example C(TheBloke/WizardCoder-Python-13B-V1.0-GPTQ).
    type: str
    required: true
  revision:
    description:
      - Branch (such as C(gptq-4bit-32g-actorder_True)), tag or 40-hex commit to download.
    type: str
    default: main
  dest:
    description:
      - Folder that receives the files of the revision (created if needed).
      - With O(state=absent), the folder to remove; it is removed only if it holds this module's manifest for O(repo_id).
    type: path
    required: true
  state:
    description:
      - V(present) downloads the revision; V(absent) removes O(dest) if it holds this module's manifest, and
        refuses otherwise, so a typo cannot delete an unrelated folder.
    type: str
    choices: [present, absent]
    default: present
  allow_patterns:
    description:
      - Only files matching at least one of these shell patterns (fnmatch, C(dir/) means C(dir/*)) are downloaded.
    type: list
    elements: str
  ignore_patterns:
    description:
      - Files matching any of these shell patterns are not downloaded.
    type: list
    elements: str
  endpoint:
    description:
      - Base URL of the Hub or of a local mirror, for example C(http://mirror.example:8080).
      - Defaults to the E(HF_ENDPOINT) environment variable, else U(https://huggingface.co).
      - When set, no request goes to any other host.
    type: str
  token:
    description:
      - Access token for gated or private repositories. Never logged nor written to disk.
      - Defaults to what C(huggingface_hub) finds (E(HF_TOKEN), or the token file under E(HF_HOME)).
    type: str
  verify:
    description:
      - How files already in O(dest) are checked before they are trusted.
      - V(none) trusts the manifest (the file must still exist).
      - V(size) also compares each file's size with the Hub's (a stat, no read).
      - V(sha256) reads every file and compares its sha256 with the Hub's LFS sha256 (small files stored in git are
        compared by git blob id); a file that differs is downloaded again.
      - Downloaded files are always checked against size and hash, whatever this option says.
    type: str
    choices: [none, size, sha256]
    default: size
  prune:
    description:
      - Remove files that this module downloaded earlier but that are no longer part of the revision (or of the
        selected patterns). Files the module did not download are never removed.
    type: bool
    default: false
  offline:
    description:
      - Do not contact the Hub; check O(dest) against its manifest (with O(verify)) and fail clearly if it is
        missing or incomplete, or if it holds another revision.
    type: bool
    default: false
  source:
    description:
      - A local folder holding an earlier download of O(repo_id) by this module (its files and its C(.hf_model.json)),
        such as C(<mirror>/models/<folder>) of an unpacked offline bundle. The Hub is not contacted and
        C(huggingface_hub) is not needed.
      - The file list, sizes, hashes and the commit come from the source's manifest. Its C(repo_id) must be O(repo_id),
        O(revision) must be its recorded revision or commit, and when the source itself was downloaded with
        O(allow_patterns) or O(ignore_patterns), the same patterns must be given here (otherwise the source may lack
        files of the revision). A source downloaded without patterns serves any patterns.
      - Each file to install is copied from the source into C(.hf_model.tmp/) and checked against the manifest's
        size and hash like a download. Files are renamed to their final names only when every copy succeeded, so a
        source folder that does not exist, an invalid source manifest, or a source file that is missing or whose
        size or hash differs fails naming the path and leaves O(dest) as it was.
      - The source path is not recorded in O(dest)'s manifest. Mutually exclusive with O(endpoint), O(token) and
        O(offline=true). Ignored with O(state=absent).
    type: path
    version_added: 0.3.0
  max_workers:
    description:
      - Number of files downloaded in parallel.
    type: int
    default: 8
  timeout:
    description:
      - Seconds to wait for the Hub to answer a request or send more data.
    type: float
    default: 60
notes:
  - Transient failures (connection drops, HTTP 5xx, truncated or corrupt bodies) are retried a few times; a
    dropped transfer resumes with an HTTP range request.
  - Files that were fully downloaded before a failure are kept and recorded, so a re-run fetches only the rest.
  - Errors name the repository and the revision. Errors found before the transfers (invalid repo id, unknown
    repository or revision, gated or unauthorized, network unreachable, not enough space, O(dest) not writable,
    a remote path that would escape O(dest)) change nothing on disk.
seealso:
  - name: huggingface_hub download guide
    description: The library this module is built on.
    link: https://huggingface.co/docs/huggingface_hub/guides/download
"""

EXAMPLES = r"""
- name: Download the GPTQ 4-bit branch of WizardCoder 13B
  hpcllm.webui.hf_model:
    repo_id: TheBloke/WizardCoder-Python-13B-V1.0-GPTQ
    revision: gptq-4bit-32g-actorder_True
    dest: /opt/ai_apps/webui_llama2/models/TheBloke_WizardCoder-Python-13B-V1.0-GPTQ_gptq-4bit-32g-actorder_True

- name: Download an fp16 model from a local mirror with a token, safetensors only
  hpcllm.webui.hf_model:
    repo_id: WizardLM/WizardCoder-Python-7B-V1.0
    dest: /opt/ai_apps/webui_llama2/models/WizardLM_WizardCoder-Python-7B-V1.0
    endpoint: http://hf-mirror.cluster.local:8080
    token: "{{ vault_hf_token }}"
    ignore_patterns:
      - "*.bin"
      - "*.pt"
  register: model

- name: Show the commit being served
  ansible.builtin.debug:
    msg: "{{ model.repo_id }} at {{ model.commit }} ({{ model.bytes_downloaded }} bytes fetched)"

- name: Check every file's sha256 and repair what differs, removing files that left the revision
  hpcllm.webui.hf_model:
    repo_id: WizardLM/WizardCoder-1B-V1.0
    dest: /opt/ai_apps/webui_llama2/models/WizardLM_WizardCoder-1B-V1.0
    verify: sha256
    prune: true

- name: On an air-gapped node, only check that the model is complete
  hpcllm.webui.hf_model:
    repo_id: WizardLM/WizardCoder-1B-V1.0
    dest: /opt/ai_apps/webui_llama2/models/WizardLM_WizardCoder-1B-V1.0
    offline: true

- name: On an air-gapped master, install a model from an unpacked offline bundle (no Hub, same files and manifest)
  hpcllm.webui.hf_model:
    repo_id: WizardLM/WizardCoder-Python-7B-V1.0
    dest: /opt/ai_apps/webui_llama2/models/WizardLM_WizardCoder-Python-7B-V1.0
    source: /opt/hpcllm-mirror/models/WizardLM_WizardCoder-Python-7B-V1.0

- name: Remove a model folder made by this module
  hpcllm.webui.hf_model:
    repo_id: WizardLM/WizardCoder-1B-V1.0
    dest: /opt/ai_apps/webui_llama2/models/WizardLM_WizardCoder-1B-V1.0
    state: absent
"""

RETURN = r"""
dest:
  description: Absolute path of the model folder.
  returned: always
  type: str
  sample: /opt/ai_apps/webui_llama2/models/TheBloke_WizardCoder-Python-13B-V1.0-GPTQ
repo_id:
  description: The repository.
  returned: always
  type: str
  sample: TheBloke/WizardCoder-Python-13B-V1.0-GPTQ
revision:
  description: The revision asked for (branch, tag or commit).
  returned: always
  type: str
  sample: gptq-4bit-32g-actorder_True
commit:
  description:
    - The commit the revision resolved to (with O(offline=true) or O(state=absent), the commit recorded in the manifest;
      with O(source), the commit recorded in the source's manifest).
  returned: always
  type: str
  sample: 7c4f3b7a7e4f8a1f1d0e2b3c4d5e6f708192a3b4
files:
  description: Files of the revision selected by the patterns (relative to O(dest)).
  returned: always
  type: list
  elements: str
  sample: [config.json, model.safetensors, quantize_config.json, tokenizer.model]
downloaded:
  description: Files downloaded (with O(source), copied) by this run (in check mode, files that would be).
  returned: always
  type: list
  elements: str
  sample: [model.safetensors]
bytes_downloaded:
  description: Bytes downloaded (with O(source), copied) by this run (in check mode, bytes that would be).
  returned: always
  type: int
  sample: 7259839584
removed:
  description: Files removed because they left the revision (O(prune=true)).
  returned: always
  type: list
  elements: str
  sample: []
actions:
  description: What the run did (or would do in check mode), one readable line per action.
  returned: always
  type: list
  elements: str
  sample: ["download model.safetensors (missing, 7259839584 bytes)"]
diff:
  description: Repo, revision, commit and files recorded before and after.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: What the manifest recorded before the run (empty if there was none).
      type: dict
    after:
      description: What the manifest records after the run (empty after O(state=absent)).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpcllm.webui.plugins.module_utils._hf_model import HfModel
from ansible_collections.hpcllm.webui.plugins.module_utils._module import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repo_id=dict(type="str", required=True),
            revision=dict(type="str", default="main"),
            dest=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            allow_patterns=dict(type="list", elements="str"),
            ignore_patterns=dict(type="list", elements="str"),
            endpoint=dict(type="str"),
            token=dict(type="str", no_log=True),
            verify=dict(type="str", choices=["none", "size", "sha256"], default="size"),
            prune=dict(type="bool", default=False),
            offline=dict(type="bool", default=False),
            source=dict(type="path"),
            max_workers=dict(type="int", default=8),
            timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )

    run_module(module, HfModel)


if __name__ == "__main__":
    main()
