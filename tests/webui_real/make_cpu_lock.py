"""Write tests/webui_real/lock-cpu.txt: the shipped cu117 lock made to run the real web UI on a CPU.

Test input, not a shipped lock: the bench runs the real text-generation-webui (8466cf2) on
machines without a GPU, with the CPU build of torch 2.13.0 that lies on their disk
(/opt/wheels; PyPI has only CUDA builds of torch for Linux). Everything else is the
shipped lock (roles/webui/files/locks/8466cf2-py311-x86_64.txt), pin for pin, except:

- dropped: the CUDA runtime wheels (nvidia-*-cu11), triton with what only it needs (cmake,
  lit), torchaudio and torchvision (built against torch 2.0.1; the web UI's core imports
  neither), and the five CUDA wheels from
  GitHub releases (GPU loaders: GPTQ, ExLlama, llama.cpp-cuda, ctransformers);
- torch==2.13.0+cpu, and the pins torch 2.13 needs newer: typing-extensions (>= 4.10),
  setuptools (>= 77.0.3; 81 still has pkg_resources), sympy (>= 1.13.3).

Hashes as the shipped lock's (PyPI's own figures, tests/unit/roles/lock_hashes.py); torch's is
the sha256 of the CPU wheel. tests/unit/test_webui_real_lock.py checks the file against this
derivation. Run after the shipped lock changes:

    .venv/bin/python tests/webui_real/make_cpu_lock.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "roles" / "webui" / "files" / "locks" / "8466cf2-py311-x86_64.txt"
OUT = Path(__file__).resolve().parent / "lock-cpu.txt"
TORCH_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
TORCH_SHA256 = "6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b"
DROP = re.compile(r"^(nvidia-[a-z0-9-]+-cu11|triton|cmake|lit|torchaudio|torchvision)$")
NEWER = {"typing-extensions": "4.12.2", "setuptools": "81.0.0", "sympy": "1.13.3"}
HEADER = """\
# Test input (tests/webui_real/make_cpu_lock.py writes it; not a shipped lock): the shipped
# lock roles/webui/files/locks/8466cf2-py311-x86_64.txt for the real web UI on a CPU. Dropped:
# nvidia-*-cu11, triton (and its cmake, lit), torchaudio, torchvision and the CUDA wheels from
# GitHub releases.
# torch is the CPU build 2.13.0+cpu (pip finds it in /opt/wheels on the bench machines), with
# the newer typing-extensions, setuptools and sympy it needs. Every other line is the
# shipped lock's, hashes included.
"""


def pins(text: str):
    """(name, line) of each requirement line; other lines give (None, line)."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            yield None, raw
            continue
        yield re.split(r"[=<>\s]", line, maxsplit=1)[0].lower(), raw


def derive(shipped: str, hashes) -> str:
    """The CPU lock from the shipped lock's text; hashes(name, version) gives a new pin's sha256 list."""
    body = shipped.split("\n\n", 1)[1]  # the shipped header goes, the pins stay in order
    body = body.split("\n# cp311 CUDA", 1)[0]  # the GitHub wheels and their heading
    out = []
    for name, raw in pins(body):
        if name is None:
            out.append(raw)
        elif DROP.match(name):
            continue
        elif name == "torch":
            out.append(f"torch==2.13.0+cpu --hash=sha256:{TORCH_SHA256}  # {TORCH_WHEEL} (CPU build)")
        elif name in NEWER:
            version = NEWER[name]
            out.append(f"{name}=={version}" + "".join(f" --hash=sha256:{h}" for h in hashes(name, version))
                       + "  # newer: torch 2.13 needs it")
        else:
            out.append(raw)
    return HEADER + "\n" + "\n".join(out).rstrip("\n") + "\n"


def main() -> int:
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "roles"))
    from lock_hashes import node_hashes
    OUT.write_text(derive(SHIPPED.read_text(encoding="utf-8"), node_hashes), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
