#!/usr/bin/env bash
# hpcllm.webui (models role): can the venv's torch drive the GPUs this process sees?
# webui_launch.sh runs it before the web UI reads anything, so that a GPU the venv cannot
# drive stops the launch at once instead of failing at the first kernel after minutes of
# loading weights ("no kernel image is available for execution on the device").
#
# Usage: webui_gpu_check.sh RECORD NO_GPU
#   RECORD  R/webui/torch-gpu.txt, written by the webui role from the venv's torch:
#           WEBUI_LOCK, TORCH_VERSION, TORCH_CUDA, TORCH_ARCHS (sm_XY cubins, compute_XY PTX)
#   NO_GPU  what to do without a visible NVIDIA GPU: cpu (go on with --cpu) or stop
# Prints "--cpu" on stdout when the web UI is to run on the CPU, nothing when it may use
# the GPUs; says why on stderr; exits 1 to stop the launch.
#
# GPUs: nvidia-smi --query-gpu=index,uuid,name,compute_cap, restricted to
# CUDA_VISIBLE_DEVICES as CUDA restricts it (indexes or GPU-UUID prefixes, in that order,
# up to the first entry that matches no GPU; empty or -1: none). No nvidia-smi: no GPU.
# nvidia-smi failing: no GPU when no NVIDIA display device is on the PCI bus (a CPU node
# booted from the GPU image), else the driver is broken and the launch stops.
# Compatibility, as CUDA loads code: a cubin sm_XY runs on capability X.Z with Z >= Y
# (sm_XYa only on X.Y), PTX compute_XY is compiled by the driver for any capability >= X.Y.
set -euo pipefail

record=${1:?usage: webui_gpu_check.sh RECORD NO_GPU}
no_gpu=${2:?usage: webui_gpu_check.sh RECORD NO_GPU}
sysfs=${HPCLLM_SYSFS_ROOT:-/sys}  # where sysfs is mounted (tests point it at a folder)

say() { echo "webui_launch.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

case $no_gpu in
    cpu | stop) ;;
    *) die "webui_gpu_check.sh: NO_GPU must be cpu or stop (got '$no_gpu')" ;;
esac
[[ -r $record ]] || die "$record not found: the webui role writes it when it installs the venv (run it again)"
lock="" version="" cuda="" archs=""
while IFS='=' read -r key value; do
    case $key in
        WEBUI_LOCK) lock=$value ;;
        TORCH_VERSION) version=$value ;;
        TORCH_CUDA) cuda=$value ;;
        TORCH_ARCHS) archs=$value ;;
    esac
done <"$record"

nvidia_on_pci() {
    local dev vendor class
    for dev in "$sysfs"/bus/pci/devices/*; do
        [[ -r $dev/vendor && -r $dev/class ]] || continue
        read -r vendor <"$dev/vendor"
        read -r class <"$dev/class"
        if [[ $vendor == 0x10de && $class == 0x03* ]]; then
            return 0
        fi
    done
    return 1
}

without_gpu() {
    if [[ $no_gpu == stop ]]; then
        die "$1; this launcher is set to stop without a GPU (models_no_gpu: stop). Nothing was loaded."
    fi
    say "$1: the web UI runs on the CPU (--cpu; models_no_gpu: cpu)"
    echo "--cpu"
    exit 0
}

# --- the GPUs this process sees ---------------------------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1; then
    without_gpu "no nvidia-smi on this node"
fi
rc=0
listing=$(nvidia-smi --query-gpu=index,uuid,name,compute_cap --format=csv,noheader 2>&1) || rc=$?
if ((rc != 0)); then
    reason=$(printf '%s\n' "$listing" | sed -n '/./{p;q}')
    if nvidia_on_pci; then
        die "an NVIDIA GPU is on this node's PCI bus but nvidia-smi fails (exit $rc: ${reason:-no output}): the driver is not working. Nothing was loaded."
    fi
    without_gpu "no NVIDIA GPU on this node (nvidia-smi exit $rc: ${reason:-no output})"
fi
indexes=() uuids=() names=() caps=()
while IFS= read -r line; do
    [[ -n ${line//[[:space:]]/} ]] || continue
    IFS=',' read -r index uuid name cap <<<"$line"
    indexes+=("${index//[[:space:]]/}")
    uuids+=("${uuid//[[:space:]]/}")
    name=${name#"${name%%[![:space:]]*}"}
    names+=("${name%"${name##*[![:space:]]}"}")
    caps+=("${cap//[[:space:]]/}")
done <<<"$listing"

visible=()
if [[ -n ${CUDA_VISIBLE_DEVICES+set} ]]; then
    IFS=',' read -r -a wanted <<<"$CUDA_VISIBLE_DEVICES"
    for entry in "${wanted[@]}"; do
        entry=${entry//[[:space:]]/}
        found=""
        for i in "${!indexes[@]}"; do
            if [[ $entry == "${indexes[$i]}" ]] || [[ $entry == GPU-?* && ${uuids[$i]} == "$entry"* ]]; then
                found=$i
                break
            fi
        done
        [[ -n $found ]] || break # CUDA ignores this entry and every one after it
        visible+=("$found")
    done
    if ((${#visible[@]} == 0)); then
        without_gpu "no GPU visible (CUDA_VISIBLE_DEVICES='$CUDA_VISIBLE_DEVICES' selects none of the ${#indexes[@]} GPUs nvidia-smi lists)"
    fi
else
    visible=("${!indexes[@]}")
    if ((${#visible[@]} == 0)); then
        without_gpu "nvidia-smi lists no GPU"
    fi
fi

# --- can the venv's torch drive them? ---------------------------------------------------
if [[ -z $version ]]; then
    say "the venv has no torch (lock $lock): its GPU support is not checked"
    exit 0
fi
to_change="deploy a lock whose torch has code for it (webui_lock: cu118 adds 9.0, Hopper; or a lock of your own in webui_lock_file), or hide this GPU with CUDA_VISIBLE_DEVICES (empty: run on the CPU)"
runs_on() { # capability (X.Y) -> 0 when an architecture in $archs can run on it
    local cap=$1 major minor arch number am an
    major=${cap%%.*}
    minor=${cap#*.}
    [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
    for arch in $archs; do
        case $arch in
            sm_*a)
                number=${arch#sm_}
                number=${number%a}
                [[ $number == "$major$minor" ]] && return 0
                ;;
            sm_*)
                number=${arch#sm_}
                am=${number:0:${#number}-1}
                an=${number: -1}
                ((am == major && an <= minor)) && return 0
                ;;
            compute_*)
                number=${arch#compute_}
                number=${number%a}
                am=${number:0:${#number}-1}
                an=${number: -1}
                ((am < major || (am == major && an <= minor))) && return 0
                ;;
        esac
    done
    return 1
}
seen=()
for i in "${visible[@]}"; do
    seen+=("${indexes[$i]}: ${caps[$i]}")
    gpu="GPU ${indexes[$i]} (${names[$i]}, ${uuids[$i]}) has compute capability ${caps[$i]}"
    if [[ -z $cuda ]]; then
        die "$gpu, but the venv's torch $version is CPU only (lock $lock): $to_change. Nothing was loaded."
    fi
    if ! runs_on "${caps[$i]}"; then
        die "$gpu, which the venv's torch $version (CUDA $cuda, built for ${archs:-no architecture}; lock $lock) cannot run: $to_change. Nothing was loaded."
    fi
done
say "torch $version (CUDA $cuda) runs on the visible GPU(s) (${seen[*]})"
exit 0
