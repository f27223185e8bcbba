#!/usr/bin/env bash
# Builds the traffic matrix's third-party parts from the Go module proxy, once per version:
#   vegeta   github.com/tsenart/vegeta/v12 (pinned in go.mod): the load generator of record
#   podinfo  github.com/stefanprodan/podinfo 6.9.2 (commit e86405a, 2025-09-10; the proxy
#            serves the 6.x line only as this pseudo-version): a real app nobody here wrote
#   traefik  github.com/traefik/traefik/v3 v3.6.12: a real ingress controller (3.7's module
#            zip lacks pkg/config/dynamic/ext, which its go.mod replaces to a local path)
# podinfo and traefik have `replace` lines in their go.mod, which `go install mod@version`
# refuses, so each is built in a writable copy of its module. Prints the folder holding them.
# usage: build.sh [vegeta] [podinfo] [traefik]   (none named: all three)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
out="$cache/traffic-tools"
mkdir -p "$out"

# A main package built from a writable copy of MODULE@VERSION; prints the binary's path.
from_module() {
  local name="$1" module="$2" version="$3" package="$4"
  local hash dir src
  hash=$( (echo "$module@$version $package"; cat "$0") | sha256sum | cut -c1-16)
  dir="$cache/$name/$hash"
  if [ ! -x "$dir/$name" ]; then
    echo "building $name ($module@$version) into $dir" >&2
    src="$(cd "$here" && go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/src"
    cp -r "$src/." "$dir.tmp/src" && chmod -R u+w "$dir.tmp/src"
    (cd "$dir.tmp/src" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$dir.tmp/$name" "$package") >&2
    rm -rf "$dir.tmp/src" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/$name"
}

wanted=" ${*:-vegeta podinfo traefik} "
for tool in $wanted; do
  case "$tool" in vegeta | podinfo | traefik) ;; *) echo "build.sh: unknown tool $tool" >&2; exit 2 ;; esac
done
[[ "$wanted" == *" vegeta "* ]] && ln -sf "$(CGO_ENABLED=0 "$here/../gotool.sh" vegeta "$here" github.com/tsenart/vegeta/v12)" "$out/vegeta"
[[ "$wanted" == *" podinfo "* ]] && ln -sf "$(from_module podinfo github.com/stefanprodan/podinfo v1.8.1-0.20250910200901-e86405a8674e ./cmd/podinfo)" "$out/podinfo"
[[ "$wanted" == *" traefik "* ]] && ln -sf "$(from_module traefik github.com/traefik/traefik/v3 v3.6.12 ./cmd/traefik)" "$out/traefik"
echo "$out"
