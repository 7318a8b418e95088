#!/usr/bin/env bash
# Runs inside the demo master after `ansible-playbook site.yml`: prints what landed where
# and how to launch each model. Usage: demo-summary.sh [INSTALL_ROOT]
set -euo pipefail
root=${1:-/opt/ai_apps/webui_llama2}
chroots=/var/lib/warewulf/chroots

echo "== Images (Warewulf: wwctl container list)"
{ wwctl container list 2>&1 || echo "(wwctl container list failed)"; } | sed 's/^/   /'
for img in "$chroots"/*/; do
    img=${img%/}
    name=$(basename "$img")
    echo "== Image $name ($img/rootfs)"
    for ko in "$img"/rootfs/lib/modules/*/updates/dkms/nvidia-current.ko; do
        [[ -e $ko ]] && echo "   NVIDIA module: ${ko#"$img"/rootfs} ($(modinfo -F vermagic "$ko" | cut -d' ' -f1))"
    done
    for l in "$img"/rootfs/usr/local/cuda-*; do
        [[ -L $l ]] && echo "   ${l#"$img"/rootfs} -> $(readlink "$l") (on the master's NFS /opt)"
    done
    built=$(ls /var/lib/warewulf/provision/container/"$name".img 2>/dev/null || true)
    echo "   built image: ${built:-none}"
done
echo "== Mounts left under the images: $(findmnt --raw --noheadings --output TARGET | grep -c "^$chroots/" || true)"
echo "== Install root $root (owner $(stat -c %U:%G "$root"), $(du -sh "$root" | cut -f1))"
for py in "$root"/python_*/bin/python3.[0-9] "$root"/python_*/bin/python3.[0-9][0-9]; do
    [[ -x $py && ! -L $py ]] && echo "   CPython: $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
done
if [[ -d $root/text-generation-webui/.git ]]; then
    echo "   web UI: $root/text-generation-webui at $(git -c safe.directory='*' -C "$root/text-generation-webui" rev-parse HEAD)"
fi
echo "   models:"
for m in "$root"/models/*/; do
    [[ -f $m/.hf_model.json ]] || continue
    python3 - "$m" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/.hf_model.json"))
print(f"     {sys.argv[1].rstrip('/')}: {d.get('repo_id', '?')} @ {d.get('revision', '?')} = {d.get('commit', '?')[:12]}")
PY
done
if [[ -f $root/hpcllm-lock.json ]]; then
    echo "   lock: $root/hpcllm-lock.json (sha256 $(sha256sum "$root/hpcllm-lock.json" | cut -c1-16)...; bundle_export carries it)"
fi
echo "== Launch a model on a GPU node (as the run user), or from this demo master:"
for s in "$root"/run_*.sh; do
    echo "   $s"
done
echo "   e.g. on the bench's CPU node (the compute-lite image, with its nginx; see molecule/site/node-run.sh):"
echo "         podman exec -it \$HPCLLM_BENCH_PREFIX-site hpcllm-node-run compute-lite test $root/run_wizard_7b_4bit_code.sh"
echo "   it prints its URL (its own authenticating proxy), the tunnel and the health check to run"
