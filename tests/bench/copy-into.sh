#!/usr/bin/env bash
# Copy a host folder's contents into a bench container in one stream (tar through podman
# exec), owned by root, modes kept: one command where ansible.builtin.copy of a folder
# makes a module call per file through the podman connection (seconds each under load).
#   copy-into.sh SRC_DIR CONTAINER DEST_DIR
set -euo pipefail
src=$1 container=$2 dest=$3
[[ -d $src ]] || { echo "copy-into.sh: $src is not a folder" >&2; exit 2; }
tar -C "$src" --owner=0 --group=0 --numeric-owner -cf - . \
    | podman exec -i "$container" sh -c 'mkdir -p "$1" && tar -C "$1" -xpf -' sh "$dest"
