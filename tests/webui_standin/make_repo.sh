#!/usr/bin/env bash
# Stand-in for the text-generation-webui GitHub repository (tests only): builds a local git repository from tree/.
#
#   tests/webui_standin/make_repo.sh DEST [BARE]
#
# With BARE, also writes a bare clone there, ready for git's "dumb" HTTP protocol
# (`git update-server-info`), so any static file server (python3 -m http.server) can
# serve it as a mirror: git clone http://127.0.0.1:PORT/<...>/BARE
#
# Creates DEST (a non-bare repository; clone it with file:// or a path) with branch
# `main` and three commits made with fixed authors and dates, so the commit ids are the
# same on every machine:
#   1. "Initial stand-in"           tagged v0.0-standin
#   2. "Add the openai extension"   (the requirements of extensions/openai)
#   3. "Bump version"               HEAD of main (prints its id on stdout)
# and a branch `old` at commit 1. DEST must not exist or be empty.
set -euo pipefail
dest=${1:?usage: make_repo.sh DEST}
here=$(cd "$(dirname "$0")" && pwd)
if [[ -e $dest && -n $(ls -A "$dest") ]]; then
    echo "make_repo.sh: $dest exists and is not empty" >&2
    exit 1
fi
mkdir -p "$dest"
export GIT_AUTHOR_NAME="Stand-in" GIT_AUTHOR_EMAIL="standin@example.invalid"
export GIT_COMMITTER_NAME="Stand-in" GIT_COMMITTER_EMAIL="standin@example.invalid"
export GIT_CONFIG_NOSYSTEM=1 HOME=${HOME:-/root}
g() { git -C "$dest" -c init.defaultBranch=main -c core.hooksPath=/dev/null -c commit.gpgsign=false "$@"; }
commit() {
    GIT_AUTHOR_DATE="$1" GIT_COMMITTER_DATE="$1" g commit -q -m "$2"
}

g init -q
cp -a "$here/tree/." "$dest/"
mv "$dest/gitignore" "$dest/.gitignore"
find "$dest" -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$dest/extensions/openai"
g add -A
commit "2023-09-20T10:00:00+00:00" "Initial stand-in"
g tag v0.0-standin
g branch old
cp -a "$here/tree/extensions/openai" "$dest/extensions/"
find "$dest" -name __pycache__ -prune -exec rm -rf {} +
g add -A
commit "2023-09-21T10:00:00+00:00" "Add the openai extension"
echo "__version__ = 'standin-3'" > "$dest/modules/version.py"
g add -A
commit "2023-09-22T10:00:00+00:00" "Bump version"
if [[ -n ${2:-} ]]; then
    git clone -q --bare "$dest" "$2"
    git -C "$2" update-server-info
fi
g rev-parse HEAD
