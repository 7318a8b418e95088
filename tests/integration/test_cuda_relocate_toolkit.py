"""The relocation follows whether a CUDA toolkit is expected (nvidia_driver_cuda_toolkit, per image, and the
`system` step), through the real relocate play (playbooks/relocate.yml) and role on plain folders as image roots."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import REPO_ROOT

PLAY = REPO_ROOT / "playbooks" / "relocate.yml"
FAIL_TASK = "Stop, naming the variable and every relocation that failed"
SAY_TASK = "Say which images have no CUDA toolkit to move"


def _layout(tmp_path: Path, images: dict) -> str:
    """Image roots under tmp_path/images (with a small CUDA tree where asked) and an inventory for the play."""
    hosts = {}
    for name, spec in images.items():
        root = tmp_path / "images" / name
        (root / "usr" / "local").mkdir(parents=True)
        if spec.pop("tree", False):
            (root / "usr" / "local" / "cuda-12.3" / "bin").mkdir(parents=True)
            (root / "usr" / "local" / "cuda-12.3" / "bin" / "nvcc").write_text("test stand-in nvcc\n")
        hosts[name] = {"chroot_prep_rootfs": str(root), **spec}
    opt = tmp_path / "opt"
    inventory = {
        "all": {
            "vars": {
                "cuda_relocate_cuda_dest_dir": str(opt / "cuda"),
                # the role's default list, with the Nsight folders under the test's /opt
                "cuda_relocate_relocations": [
                    {"src": "/usr/local/cuda-12.3", "dest": str(opt / "cuda" / "cuda-12.3"), "link": True,
                     "required": True},
                    {"src": "/opt/nvidia/nsight-systems", "dest": str(opt / "nvidia" / "nsight-systems"),
                     "link": False, "required": False},
                ],
            },
            "children": {
                "warewulf_master": {"hosts": {"localhost": {"ansible_connection": "local"}}},
                "warewulf_images": {"hosts": hosts},
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def _ran(run, task_name, host="localhost"):
    """The result of a task (inside an included role its name gets the role's prefix), None if it did not run."""
    for play in run.data.get("plays", []):
        for task in play.get("tasks", []):
            if task["task"]["name"].split(" : ")[-1] == task_name and host in task["hosts"]:
                return task["hosts"][host]
    return None


def test_nothing_expected_nothing_to_move_said_once(ansible_playbook, tmp_path):
    inventory = _layout(tmp_path, {
        "gpu": {"tree": True},                                   # the defaults: toolkit expected, and there
        "lite": {"hpcllm_steps": ["relocate", "apps", "models"]},  # no system step: nothing installed one
        "notk": {"nvidia_driver_cuda_toolkit": False},          # not wanted, not there
        "notk-has": {"nvidia_driver_cuda_toolkit": False, "tree": True},  # not wanted, but there: still moved
    })
    run = ansible_playbook(PLAY, inventory=inventory)
    assert run.rc == 0, run.stdout + run.stderr
    assert _ran(run, FAIL_TASK) is None
    said = _ran(run, SAY_TASK)
    assert said["msg"] == ("No CUDA toolkit is expected in lite, notk (nvidia_driver_cuda_toolkit false, or no "
                           "`system` step for the image) and none is there: nothing to move.")
    assert (tmp_path / "opt" / "cuda" / "cuda-12.3" / "bin" / "nvcc").is_file()
    for name in ("gpu", "notk-has"):
        link = tmp_path / "images" / name / "usr" / "local" / "cuda-12.3"
        assert link.is_symlink() and str(link.readlink()) == str(tmp_path / "opt" / "cuda" / "cuda-12.3")
    for name in ("lite", "notk"):
        assert not (tmp_path / "images" / name / "usr" / "local" / "cuda-12.3").exists()

    again = ansible_playbook(PLAY, inventory=inventory)
    assert again.rc == 0 and again.changed() == 0, again.stdout


def test_expected_but_missing_fails_naming_the_setting(ansible_playbook, tmp_path):
    inventory = _layout(tmp_path, {"gpu": {"nvidia_driver_cuda_toolkit": True}, "lite": {"hpcllm_steps": ["apps"]}})
    # check mode: the system step only reported the toolkit's install, so its absence is no failure yet
    check = ansible_playbook(PLAY, inventory=inventory, check=True)
    assert check.rc == 0 and _ran(check, FAIL_TASK) is None, check.stdout
    run = ansible_playbook(PLAY, inventory=inventory)
    # the play records the failure on the image (finalize reports it after the teardown)
    msg = " ".join(_ran(run, FAIL_TASK)["msg"].split())
    root = tmp_path / "images" / "gpu"
    dest = tmp_path / "opt" / "cuda" / "cuda-12.3"
    assert msg == (f"cuda_relocate_relocations: image gpu, src /usr/local/cuda-12.3 -> dest {dest}: neither src "
                   f"{root}/usr/local/cuda-12.3 nor dest {dest} exists (the image is meant to hold the CUDA toolkit: "
                   "cuda_relocate_cuda_toolkit, from nvidia_driver_cuda_toolkit, is true, but nothing installed "
                   "/usr/local/cuda-12.3; install it, e.g. nvidia_driver_cuda_toolkit_package, or set "
                   "nvidia_driver_cuda_toolkit false)"), msg
    record = _ran(run, "Record the failure on every image it concerned (the teardown must still run)")
    assert record["results"][0]["ansible_facts"]["_hpcllm_image_failure"].startswith("relocate: ")


def test_bad_toolkit_value_stops_at_the_door(ansible_playbook, tmp_path):
    root = tmp_path / "images" / "gpu"
    root.mkdir(parents=True)
    playbook = tmp_path / "role.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: hpcllm.webui.cuda_relocate\n"
        f"      cuda_relocate_images: [{{name: gpu, rootfs: '{root}', cuda_toolkit: maybe}}]\n"
    )
    run = ansible_playbook(playbook)
    assert run.rc != 0
    msg = _ran(run, "Validating arguments against arg spec 'main' - Move CUDA and Nsight out of node images onto "
                    "the master's /opt and link them back.")["msg"]
    assert "argument 'cuda_toolkit' is of type str found in 'cuda_relocate_images'. and we were unable to convert " \
           "to bool: The value 'maybe' is not a valid boolean" in msg, msg
