#!/usr/bin/env bash
# Bench helper (tests and demo only, not part of the deployment): runs a command as USER "on a node"
# of the bench master, i.e. inside an image's root filesystem as a booted node has it: in a private
# mount namespace (it ends with its last process; nothing of it lands in the image) with /proc, /sys,
# /dev, the master's /opt (NFS on a node), /home, a fresh /tmp, and USER known to the image (Warewulf's
# overlays give a node the cluster's users). The network is the master's.
#
# usage: node-run.sh IMAGE USER COMMAND [ARGS...]
set -euo pipefail

if (($# < 3)); then
    echo "usage: node-run.sh IMAGE USER COMMAND [ARGS...]" >&2
    exit 64
fi
image=$1 user=$2
shift 2
rootfs=/var/lib/warewulf/chroots/$image/rootfs
[[ -d $rootfs/etc ]] || { echo "node-run.sh: no image $image ($rootfs)" >&2; exit 64; }
entry=$(getent passwd "$user") || { echo "node-run.sh: no user $user on the master" >&2; exit 64; }
home=$(cut -d: -f6 <<<"$entry")
gid=$(cut -d: -f4 <<<"$entry")
passwd=$(mktemp /run/node-passwd.XXXXXX)
{ cat "$rootfs/etc/passwd"; echo "$entry"; } >"$passwd"
chmod 0644 "$passwd"

exec unshare --mount --propagation private bash -c '
set -e
rootfs=$1 passwd=$2 user=$3 gid=$4 home=$5
shift 5
mount -t proc proc "$rootfs/proc"
mount -t sysfs sysfs "$rootfs/sys"
mount --rbind /dev "$rootfs/dev"
mount --rbind /opt "$rootfs/opt"
mount --bind /home "$rootfs/home"
mount -t tmpfs tmpfs "$rootfs/tmp"
mount --bind "$passwd" "$rootfs/etc/passwd"
rm -f "$passwd"
exec chroot "$rootfs" setpriv --reuid="$user" --regid="$gid" --init-groups \
    env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin "$@"
' node-run "$rootfs" "$passwd" "$user" "$gid" "$home" "$@"
