#!/usr/bin/env bash
# Fetches a published Go module (a zip from the module proxy, nothing built) and keeps the YAML
# files of some of its directories under OUT (cached: nothing is fetched when OUT/CHECK exists).
# Prints OUT. usage: tools/module_files.sh MODULE@VERSION OUT CHECK DIR...
set -euo pipefail
module="$1" out="$2" check="$3"; shift 3
if [ -f "$out/$check" ]; then echo "$out"; exit 0; fi
command -v go >/dev/null || { echo "go is required to fetch $module" >&2; exit 1; }
dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$module" |
  sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')
[ -n "$dir" ] && [ -d "$dir/$1" ] || { echo "could not download $module" >&2; exit 1; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
for d in "$@"; do cp "$dir/$d"/*.yaml "$out.tmp/"; done
chmod -R u+w "$out.tmp" && rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
