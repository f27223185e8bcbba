#!/usr/bin/env bash
# Builds the image inspector's test parts from the Go module proxy, once per module content: a
# real OCI registry (distribution), crane (go-containerregistry) and a bcrypt htpasswd line
# maker. Prints the folder holding registry, crane and htpasswd. --cached: only if already built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
registry="$("$here/../gotool.sh" "$@" registry "$here" github.com/distribution/distribution/v3/cmd/registry)"
crane="$("$here/../gotool.sh" "$@" crane "$here" github.com/google/go-containerregistry/cmd/crane)"
htpasswd="$("$here/../gotool.sh" "$@" htpasswd "$here" ./cmd/htpasswd)"
out="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}/registry-tools"
mkdir -p "$out"
exec 9>"$out.lock"
flock 9
ln -sf "$registry" "$out/registry"
ln -sf "$crane" "$out/crane"
ln -sf "$htpasswd" "$out/htpasswd"
echo "$out"
