# Test stand-in: builds a fake NVIDIA CUDA apt repository for Debian 12 (no NVIDIA file); never deploy it.
"""Build a small flat apt repository named and laid out like NVIDIA's debian12/x86_64 CUDA repository.

Packages (each built with `dpkg-deb --build`, each Description says it is a stand-in):
- cuda-toolkit-12-3: the stand-in CUDA tree of make_tree.py under /usr/local/cuda-12.3;
  depends on nsight-systems-2023.3.3, as NVIDIA's toolkit pulls in Nsight Systems.
- nsight-systems-2023.3.3: the stand-in Nsight tree under /opt/nvidia/nsight-systems/2023.3.3.
- decoys named like Debian's non-free driver packages at NVIDIA's higher versions
  (nvidia-smi, libcuda1, nvidia-kernel-dkms 545.23.08-1), holding only a note: NVIDIA's
  repository carries such packages, and they must never replace Debian's driver.

The repository: the .deb files, Packages(.gz) from dpkg-scanpackages, a Release saying
`Origin: NVIDIA` / `Label: NVIDIA CUDA` as NVIDIA's does, InRelease and Release.gpg signed
with a throwaway ed25519 key made here, and that key (armored) as 3bf863cc.pub, the name
of NVIDIA's key file.

    python3 make_deb_repo.py --out DIR [--manifest FILE] [--nsight-manifest FILE] [--origin O --label L]

--manifest / --nsight-manifest write the make_tree.py manifests of the two trees, to
compare with what a run moved or installed. Needs dpkg-deb, dpkg-scanpackages and gpg.
"""

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CUDA_VERSION = "12.3"
TOOLKIT = ("cuda-toolkit-12-3", "12.3.2-1")
NSIGHT = ("nsight-systems-2023.3.3", "2023.3.3.42-1")
NSIGHT_DIR = "/opt/nvidia/nsight-systems/2023.3.3"
DECOYS = [("nvidia-smi", "545.23.08-1"), ("libcuda1", "545.23.08-1"), ("nvidia-kernel-dkms", "545.23.08-1")]
# the stand-in trees: small (a few MB) because the site scenario carries them twice
CUDA_TREE_ARGS = ["--seed", "1", "--small", "120", "--large", "1", "--large-mb", "2"]
RELEASE_DATE = "Thu, 30 Nov 2023 12:00:00 UTC"


def run(argv, **kwargs):
    subprocess.run(argv, check=True, **kwargs)


def make_tree(root, kind, manifest=None):
    argv = [sys.executable, os.path.join(HERE, "make_tree.py"), "--root", root, "--kind", kind]
    argv += CUDA_TREE_ARGS if kind == "cuda" else ["--seed", "1"]
    if manifest:
        argv += ["--manifest", manifest]
    run(argv)


def control(staging, name, version, description, depends=None, extra=""):
    os.makedirs(os.path.join(staging, "DEBIAN"), exist_ok=True)
    lines = ["Package: %s" % name, "Version: %s" % version, "Architecture: amd64",
             "Maintainer: hpcllm.webui bench <bench@localhost>", "Section: devel", "Priority: optional"]
    if depends:
        lines.append("Depends: %s" % depends)
    lines.append("Description: test stand-in, not NVIDIA's package: %s" % description)
    lines.append(" Built by tests/cuda_standin/make_deb_repo.py for the hpcllm.webui tests." + extra)
    with open(os.path.join(staging, "DEBIAN", "control"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def note(staging, name):
    path = os.path.join(staging, "usr", "share", "doc", name + "-standin", "README")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("test stand-in: a decoy named like Debian's %s at NVIDIA's version; "
                     "installing it means the CUDA repository pin failed\n" % name)


def build_deb(staging, out):
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", staging, out], stdout=subprocess.DEVNULL)


def digests(path):
    with open(path, "rb") as handle:
        data = handle.read()
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data)  # noqa: S324 (apt's MD5Sum field)


def write_index(out, origin, label):
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=out, check=True,
                              capture_output=True).stdout
    with open(os.path.join(out, "Packages"), "wb") as handle:
        handle.write(packages)
    with open(os.path.join(out, "Packages.gz"), "wb") as handle:
        handle.write(gzip.compress(packages, mtime=0))
    sums = {name: digests(os.path.join(out, name)) for name in ("Packages", "Packages.gz")}
    release = ["Origin: " + origin, "Label: " + label, "Date: " + RELEASE_DATE,
               "Description: test stand-in of NVIDIA's CUDA repository for Debian 12 (hpcllm.webui tests)",
               "MD5Sum:"]
    release += [" %s %d %s" % (md5, size, name) for name, (md5, _sha, size) in sorted(sums.items())]
    release.append("SHA256:")
    release += [" %s %d %s" % (sha, size, name) for name, (_md5, sha, size) in sorted(sums.items())]
    with open(os.path.join(out, "Release"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(release) + "\n")


def sign(out):
    home = tempfile.mkdtemp(prefix="hpcllm-cuda-gpg-")
    gpg = ["gpg", "--batch", "--quiet", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        run(gpg + ["--quick-gen-key", "hpcllm.webui bench CUDA stand-in <bench@localhost>", "ed25519", "sign", "never"],
            stderr=subprocess.DEVNULL)
        run(gpg + ["--armor", "--output", os.path.join(out, "3bf863cc.pub"), "--export"])
        run(gpg + ["--clearsign", "--output", os.path.join(out, "InRelease"), os.path.join(out, "Release")])
        run(gpg + ["--armor", "--detach-sign", "--output", os.path.join(out, "Release.gpg"), os.path.join(out, "Release")])
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--manifest")
    parser.add_argument("--nsight-manifest")
    # tests of the pin: a repository whose Release does not say what NVIDIA's says
    parser.add_argument("--origin", default="NVIDIA")
    parser.add_argument("--label", default="NVIDIA CUDA")
    args = parser.parse_args(argv)
    if os.path.lexists(args.out) and os.listdir(args.out):
        parser.error("%s exists and is not empty" % args.out)
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hpcllm-cuda-debs-")
    try:
        staging = os.path.join(work, TOOLKIT[0])
        make_tree(staging + "/usr/local/cuda-" + CUDA_VERSION, "cuda", args.manifest)
        control(staging, TOOLKIT[0], TOOLKIT[1], "CUDA Toolkit 12.3 (a fake tree)", depends=NSIGHT[0])
        build_deb(staging, os.path.join(args.out, "%s_%s_amd64.deb" % TOOLKIT))

        staging = os.path.join(work, NSIGHT[0])
        make_tree(staging + NSIGHT_DIR, "nsight", args.nsight_manifest)
        control(staging, NSIGHT[0], NSIGHT[1], "Nsight Systems (a fake tree)")
        build_deb(staging, os.path.join(args.out, "%s_%s_amd64.deb" % NSIGHT))

        for name, version in DECOYS:
            staging = os.path.join(work, name)
            note(staging, name)
            control(staging, name, version, "decoy named like Debian's driver package " + name)
            build_deb(staging, os.path.join(args.out, "%s_%s_amd64.deb" % (name, version)))

        write_index(args.out, args.origin, args.label)
        sign(args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
