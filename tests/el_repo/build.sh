#!/bin/sh
# Test stand-ins: build the stand-in RPMs (tests/el_repo/specs) with Debian's rpmbuild
# into two repositories made with createrepo_c: $1 plays the distribution (BaseOS and
# EPEL: base packages, kernel), $2 NVIDIA's CUDA repository, and the optional $3 an offline
# bundle's repository holding one package no other has (hpcllm-bundle-probe). Used by
# molecule/el_packages.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
base=${1:?usage: build.sh BASE_REPO_DIR CUDA_REPO_DIR}
cuda=${2:?usage: build.sh BASE_REPO_DIR CUDA_REPO_DIR}
bundle=${3:-}
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$base" "$cuda"
build() { repo=$1; shift; rpmbuild --quiet -bb --define "_topdir $top" --define "_rpmdir $repo" "$@"; }
for name in epel-release gcc-c++ make wget curl libpciaccess nvme-cli numad numatop yum-utils dkms; do
  build "$base" --define "standin_name $name" "$here/specs/standin.spec"
done
build "$base" "$here/specs/kernel.spec"
build "$cuda" "$here/specs/nvidia.spec"
build "$cuda" "$here/specs/cuda-toolkit.spec"
createrepo_c --quiet "$base"
createrepo_c --quiet "$cuda"
if [ -n "$bundle" ]; then
  mkdir -p "$bundle"
  build "$bundle" --define "standin_name hpcllm-bundle-probe" "$here/specs/standin.spec"
  createrepo_c --quiet "$bundle"
fi
