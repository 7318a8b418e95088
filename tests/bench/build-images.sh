#!/usr/bin/env bash
# Build the test bench's container images locally (no registry is reachable):
#   localhost/hpcllm-bench-debian12:<recipe>  plain Debian 12 (debootstrap minbase + python3)
#   localhost/hpcllm-bench-master:<recipe>    the same plus Ansible, the collections the
#                                             project depends on, and a copy of the plain
#                                             rootfs to serve as a Warewulf node image
# <recipe> is a hash of this script, the master requirements and the pin of the `ansible`
# package the collections come from: images are rebuilt only when the recipe changes.
# Prints the master image reference on its last line.
# Needs only the apt packages of `make apt` (Debian's python3 and pip), not the .venv:
# `make test` builds the images while it makes the .venv. One build at a time on a machine
# (a lock); a second caller waits for it and then finds the images current.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=${PYTHON:-python3}
cache=${BENCH_CACHE:-$repo/.cache/bench}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

# the collections the project depends on come from the `ansible` package pinned for developers
ansible_pin=$(grep -E '^ansible==' "$repo/requirements-dev.txt")
recipe=$( (cat "$0" "$here/master-requirements.txt"; echo "$ansible_pin") | sha256sum | cut -c1-12)
base_ref=localhost/hpcllm-bench-debian12:$recipe
master_ref=localhost/hpcllm-bench-master:$recipe

log() { printf '==> %s\n' "$*" >&2; }

# The compiler cache the scenarios' CPython and DKMS builds share (bound into the
# containers at /var/cache/hpcllm-ccache): outside the clone, so that it outlives it; a
# fresh machine starts with it empty (slower, same result). Root's and writable by root
# only, as the roles require of a cache whose objects go into what root runs.
ccache_dir=${HPCLLM_BENCH_CCACHE:-/var/cache/hpcllm-bench/ccache}
install -d -m 0755 -o root -g root "$ccache_dir"

exec 9>/run/lock/hpcllm-bench-images.lock
flock 9

if podman image exists "$base_ref" && podman image exists "$master_ref"; then
    log "bench images are current ($recipe)"
    podman tag "$master_ref" localhost/hpcllm-bench-master:latest
    podman tag "$base_ref" localhost/hpcllm-bench-debian12:latest
    echo "$master_ref"
    exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
    # never leave a mount behind, whatever failed
    for m in proc dev; do
        mountpoint -q "$work/rootfs/$m" 2>/dev/null && umount -l "$work/rootfs/$m"
    done
    rm -rf "$work"
}
trap cleanup EXIT

log "debootstrap Debian 12 (minbase + python3) from $mirror"
debootstrap --variant=minbase --include=python3,python3-apt,ca-certificates \
    bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

log "trim apt lists, docs and caches"
rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
    "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/usr/share/doc/* \
    "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/locale/*
# a policy that keeps package scripts from starting services inside containers/chroots
printf '#!/bin/sh\nexit 101\n' >"$work/rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$work/rootfs/usr/sbin/policy-rc.d"

log "save the plain rootfs (node image template) and import $base_ref"
# /dev left empty, as in an image Warewulf imports from a registry (OCI layers carry none):
# debootstrap's dev/fd -> /proc/self/fd and friends resolve into the master's /proc, which
# Warewulf's build check follows, so such an image is rebuilt by every build (the
# warewulf_image module warns, naming them; tests/integration/test_warewulf.py covers it)
tar --numeric-owner -C "$work/rootfs" --exclude='./dev/?*' -cf "$work/node-rootfs.tar" .
podman import --quiet --change 'CMD ["/bin/bash"]' "$work/node-rootfs.tar" "$base_ref" >/dev/null

log "download the master's Python wheels and $ansible_pin on the host"
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --dest "$work/ansible" "$ansible_pin"
"$py" -m pip download --disable-pip-version-check --quiet --dest "$work/wheels" --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    -r "$here/master-requirements.txt"

log "install the master's packages into the rootfs (offline, from the wheels)"
apt_pkgs=(python3-pip util-linux rsync)
mount -t proc proc "$work/rootfs/proc"
mount --bind /dev "$work/rootfs/dev"
cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
chroot "$work/rootfs" apt-get update -qq >/dev/null
chroot "$work/rootfs" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
cp -a "$work/wheels" "$work/rootfs/tmp/wheels"
cp "$here/master-requirements.txt" "$work/rootfs/tmp/master-requirements.txt"
chroot "$work/rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin python3 -m pip install --quiet --break-system-packages --no-index \
    --find-links /tmp/wheels -r /tmp/master-requirements.txt
umount "$work/rootfs/proc" "$work/rootfs/dev"
rm -rf "$work"/rootfs/tmp/* "$work"/rootfs/var/lib/apt/lists/* \
    "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb \
    "$work"/rootfs/root/.cache

log "unpack the collections the project depends on from the ansible wheel (no Galaxy here)"
# only community.general and ansible.posix, with the modes the wheel records
"$py" - "$work"/ansible/ansible-*.whl "$work/rootfs/usr/share/ansible/collections" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1:]
keep = ("ansible_collections/community/general/", "ansible_collections/ansible/posix/")
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.infolist() if m.filename.startswith(keep)]
    if not any(m.filename.startswith(keep[0]) for m in members) or not any(m.filename.startswith(keep[1]) for m in members):
        sys.exit(f"{wheel}: no community.general or ansible.posix in it")
    for m in members:
        path = z.extract(m, dest)
        mode = (m.external_attr >> 16) & 0o777
        if mode and not m.is_dir():
            os.chmod(path, mode)
PY
mkdir -p "$work/rootfs/srv/bench"
mv "$work/node-rootfs.tar" "$work/rootfs/srv/bench/node-rootfs.tar"

log "import $master_ref"
tar --numeric-owner -C "$work/rootfs" -c . \
    | podman import --quiet --change 'CMD ["/bin/bash"]' - "$master_ref" >/dev/null
podman tag "$master_ref" localhost/hpcllm-bench-master:latest
podman tag "$base_ref" localhost/hpcllm-bench-debian12:latest
log "done"
echo "$master_ref"
