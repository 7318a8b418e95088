#!/usr/bin/env bash
# Test helper (not a stand-in): times a plain CPython build from Debian's real python3.11
# orig tarball in a throw-away bench container, with or without --enable-optimizations,
# the way the python_build role builds it. Usage: measure-build.sh [on|off]
# Prints "configure+make+altinstall: N s" at the end. Needs the bench image and the
# tarball cached by molecule/python_build/prepare.yml (or fetched here).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
opt=${1:-off}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/tests/bench/containers.conf}
image=${HPCLLM_BENCH_BASE_IMAGE:-localhost/hpcllm-bench-debian12:latest}
cache=$here/.cache/python_build
tarball=$cache/python3.11_3.11.2.orig.tar.gz
sha=2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
mkdir -p "$cache"
[[ -f $tarball ]] || curl -sSfLo "$tarball" \
  http://deb.debian.org/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz
echo "$sha  $tarball" | sha256sum -c --quiet
flags=()
[[ $opt == on ]] && flags=(--enable-optimizations)
name=hpcllm-python-build-measure-$opt
podman rm -f "$name" >/dev/null 2>&1 || true
podman run --rm --init --name "$name" -v "$tarball:/src.tgz:ro" "$image" bash -ec "
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends gcc make pkg-config libc6-dev libssl-dev \
    zlib1g-dev libbz2-dev libreadline-dev libsqlite3-dev libffi-dev liblzma-dev uuid-dev \
    libncurses-dev libgdbm-dev >/dev/null
  mkdir /build && tar -C /build -xzf /src.tgz && cd /build/Python-3.11.2
  start=\$(date +%s)
  ./configure --prefix=/opt/measure ${flags[*]:-} >/dev/null
  make -j\$(nproc) >/build/make.log 2>&1 || { tail -30 /build/make.log; exit 1; }
  make altinstall >/dev/null 2>&1
  end=\$(date +%s)
  /opt/measure/bin/python3.11 -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, uuid; print(\"imports ok\")'
  echo \"optimizations=$opt configure+make+altinstall: \$((end-start)) s\"
"
